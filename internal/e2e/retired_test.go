package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// phaseCLI runs `tokenshift phase ...` against in as the dev operator.
func phaseCLI(t *testing.T, in *instance, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"phase"}, args...), "--server", in.URL, "--email", opsEmail)...)
	cmd.Env = append(os.Environ(), "TOKENSHIFT_ADMIN_PASSWORD="+opsPass)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tokenshift phase %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// clearedCookie reports whether the answer expires cookie name.
func clearedCookie(r *resp, name string) bool {
	c := r.cookie(name)
	return c != nil && c.Value == "" && (c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())))
}

// TestRetiredSessionLogsOutForGood: a session retired by jwt-only can still
// log out (any credential may end its own login), and a rollback afterwards
// does not bring it back. The same holds for DELETE /auth/sessions/:sid in
// retiring.
func TestRetiredSessionLogsOutForGood(t *testing.T) {
	t.Parallel()
	in := start(t)

	cookie, csrf := webSession(t, in)
	phaseCLI(t, in, "set", "jwt-only", "--force", "--reason", "e2e: retire sessions")
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{cookie}}), 401, "session_retired")
	out := in.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{cookie}, header: map[string]string{"X-CSRF-Token": csrf}})
	if out.status != 204 || !clearedCookie(out, "ts_session") {
		t.Fatalf("logout with a retired session: %d %s, cookies %v", out.status, out.body, out.cookies)
	}
	phaseCLI(t, in, "rollback", "--reason", "e2e: back to dual")
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{cookie}}), 401, "invalid_session")

	// DELETE /auth/sessions/:sid with the cookie, in retiring at 100 %.
	cookie, csrf = webSession(t, in)
	me := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{cookie}})
	sid, _ := me.json(t)["sid"].(string)
	phaseCLI(t, in, "set", "retiring", "--rollout", "100", "--force", "--reason", "e2e: retire sessions")
	list := in.do(t, req{path: "/auth/sessions", cookies: []*http.Cookie{cookie}})
	if list.status != 200 || !strings.Contains(string(list.body), sid) {
		t.Fatalf("GET /auth/sessions with a retired session: %d %s", list.status, list.body)
	}
	del := in.do(t, req{method: "DELETE", path: "/auth/sessions/" + sid, cookies: []*http.Cookie{cookie}, header: map[string]string{"X-CSRF-Token": csrf}})
	if del.status != 204 || !clearedCookie(del, "ts_session") {
		t.Fatalf("DELETE /auth/sessions/%s with the retired session: %d %s", sid, del.status, del.body)
	}
	phaseCLI(t, in, "rollback", "--reason", "e2e: back")
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{cookie}}), 401, "invalid_session")
}

// TestRetiredSessionExchangesWithCSRFFromTheEndpoint: a legacy client that
// kept only its cookie fetches the CSRF token from GET /auth/csrf and
// exchanges the retired session for tokens of the same login.
func TestRetiredSessionExchangesWithCSRFFromTheEndpoint(t *testing.T) {
	t.Parallel()
	in := start(t)
	cookie, loginCSRF := webSession(t, in)
	phaseCLI(t, in, "set", "retiring", "--rollout", "100", "--force", "--reason", "e2e: retire sessions")
	me := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{cookie}})
	expectProblem(t, me, 401, "session_retired")

	c := in.do(t, req{path: "/auth/csrf", cookies: []*http.Cookie{cookie}})
	got := c.json(t)
	token, _ := got["csrf_token"].(string)
	if c.status != 200 || got["pre_session"] != nil || token != loginCSRF {
		t.Fatalf("GET /auth/csrf with the retired session: %d %s; want the session's own token", c.status, c.body)
	}
	ex := in.do(t, req{method: "POST", path: "/auth/exchange", cookies: []*http.Cookie{cookie}, header: map[string]string{"X-CSRF-Token": token}})
	if ex.status != 200 {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	at, _ := ex.json(t)["access_token"].(string)
	bearerMe := in.do(t, req{path: "/auth/me", bearer: at})
	if bearerMe.status != 200 || bearerMe.json(t)["sid"] != ex.json(t)["sid"] || ex.json(t)["sid"] == nil {
		t.Fatalf("the exchanged token: %d %s (exchange %s)", bearerMe.status, bearerMe.body, ex.body)
	}
	// The login now lists with its tokens.
	list := in.do(t, req{path: "/auth/sessions", bearer: at})
	if !strings.Contains(string(list.body), `"tokens":true`) {
		t.Fatalf("after exchange: %s", list.body)
	}
}
