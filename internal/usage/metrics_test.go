package usage

import (
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Forged client ids, kinds and phases never create a metric series.
func TestMetricSeriesStayBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := testOptions(newClock(base), nil)
	o.Registry = reg
	r := mustNew(t, o)

	count := func() map[string]int {
		out := map[string]int{}
		for _, name := range []string{"tokenshift_auth_requests_total", "tokenshift_logins_total", "tokenshift_credentials_issued_total", "tokenshift_phase"} {
			n, err := testutil.GatherAndCount(reg, name)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = n
		}
		return out
	}
	r.SetPhase("", "dual")
	r.SetPhase("web", "retiring")
	before := count()

	for i := range 500 {
		forged := fmt.Sprintf("forged-%d", i)
		r.Record(auth.SchemeBearer, forged, forged, auth.OutcomeAccepted)
		r.Record(auth.Scheme(i%256), forged, "", auth.Outcome(i%256))
		r.Login(forged, auth.LoginOutcome(fmt.Sprintf("weird-%d", i)))
		r.Issued(forged)
		r.SetPhase(forged, "dual")
		r.SetPhase("web", forged)
	}
	after := count()

	labels := len(testClients) + 2
	want := map[string]int{
		"tokenshift_auth_requests_total":      labels * int(auth.NumSchemes) * int(auth.NumOutcomes),
		"tokenshift_logins_total":             labels * len(loginOutcomes),
		"tokenshift_credentials_issued_total": len(issuedKinds),
	}
	for name, n := range want {
		if before[name] != n || after[name] != n {
			t.Errorf("%s: %d series before, %d after forged input; want %d", name, before[name], after[name], n)
		}
	}
	// The phase gauge may gain exactly one client: other.
	if after["tokenshift_phase"] != before["tokenshift_phase"]+len(phaseNames) {
		t.Errorf("tokenshift_phase: %d series before, %d after; want +%d (client other)", before["tokenshift_phase"], after["tokenshift_phase"], len(phaseNames))
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := append(slices.Clone(testClients), auth.ClientOther, auth.ClientUnknown, globalPhaseLabel)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "client" && !slices.Contains(known, lp.GetValue()) {
					t.Errorf("%s has client label %q", mf.GetName(), lp.GetValue())
				}
			}
		}
	}

	if v, err := gatherValue(reg, "tokenshift_auth_requests_total", map[string]string{"scheme": "bearer", "client": "other", "outcome": "accepted"}); err != nil || v != 500 {
		t.Errorf("forged bearer requests counted under other = %v (%v), want 500", v, err)
	}
	if v, err := gatherValue(reg, "tokenshift_logins_total", map[string]string{"client": "other", "outcome": "error"}); err != nil || v != 500 {
		t.Errorf("forged logins = %v (%v), want 500 under other/error", v, err)
	}
	if v, err := gatherValue(reg, "tokenshift_phase", map[string]string{"client": "web", "phase": "retiring"}); err != nil || v != 1 {
		t.Errorf("web retiring phase gauge = %v (%v), want 1 (unknown phases ignored)", v, err)
	}
	if v, err := gatherValue(reg, "tokenshift_phase", map[string]string{"client": "*", "phase": "legacy"}); err != nil || v != 0 {
		t.Errorf("global legacy phase gauge = %v (%v), want 0", v, err)
	}
}

func TestMetricsHandlerServesTextFormat(t *testing.T) {
	tests := []struct {
		name     string
		registry prometheus.Registerer
		extra    bool // a metric registered outside the Recorder appears
	}{
		{name: "private registry"},
		{name: "shared registry", registry: prometheus.NewRegistry(), extra: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(newClock(base), nil)
			o.Registry = tt.registry
			r := mustNew(t, o)
			if tt.registry != nil {
				tt.registry.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "app_extra_total", Help: "x"}))
			}
			r.Record(auth.SchemeSession, "web", "u", auth.OutcomeAccepted)
			r.Login("web", "success")
			r.Issued("access")

			rec := httptest.NewRecorder()
			r.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			body, _ := io.ReadAll(rec.Body)
			text := string(body)
			for _, want := range []string{
				`tokenshift_auth_requests_total{client="web",outcome="accepted",scheme="session",source=""} 1`,
				`tokenshift_logins_total{client="web",outcome="success"} 1`,
				`tokenshift_credentials_issued_total{kind="access"} 1`,
				`tokenshift_usage_dropped_events_total{reason="user_table_full"} 0`,
				`tokenshift_usage_flush_errors_total 0`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
			if got := strings.Contains(text, "app_extra_total"); got != tt.extra {
				t.Errorf("app_extra_total present = %v, want %v", got, tt.extra)
			}
		})
	}
}

func TestRegisteringTwiceInOneRegistryFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := testOptions(newClock(base), nil)
	o.Registry = reg
	mustNew(t, o)
	if _, err := New(o); err == nil {
		t.Error("second Recorder on the same registry: no error")
	}
}
