package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// eventually polls check until it holds or a second has passed: revocations
// reach other instances by pub/sub.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 1s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPasswordChangeEndsEveryLogin: two instances on one Redis; alice is
// logged in on both, with a session and with bearer tokens. She changes her
// password on one; every old credential dies on both, the old password stops
// working and the new one works on either.
func TestPasswordChangeEndsEveryLogin(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t), "TOKENSHIFT_USERS_PASSWORD_COST=10"}
	a := start(t, env...)
	b := start(t, env...)

	web := a.login(t, aliceEmail, alicePass, "web")
	sess := web.cookie("ts_session")
	webBearer := web.json(t)["access_token"].(string)
	mobile := b.login(t, aliceEmail, alicePass, "mobile").json(t)
	mobileBearer, mobileRefresh := mobile["access_token"].(string), mobile["refresh_token"].(string)

	// With the session cookie, the change needs the CSRF token like every
	// unsafe cookie request.
	body := map[string]string{"current_password": alicePass, "new_password": "alice-changed-password"}
	expectProblem(t, a.do(t, req{method: "POST", path: "/auth/password", json: body, cookies: []*http.Cookie{sess}}), 403, "csrf_failed")
	expectProblem(t, a.do(t, req{method: "POST", path: "/auth/password", bearer: webBearer,
		json: map[string]string{"current_password": "wrong", "new_password": "alice-changed-password"}}), 401, "invalid_credentials")

	if r := a.do(t, req{method: "POST", path: "/auth/password", json: body, cookies: []*http.Cookie{sess},
		header: map[string]string{"X-CSRF-Token": web.json(t)["csrf_token"].(string)}}); r.status != 204 {
		t.Fatalf("password change: %d %s", r.status, r.body)
	}

	for _, in := range []*instance{a, b} {
		eventually(t, "old bearer refused on "+in.URL, func() bool {
			return in.do(t, req{path: "/auth/me", bearer: mobileBearer}).status == 401
		})
		expectProblem(t, in.do(t, req{path: "/auth/me", bearer: webBearer}), 401, "invalid_token")
		expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 401, "invalid_session")
	}
	expectProblem(t, b.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": mobileRefresh}}), 401, "invalid_token")
	for _, in := range []*instance{a, b} {
		expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass}}), 401, "invalid_credentials")
	}
	fresh := b.login(t, aliceEmail, "alice-changed-password", "mobile").json(t)["access_token"].(string)
	if r := a.do(t, req{path: "/auth/me", bearer: fresh}); r.status != 200 {
		t.Fatalf("new login's token on the other instance: %d %s", r.status, r.body)
	}
}

// TestSuspensionFromTheCLI: an operator suspends alice with `tokenshift user
// suspend`; her logins die at once, her right password is answered 403
// account_suspended (a wrong one still 401), and `tokenshift user unsuspend`
// lets her log in again.
func TestSuspensionFromTheCLI(t *testing.T) {
	t.Parallel()
	in := start(t)
	lr := in.login(t, aliceEmail, alicePass, "web")
	sess := lr.cookie("ts_session")
	bearer := lr.json(t)["access_token"].(string)

	cli := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append(args, "--server", in.URL, "--email", opsEmail)...)
		cmd.Env = append(os.Environ(), "TOKENSHIFT_ADMIN_PASSWORD="+opsPass)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli("user", "suspend", "u-alice"); err == nil || !strings.Contains(out, "--reason is required") {
		t.Fatalf("suspend without a reason: %v\n%s", err, out)
	}
	// A reason a terminal would act on is refused by the server (400 naming
	// the character), and the CLI's error line carries no control character.
	for _, bad := range []string{"fraud\x1b[2J\x1b]0;owned\a", "fraud\r\nuser u-bob: active", "abc\u202edef"} {
		out, err := cli("user", "suspend", "u-alice", "--reason", bad)
		if err == nil || !strings.Contains(out, "invalid_request (HTTP 400)") || strings.ContainsAny(out, "\x1b\a\r\u202e") {
			t.Fatalf("suspend with reason %q: %v\n%q", bad, err, out)
		}
	}
	if out, err := cli("user", "account", "u-alice"); err != nil || !strings.Contains(out, "active") {
		t.Fatalf("a refused suspension suspended alice: %v\n%s", err, out)
	}
	out, err := cli("user", "suspend", "u-alice", "--reason", "chargeback, ticket 4711")
	if err != nil || !strings.Contains(out, "SUSPENDED") || !strings.Contains(out, opsEmail) || !strings.Contains(out, "ticket 4711") {
		t.Fatalf("suspend: %v\n%s", err, out)
	}
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 401, "invalid_session")
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: bearer}), 401, "invalid_token")
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass}}), 403, "account_suspended")
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": "guess"}}), 401, "invalid_credentials")
	if out, err := cli("user", "account", "u-alice", "--json"); err != nil || !strings.Contains(out, `"suspended": true`) {
		t.Fatalf("account: %v\n%s", err, out)
	}
	if !strings.Contains(in.logs.String(), "operator suspended a user") {
		t.Fatalf("the suspension is not in the server log:\n%s", in.logs.String())
	}

	if out, err := cli("user", "unsuspend", "u-alice"); err != nil || !strings.Contains(out, "active") {
		t.Fatalf("unsuspend: %v\n%s", err, out)
	}
	in.login(t, aliceEmail, alicePass, "web")
	// Lifting a suspension restores no credential.
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: bearer}), 401, "invalid_token")
}
