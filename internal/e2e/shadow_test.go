package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestShadowCheck: with migration.shadow_check on, requests whose two
// credentials disagree are counted by kind in Prometheus and logged with the
// user ids (never the credentials), in dual and prefer-jwt only, and are
// decided exactly as without the check.
func TestShadowCheck(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_MIGRATION_SHADOW_CHECK=true")
	op := newOperator(t, in)

	first := in.login(t, aliceEmail, alicePass, "web")
	aliceID, _ := first.json(t)["user_id"].(string)
	session := first.cookie("ts_session")
	second := in.login(t, aliceEmail, alicePass, "web")
	revoked, _ := second.json(t)["access_token"].(string)
	valid, _ := first.json(t)["access_token"].(string)
	if r := in.do(t, req{method: "POST", path: "/auth/logout", bearer: revoked}); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(2 * time.Second)
	for in.do(t, req{path: "/auth/me", bearer: revoked}).status != 401 {
		if time.Now().After(deadline) {
			t.Fatal("the logged-out token is still accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	opsSession := in.login(t, opsEmail, opsPass, "web").cookie("ts_session")

	// A valid session with a revoked bearer token: refused as before (the
	// client chose the bearer), counted as "revoked".
	r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{session}, bearer: revoked})
	expectProblem(t, r, 401, "invalid_token")
	// Two users: refused as before, counted as "different_subject".
	r = in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{opsSession}, bearer: valid})
	expectProblem(t, r, 401, "credential_conflict")
	// Agreeing credentials count nothing.
	if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{session}, bearer: valid}); r.status != 200 {
		t.Fatalf("agreeing credentials: %d %s", r.status, r.body)
	}

	if got := shadowCount(t, in, "web", "revoked"); got != 1 {
		t.Errorf("revoked mismatches = %d, want 1", got)
	}
	if got := shadowCount(t, in, "web", "different_subject"); got != 1 {
		t.Errorf("different_subject mismatches = %d, want 1", got)
	}
	logs := in.logs.String()
	for _, want := range []string{"shadow check", "kind=revoked", "kind=different_subject", "user_id=" + aliceID, "other_scheme=bearer"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{revoked, valid, session.Value, opsSession.Value} {
		if strings.Contains(logs, secret) {
			t.Error("a credential appears in the logs")
		}
	}

	// Outside dual and prefer-jwt nothing is counted.
	op.mustPut(t, map[string]any{"phase": "legacy", "clients": map[string]any{"mobile": map[string]string{"phase": "dual"}}, "reason": "shadow gating"})
	r = in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{opsSession}, bearer: valid})
	expectProblem(t, r, 401, "credential_conflict")
	if got := shadowCount(t, in, "web", "different_subject"); got != 1 {
		t.Errorf("different_subject mismatches after a legacy request = %d, want still 1", got)
	}
}

func shadowCount(t *testing.T, in *instance, client, kind string) int {
	t.Helper()
	r := in.do(t, req{path: "/metrics"})
	re := regexp.MustCompile(`(?m)^tokenshift_shadow_mismatches_total\{client="` + client + `",kind="` + kind + `"\} (\d+)$`)
	m := re.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no tokenshift_shadow_mismatches_total{client=%q,kind=%q} in /metrics", client, kind)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
