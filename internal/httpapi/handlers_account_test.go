package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

const (
	opsEmail    = "ops@example.com"
	opsPassword = "ops-dev-password"
)

// withAccounts replaces the users with a Verifier that has the account
// overlay on the server's store, password change allowed or not, and mounts
// the admin API.
func withAccounts(allowChange bool) devOption {
	return func(o *testOptions, _ *token.Options) {
		fs, err := user.ParseFile(configs.DevUsersYAML)
		if err != nil {
			panic(err)
		}
		v := user.NewVerifier(fs, &user.VerifierOptions{
			Overlay: user.NewStoreOverlay(o.Store), AllowPasswordChange: allowChange, PasswordCost: 4,
			Logger: slog.New(slog.DiscardHandler),
		})
		o.Users, o.Accounts = v, v
		o.Mount = func(app *fiber.App, s *Server) {
			admin.New(admin.Options{Logger: slog.New(slog.DiscardHandler), Authn: s.Authn, Sessions: s.logins, Accounts: s.logins}).Mount(app)
		}
	}
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *devServer) changePassword(tb testing.TB, cur, next string, c call) *answer {
	tb.Helper()
	c.method, c.path, c.ctype = "POST", "/auth/password", fiber.MIMEApplicationJSON
	c.body = jsonBody(map[string]string{"current_password": cur, "new_password": next})
	return s.do(tb, c)
}

// A password change ends every login of the user, whatever its credential,
// and only the new password opens a new one.
func TestChangePasswordRevokesEverything(t *testing.T) {
	s := newDevServer(t, withAccounts(true))
	web := s.loginJSON(t, aliceEmail, alicePassword, "web")
	webM := web.json(t)
	cookie := map[string]string{"ts_session": web.cookie["ts_session"].Value}
	mobile := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)
	spa := s.loginJSON(t, aliceEmail, alicePassword, "spa")
	ops := s.loginJSON(t, opsEmail, opsPassword, "mobile").json(t)["access_token"].(string)

	a := s.changePassword(t, alicePassword, "alice-new-password", call{bearer: mobile["access_token"].(string)})
	if a.status != 204 {
		t.Fatalf("change: %d %s", a.status, a.body)
	}
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeInvalidSession)
	expectProblem(t, s.do(t, call{path: "/auth/me", bearer: webM["access_token"].(string)}), 401, auth.CodeInvalidToken)
	expectProblem(t, s.do(t, call{path: "/auth/me", bearer: mobile["access_token"].(string)}), 401, auth.CodeInvalidToken)
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: map[string]string{"ts_access": spa.cookie["ts_access"].Value}}), 401, auth.CodeInvalidToken)
	expectProblem(t, s.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON,
		body: jsonBody(map[string]string{"refresh_token": mobile["refresh_token"].(string)})}), 401, auth.CodeInvalidToken)
	if a := s.do(t, call{path: "/auth/me", bearer: ops}); a.status != 200 {
		t.Fatalf("another user's login died too: %d", a.status)
	}

	bad := s.do(t, call{method: "POST", path: "/auth/login", ctype: fiber.MIMEApplicationJSON, body: jsonBody(map[string]string{"email": aliceEmail, "password": alicePassword})})
	expectProblem(t, bad, 401, auth.CodeInvalidCredentials)
	fresh := s.loginJSON(t, aliceEmail, "alice-new-password", "mobile").json(t)
	if a := s.do(t, call{path: "/auth/me", bearer: fresh["access_token"].(string)}); a.status != 200 {
		t.Fatalf("me after logging in with the new password: %d %s", a.status, a.body)
	}
}

func TestChangePasswordWithCookieNeedsCSRF(t *testing.T) {
	s := newDevServer(t, withAccounts(true))
	web := s.loginJSON(t, aliceEmail, alicePassword, "web")
	cookie := map[string]string{"ts_session": web.cookie["ts_session"].Value}
	expectProblem(t, s.changePassword(t, alicePassword, "alice-new-password", call{cookies: cookie}), 403, auth.CodeCSRF)
	if _, err := s.opts.Users.Verify(context.Background(), aliceEmail, alicePassword); err != nil {
		t.Fatalf("a refused change changed the password: %v", err)
	}
	a := s.changePassword(t, alicePassword, "alice-new-password", call{cookies: cookie, header: map[string]string{HeaderCSRF: web.json(t)["csrf_token"].(string)}})
	if a.status != 204 {
		t.Fatalf("change with CSRF token: %d %s", a.status, a.body)
	}
	// The answer clears the cookies of the login it just ended.
	if c := a.cookie["ts_session"]; c == nil || c.Value != "" {
		t.Fatalf("session cookie not cleared: %+v", a.cookie)
	}
}

func TestChangePasswordRefusals(t *testing.T) {
	s := newDevServer(t, withAccounts(true))
	bearer := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)["access_token"].(string)
	tests := []struct {
		name   string
		c      call
		status int
		code   auth.Code
	}{
		{name: "anonymous", c: call{body: jsonBody(map[string]string{"current_password": alicePassword, "new_password": "long-enough"})}, status: 401, code: auth.CodeUnauthenticated},
		{name: "no current", c: call{bearer: bearer, body: `{"new_password":"long-enough"}`}, status: 400, code: auth.CodeInvalidRequest},
		{name: "no new", c: call{bearer: bearer, body: `{"current_password":"x"}`}, status: 400, code: auth.CodeInvalidRequest},
		{name: "not a string", c: call{bearer: bearer, body: `{"current_password":1,"new_password":"long-enough"}`}, status: 400, code: auth.CodeInvalidRequest},
		{name: "not JSON", c: call{bearer: bearer, body: `{`}, status: 400, code: auth.CodeInvalidRequest},
		{name: "other media type", c: call{bearer: bearer, body: "x", ctype: "text/plain"}, status: 415, code: auth.CodeUnsupportedMediaType},
		{name: "too short", c: call{bearer: bearer, body: jsonBody(map[string]string{"current_password": alicePassword, "new_password": "short"})}, status: 400, code: auth.CodeInvalidRequest},
		{name: "too long", c: call{bearer: bearer, body: jsonBody(map[string]string{"current_password": alicePassword, "new_password": strings.Repeat("x", 1025)})}, status: 400, code: auth.CodeInvalidRequest},
		{name: "unchanged", c: call{bearer: bearer, body: jsonBody(map[string]string{"current_password": alicePassword, "new_password": alicePassword})}, status: 400, code: auth.CodeInvalidRequest},
		{name: "wrong current", c: call{bearer: bearer, body: jsonBody(map[string]string{"current_password": "guess-1", "new_password": "long-enough"})}, status: 401, code: auth.CodeInvalidCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.method, tc.c.path = "POST", "/auth/password"
			if tc.c.ctype == "" {
				tc.c.ctype = fiber.MIMEApplicationJSON
			}
			expectProblem(t, s.do(t, tc.c), tc.status, tc.code)
		})
	}
	if a := s.do(t, call{path: "/auth/me", bearer: bearer}); a.status != 200 {
		t.Fatalf("refusals must not end the login: %d", a.status)
	}
	// Guessing the current password with a stolen login is rate limited like
	// login itself (5 failures per account; one was spent above).
	var last *answer
	for i := range 6 {
		last = s.changePassword(t, fmt.Sprintf("guess-%d", i+2), "long-enough", call{bearer: bearer})
		if last.status == 429 {
			break
		}
	}
	expectProblem(t, last, 429, auth.CodeRateLimited)
	if last.header.Get(fiber.HeaderRetryAfter) == "" {
		t.Fatal("429 without Retry-After")
	}
}

func TestChangePasswordDisabled(t *testing.T) {
	for name, opts := range map[string][]devOption{
		"switched off":      {withAccounts(false)},
		"no account module": nil,
	} {
		t.Run(name, func(t *testing.T) {
			s := newDevServer(t, opts...)
			bearer := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)["access_token"].(string)
			expectProblem(t, s.changePassword(t, alicePassword, "alice-new-password", call{bearer: bearer}), 403, auth.CodePasswordChangeDisabled)
		})
	}
}

func TestSuspendAndUnsuspend(t *testing.T) {
	s := newDevServer(t, withAccounts(true))
	ops := s.loginJSON(t, opsEmail, opsPassword, "mobile").json(t)["access_token"].(string)
	web := s.loginJSON(t, aliceEmail, alicePassword, "web")
	cookie := map[string]string{"ts_session": web.cookie["ts_session"].Value}
	alice := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)
	suspend := call{method: "POST", path: "/admin/users/u-alice/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":"chargeback fraud"}`}

	// Only an admin, only with a reason, never oneself.
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/u-ops/suspend", bearer: alice["access_token"].(string), ctype: fiber.MIMEApplicationJSON, body: `{"reason":"x"}`}), 403, auth.CodeForbidden)
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/u-alice/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":"  "}`}), 400, auth.CodeInvalidRequest)
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/u-alice/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":` + jsonBody(strings.Repeat("r", 501)) + `}`}), 400, auth.CodeInvalidRequest)
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/u-alice/suspend", bearer: ops, ctype: "text/plain", body: "x"}), 415, auth.CodeUnsupportedMediaType)
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/u-ops/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":"oops"}`}), 400, auth.CodeInvalidRequest)
	expectProblem(t, s.do(t, call{method: "POST", path: "/admin/users/" + strings.Repeat("u", 257) + "/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":"x"}`}), 400, auth.CodeInvalidRequest)
	if a := s.do(t, call{path: "/auth/me", bearer: alice["access_token"].(string)}); a.status != 200 {
		t.Fatalf("refused suspensions touched alice: %d", a.status)
	}

	a := s.do(t, suspend)
	if a.status != 200 {
		t.Fatalf("suspend: %d %s", a.status, a.body)
	}
	m := a.json(t)
	if m["user_id"] != "u-alice" || m["suspended"] != true || m["suspended_by"] != opsEmail || m["reason"] != "chargeback fraud" || m["suspended_at"] == nil {
		t.Fatalf("suspend answer %s", a.body)
	}
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeInvalidSession)
	expectProblem(t, s.do(t, call{path: "/auth/me", bearer: alice["access_token"].(string)}), 401, auth.CodeInvalidToken)
	expectProblem(t, s.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON,
		body: jsonBody(map[string]string{"refresh_token": alice["refresh_token"].(string)})}), 401, auth.CodeInvalidToken)
	login := func(pw string) *answer {
		return s.do(t, call{method: "POST", path: "/auth/login", ctype: fiber.MIMEApplicationJSON, body: jsonBody(map[string]string{"email": aliceEmail, "password": pw})})
	}
	expectProblem(t, login(alicePassword), 403, auth.CodeAccountSuspended)
	expectProblem(t, login("not-her-password"), 401, auth.CodeInvalidCredentials)
	if a := s.do(t, call{path: "/auth/me", bearer: ops}); a.status != 200 {
		t.Fatalf("the operator's own login died: %d", a.status)
	}
	if a := s.do(t, call{path: "/admin/users/u-alice/account", bearer: ops}); a.status != 200 || a.json(t)["suspended"] != true {
		t.Fatalf("account: %d %s", a.status, a.body)
	}

	a = s.do(t, call{method: "DELETE", path: "/admin/users/u-alice/suspend", bearer: ops})
	if a.status != 200 || a.json(t)["suspended"] != false {
		t.Fatalf("unsuspend: %d %s", a.status, a.body)
	}
	if a := login(alicePassword); a.status != 200 {
		t.Fatalf("login after unsuspend: %d %s", a.status, a.body)
	}
	// The old credentials stay dead: lifting a suspension restores nothing.
	expectProblem(t, s.do(t, call{path: "/auth/me", bearer: alice["access_token"].(string)}), 401, auth.CodeInvalidToken)
}

// TestSuspensionTextMustBePrintable: the reason is stored
// and printed by `tokenshift user account`, so the printable-text rule of the
// flag audit applies: 400 naming the character, and nothing is suspended.
func TestSuspensionTextMustBePrintable(t *testing.T) {
	s := newDevServer(t, withAccounts(true))
	ops := s.loginJSON(t, opsEmail, opsPassword, "mobile").json(t)["access_token"].(string)
	for _, tc := range []struct {
		name, path, body, want string
	}{
		{name: "ESC in the reason", path: "/admin/users/u-alice/suspend", body: `{"reason":"fraud\u001b[2J\u001b]0;owned\u0007"}`, want: "U+001B"},
		{name: "BEL in the reason", path: "/admin/users/u-alice/suspend", body: `{"reason":"ding\u0007"}`, want: "U+0007"},
		{name: "CR LF in the reason", path: "/admin/users/u-alice/suspend", body: `{"reason":"fraud\r\nuser u-bob: active"}`, want: "U+000D"},
		{name: "bidi override in the reason", path: "/admin/users/u-alice/suspend", body: `{"reason":"abc\u202edef"}`, want: "U+202E"},
		{name: "C1 control in the reason", path: "/admin/users/u-alice/suspend", body: `{"reason":"csi\u009b2J"}`, want: "U+009B"},
		{name: "invalid UTF-8 in the reason", path: "/admin/users/u-alice/suspend", body: "{\"reason\":\"a\xff\xfeb\"}", want: "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.do(t, call{method: "POST", path: tc.path, bearer: ops, ctype: fiber.MIMEApplicationJSON, body: tc.body})
			expectProblem(t, a, 400, auth.CodeInvalidRequest)
			if d, _ := a.json(t)["detail"].(string); !strings.Contains(d, tc.want) {
				t.Fatalf("detail %q does not name %s", d, tc.want)
			}
		})
	}
	if a := s.do(t, call{path: "/admin/users/u-alice/account", bearer: ops}); a.status != 200 || a.json(t)["suspended"] != false {
		t.Fatalf("a refused suspension suspended alice: %d %s", a.status, a.body)
	}
	// Printable text in any script is fine.
	a := s.do(t, call{method: "POST", path: "/admin/users/u-alice/suspend", bearer: ops, ctype: fiber.MIMEApplicationJSON, body: `{"reason":"Rückbuchung — ticket №4711 ✓"}`})
	if a.status != 200 || a.json(t)["reason"] != "Rückbuchung — ticket №4711 ✓" {
		t.Fatalf("printable reason: %d %s", a.status, a.body)
	}
}

// errUsers answers every Verify with err.
type errUsers struct{ err error }

func (f errUsers) Verify(context.Context, string, string) (*user.User, error) { return nil, f.err }

// What the login answers for each way verification can fail that is not a
// wrong password.
func TestLoginVerifyErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       auth.Code
		detail     string
		retryAfter bool
		logged     string
	}{
		{name: "no hashing slot", err: fmt.Errorf("%w: %w", user.ErrBusy, context.DeadlineExceeded), status: 503, code: auth.CodeLoginBusy, retryAfter: true},
		{name: "suspended", err: user.ErrSuspended, status: 403, code: auth.CodeAccountSuspended, detail: "suspended"},
		{name: "user store down", err: fmt.Errorf("sql: %w", auth.ErrUnavailable), status: 503, code: auth.CodeUserStoreUnavailable, detail: "cannot be reached"},
		{name: "two rows for one login", err: fmt.Errorf("%w: query matched more than one row for one login", user.ErrSQLConfig), status: 503, code: auth.CodeUserStoreUnavailable,
			detail: "misconfigured", logged: "user store misconfigured"},
		{name: "shared store down", err: fmt.Errorf("%w: %w", user.ErrOverlay, auth.ErrUnavailable), status: 503, code: auth.CodeStoreUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logbuf.Buffer
			s := newDevServer(t, func(o *testOptions, _ *token.Options) {
				o.Users = errUsers{err: tc.err}
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			a := s.do(t, call{method: "POST", path: "/auth/login", ctype: fiber.MIMEApplicationJSON, body: jsonBody(map[string]string{"email": aliceEmail, "password": "x"})})
			expectProblem(t, a, tc.status, tc.code)
			if d, _ := a.json(t)["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q lacks %q", d, tc.detail)
			}
			if (a.header.Get(fiber.HeaderRetryAfter) != "") != tc.retryAfter {
				t.Fatalf("Retry-After = %q", a.header.Get(fiber.HeaderRetryAfter))
			}
			if tc.logged != "" && !strings.Contains(logs.String(), tc.logged) {
				t.Fatalf("log lacks %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}

func TestAccountCodesHaveStatuses(t *testing.T) {
	for code, want := range map[auth.Code]int{
		auth.CodeLoginBusy: 503, auth.CodeAccountSuspended: 403, auth.CodePasswordChangeDisabled: 403,
	} {
		if got := Status(code); got != want {
			t.Errorf("%s → %d, want %d", code, got, want)
		}
	}
}
