package e2e

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// TestFlagsPropagateAcrossInstances: two instances share a real Redis. A
// change made through the admin API of A is enforced by B within a second:
// the time is measured from sending the PUT to the first request B decides
// under the new phase. A racing change from a stale version is refused.
func TestFlagsPropagateAcrossInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	keys := keysDir(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keys}
	a, b := start(t, env...), start(t, env...)
	op := newOperator(t, a)
	sess, _ := webSession(t, b)

	meOnB := func() *resp { return b.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}) }
	if r := meOnB(); r.status != 200 {
		t.Fatalf("B refuses the session before any change: %d %s", r.status, r.body)
	}

	const trials = 6
	var took, putTook []time.Duration
	for i := range trials {
		// Alternate: retire web's sessions (forced: web uses sessions), then
		// give them back (never guarded).
		retire := i%2 == 0
		body := map[string]any{"clients": map[string]any{}, "reason": "propagation trial"}
		wantStatus := 200
		if retire {
			body = map[string]any{"clients": map[string]any{"web": map[string]string{"phase": "jwt-only"}}, "force": true, "reason": "propagation trial"}
			wantStatus = 401
		}
		body["version"] = op.version(t)

		sent := time.Now()
		r := op.put(t, body)
		if r.status != 200 {
			t.Fatalf("trial %d: PUT on A: %d %s", i, r.status, r.body)
		}
		putTook = append(putTook, time.Since(sent))
		for {
			got := meOnB()
			if got.status == wantStatus {
				if retire {
					expectProblem(t, got, 401, "session_retired")
				}
				took = append(took, time.Since(sent))
				break
			}
			if time.Since(sent) > 5*time.Second {
				t.Fatalf("trial %d: B still answers %d five seconds after the change", i, got.status)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	p50, worst := sorted[len(sorted)/2], sorted[len(sorted)-1]
	t.Logf("PUT on A → enforced by B over %d trials: p50 %v, max %v (all: %v; of which the PUT's own answer: %v)", trials, p50, worst, took, putTook)
	if worst >= time.Second {
		t.Errorf("a change took %v to be enforced on the other instance, want < 1s", worst)
	}

	// A racing change: two operators send a change made from the same
	// version, one to each instance. Exactly one wins; the other gets 409
	// with the version now stored.
	opB := newOperator(t, b)
	v := op.version(t)
	var wg sync.WaitGroup
	results := make([]*resp, 2)
	for i, o := range []*operator{op, opB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = o.put(t, map[string]any{"version": v, "rollout": float64(10 + i), "reason": "race"})
		}()
	}
	wg.Wait()
	statuses := []int{results[0].status, results[1].status}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []int{200, 409}) {
		t.Fatalf("racing changes answered %v, want one 200 and one 409 (%s / %s)", statuses, results[0].body, results[1].body)
	}
	for _, r := range results {
		if r.status == 409 {
			expectProblem(t, r, 409, "version_conflict")
			if cv := r.json(t)["current_version"]; cv != v+1 {
				t.Errorf("current_version = %v, want %v", cv, v+1)
			}
		}
	}
	// And a plain stale one, after the fact.
	stale := op.put(t, map[string]any{"version": v, "phase": "legacy", "reason": "stale"})
	expectProblem(t, stale, 409, "version_conflict")
	if got := op.flags(t)["phase"]; got != "dual" {
		t.Errorf("a stale change moved the global phase to %v", got)
	}
}

// TestGuardForceRollbackAudit: the guard refuses with the figures, a forced
// change goes through and is marked, rollback restores the exact previous
// state, and the audit log holds the three.
func TestGuardForceRollbackAudit(t *testing.T) {
	t.Parallel()
	// Usage data going back 25h, so the refusal below is the share's alone
	// (a fresh instance is refused for its missing history whatever the share).
	srv := redistest.Start(t)
	seedUsageHistory(t, srv, 25*time.Hour)
	in := start(t, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms", "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL())
	op := newOperator(t, in)

	// A non-trivial state to come back to, set without the guard's say
	// (nothing here refuses more sessions than before).
	before := op.mustPut(t, map[string]any{
		"clients": map[string]any{"spa": map[string]string{"phase": "prefer-jwt"}}, "exempt_clients": []string{"spa"},
		"rollout": 12.5, "sunset": "2027-06-30T00:00:00Z", "reason": "baseline",
	})

	sess, _ := webSession(t, in)
	for range 10 {
		if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
			t.Fatalf("session request: %d", r.status)
		}
	}
	time.Sleep(500 * time.Millisecond) // past a usage flush

	change := map[string]any{"clients": map[string]any{"spa": map[string]string{"phase": "prefer-jwt"}, "web": map[string]string{"phase": "jwt-only"}}, "reason": "retire web"}
	refused := op.put(t, change)
	expectProblem(t, refused, 409, "guard_refused")
	fig, _ := refused.json(t)["figures"].(map[string]any)
	if fig == nil || fig["window"] != "24h" || fig["max_share"] != 0.01 || fig["session_requests"].(float64) < 10 ||
		fig["session_share"].(float64) <= 0.01 || !reflect.DeepEqual(fig["clients"], []any{"web"}) || fig["covered"] != "24h" {
		t.Fatalf("refusal figures = %v", fig)
	}
	if r, _ := fig["reasons"].([]any); len(r) != 1 || !strings.HasPrefix(r[0].(string), "session share ") {
		t.Fatalf("refusal reasons = %v, want the share alone", fig["reasons"])
	}
	if v := op.version(t); v != before["version"] {
		t.Fatalf("a refused change moved the version from %v to %v", before["version"], v)
	}

	change["force"], change["reason"] = true, "web sessions are monitoring probes, OPS-7"
	forced := op.mustPut(t, change)
	if forced["effective"].(map[string]any)["web"] != "jwt-only" {
		t.Fatalf("forced change not applied: %v", forced)
	}
	if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 401 {
		t.Errorf("web session after the forced jwt-only: %d", r.status)
	}

	rb := in.do(t, req{method: "POST", path: "/admin/flags/rollback", bearer: op.token, json: map[string]string{"reason": "probes were real users"}})
	if rb.status != 200 {
		t.Fatalf("rollback: %d %s", rb.status, rb.body)
	}
	after := rb.json(t)
	for _, k := range []string{"version", "updated_at", "updated_by"} {
		delete(before, k)
		delete(after, k)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("rollback did not restore the exact previous state:\n got %v\nwant %v", after, before)
	}
	if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
		t.Errorf("web session after the rollback: %d %s", r.status, r.body)
	}

	entries := op.audit(t, 10)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e["action"].(string))
	}
	if want := []string{"rollback", "set", "refused", "set", "init"}; !slices.Equal(actions, want) {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	if e := entries[2]; e["forced"] != false || e["figures"] == nil || e["reason"] != "retire web" {
		t.Errorf("refused entry = %v", e)
	}
	if e := entries[1]; e["forced"] != true || e["figures"] == nil || e["reason"] != "web sessions are monitoring probes, OPS-7" || e["actor"] != opsEmail {
		t.Errorf("forced entry = %v", e)
	}
	if e := entries[0]; e["forced"] != false || e["reason"] != "probes were real users" {
		t.Errorf("rollback entry = %v", e)
	}
}
