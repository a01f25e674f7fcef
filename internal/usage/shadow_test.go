package usage

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenshift/tokenshift/internal/authn"
)

func TestShadowMismatchCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := testOptions(newClock(base), nil)
	o.Registry = reg
	r := mustNew(t, o)

	r.ShadowMismatch("web", "expired")
	r.ShadowMismatch("web", "expired")
	r.ShadowMismatch("mobile", "different_subject")
	r.ShadowMismatch("forged-client", "client")
	r.ShadowMismatch("web", "made-up-kind") // counted as invalid

	want := `
# HELP tokenshift_shadow_mismatches_total Requests whose credentials disagree (migration.shadow_check, phases dual and prefer-jwt), by the client of the valid credential and kind: different_subject, expired, revoked, invalid, client.
# TYPE tokenshift_shadow_mismatches_total counter
`
	var lines []string
	labels := append(slices.Clone(testClients), "other", "unknown")
	counts := map[string]int{"web/expired": 2, "mobile/different_subject": 1, "other/client": 1, "web/invalid": 1}
	for _, c := range labels {
		for _, k := range shadowKinds {
			lines = append(lines, fmt.Sprintf(`tokenshift_shadow_mismatches_total{client=%q,kind=%q} %d`, c, k, counts[c+"/"+k]))
		}
	}
	slices.Sort(lines)
	want += strings.Join(lines, "\n") + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tokenshift_shadow_mismatches_total"); err != nil {
		t.Error(err)
	}

	// Forged input never adds a series.
	for i := range 200 {
		r.ShadowMismatch(fmt.Sprintf("c-%d", i), fmt.Sprintf("k-%d", i))
	}
	if n, err := testutil.GatherAndCount(reg, "tokenshift_shadow_mismatches_total"); err != nil || n != len(labels)*len(shadowKinds) {
		t.Errorf("series after forged input = %d (%v), want %d", n, err, len(labels)*len(shadowKinds))
	}
	if allocs := testing.AllocsPerRun(1000, func() { r.ShadowMismatch("spa", "revoked") }); allocs != 0 {
		t.Errorf("ShadowMismatch allocates %v times, want 0", allocs)
	}
}

// The label set must be exactly what the middleware reports, or a kind
// would silently be counted as invalid.
func TestShadowKindsMatchTheMiddleware(t *testing.T) {
	if !slices.Equal(shadowKinds, authn.ShadowKinds[:]) {
		t.Errorf("usage kinds %v, authn kinds %v", shadowKinds, authn.ShadowKinds)
	}
}
