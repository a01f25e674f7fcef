package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// TestGuardRefusesWithoutHistory: a fresh instance has no usage history, so
// moving everyone to jwt-only is refused even though no session was ever
// seen and both thresholds are configured to 0 (which must stay 0, not turn
// into 1 %). The refusal says how much of the window the data covers. Forced
// with a reason, the same change goes through and is audited as forced, with
// the figures that would have refused it.
func TestGuardRefusesWithoutHistory(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms",
		"TOKENSHIFT_GUARD_MAX_SESSION_SHARE=0", "TOKENSHIFT_USAGE_MAX_SESSION_SHARE=0")
	op := newOperator(t, in)
	for range 5 { // accepted bearer traffic, no session at all
		op.flags(t)
	}

	change := map[string]any{"phase": "jwt-only", "reason": "fresh cluster"}
	refused := op.put(t, change)
	expectProblem(t, refused, 409, "guard_refused")
	body := refused.json(t)
	fig, _ := body["figures"].(map[string]any)
	if fig == nil {
		t.Fatalf("refusal without figures: %s", refused.body)
	}
	reasons, _ := fig["reasons"].([]any)
	var why []string
	for _, r := range reasons {
		why = append(why, r.(string))
	}
	if fig["window"] != "24h" || fig["covered"] != "0m" || fig["max_share"] != 0.0 || fig["session_requests"] != 0.0 ||
		fig["total_requests"].(float64) < 5 || fig["data_since"] == nil || len(why) != 1 ||
		!strings.HasPrefix(why[0], "usage data only covers 0m of the 24h window") {
		t.Fatalf("refusal figures = %v", fig)
	}
	if d, _ := body["detail"].(string); !strings.Contains(d, "usage data only covers 0m of the 24h window") {
		t.Errorf("the refusal's detail does not say why: %q", d)
	}
	if got := op.flags(t)["phase"]; got != "dual" {
		t.Fatalf("a refused change moved the phase to %v", got)
	}

	// usage.max_session_share 0 reaches the readiness verdict as 0.
	rep := in.do(t, req{path: "/admin/usage?window=24h", bearer: op.token})
	if rep.status != 200 {
		t.Fatalf("GET /admin/usage: %d %s", rep.status, rep.body)
	}
	if th := rep.json(t)["readiness"].(map[string]any)["threshold"]; th != 0.0 {
		t.Errorf("readiness threshold = %v, want 0 as configured", th)
	}

	change["force"], change["reason"] = true, "new cluster; sessions were retired on the old one, OPS-9"
	forced := op.mustPut(t, change)
	if forced["phase"] != "jwt-only" {
		t.Fatalf("forced change not applied: %v", forced)
	}
	entries := op.audit(t, 2)
	if len(entries) != 2 || entries[0]["action"] != "set" || entries[1]["action"] != "refused" {
		t.Fatalf("audit = %v, want the forced set after the refusal", entries)
	}
	e := entries[0]
	ef, _ := e["figures"].(map[string]any)
	if e["forced"] != true || e["reason"] != change["reason"] || ef == nil || ef["covered"] != "0m" || len(ef["reasons"].([]any)) != 1 {
		t.Errorf("forced entry = %v", e)
	}
}

// seedUsageHistory makes the usage data of a Redis start age ago, as if
// instances had been counting that long: tests that move phases forward
// without forcing need a guard window the data covers.
func seedUsageHistory(t *testing.T, srv *redistest.Server, age time.Duration) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	since := strconv.FormatInt(time.Now().Add(-age).Unix(), 10)
	if err := c.Set(context.Background(), "{tokenshift:usage}:since", since, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestUsageReportWhenRedisHangs: with Redis frozen, GET /admin/usage answers
// 503 store_unavailable in about storage.redis.read_timeout (1s here), not
// after the report's pre-flush and read have each used go-redis's retry
// (4 to 7 s before). The operator's bearer token needs no Redis to verify.
func TestUsageReportWhenRedisHangs(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	in := start(t, "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR="+keysDir(t),
		"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=1s", "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms")
	op := newOperator(t, in)
	if r := in.do(t, req{path: "/admin/usage?window=1h", bearer: op.token}); r.status != 200 {
		t.Fatalf("report with Redis up: %d %s", r.status, r.body)
	}
	op.flags(t) // traffic for the pre-flush to deliver
	srv.Pause()
	defer srv.Resume()
	for i := range 2 {
		began := time.Now()
		r := in.do(t, req{path: "/admin/usage?window=1h", bearer: op.token})
		took := time.Since(began)
		t.Logf("report %d with Redis frozen: %d after %v", i+1, r.status, took)
		expectProblem(t, r, 503, "store_unavailable")
		if took >= 3*time.Second {
			t.Errorf("report %d took %v, want < 3s (3 × the read timeout)", i+1, took)
		}
	}
}
