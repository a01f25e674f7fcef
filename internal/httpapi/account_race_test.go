package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// overtaken lets an account change land right after the password verified
// (and after the Verifier's own second look at the account), before the
// login is written: the revocation's DeleteByUser cannot see the login, and
// its not-before is older than the login's write.
type overtaken struct {
	logins.Authenticator
	change func(ctx context.Context)
}

func (o overtaken) Verify(ctx context.Context, login, password string) (*user.User, error) {
	u, err := o.Authenticator.Verify(ctx, login, password)
	if err == nil {
		o.change(ctx)
	}
	return u, err
}

// TestLoginOvertakenByAnAccountChange: a login whose account was changed
// (suspended, password changed, logged out everywhere) while its password
// was being checked hands out no credential and leaves no login behind
// (issue 10, item 1).
func TestLoginOvertakenByAnAccountChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(ctx context.Context, s *devServer) error
	}{
		{name: "suspended", change: func(ctx context.Context, s *devServer) error {
			_, err := s.logins.SuspendUser(ctx, "u-alice", opsEmail, "fraud")
			return err
		}},
		{name: "password changed", change: func(ctx context.Context, s *devServer) error {
			if err := s.opts.Accounts.ChangePassword(ctx, "u-alice", aliceEmail, alicePassword, "alice-new-password"); err != nil {
				return err
			}
			return s.logins.RevokeAllOf(ctx, "u-alice", "password-change")
		}},
		{name: "logged out everywhere", change: func(ctx context.Context, s *devServer) error {
			return s.logins.RevokeAllOf(ctx, "u-alice", "logout-all")
		}},
	}
	for _, tc := range tests {
		for _, client := range []string{"web", "spa", "mobile"} {
			t.Run(tc.name+"/"+client, func(t *testing.T) {
				var s *devServer
				s = newDevServer(t, withAccounts(true), func(o *testOptions, _ *token.Options) {
					o.Users = overtaken{Authenticator: o.Users, change: func(ctx context.Context) {
						if err := tc.change(ctx, s); err != nil {
							t.Errorf("change: %v", err)
						}
					}}
				})
				a := s.do(t, call{method: "POST", path: "/auth/login", ctype: fiber.MIMEApplicationJSON,
					body: jsonBody(map[string]string{"email": aliceEmail, "password": alicePassword, "client_id": client})})
				expectProblem(t, a, 401, auth.CodeInvalidCredentials)
				for name, c := range a.cookie {
					if c.Value != "" && name != s.opts.Cookies.preSessionCookie() {
						t.Errorf("credential cookie %s handed out: %+v", name, c)
					}
				}
				logins, err := s.logins.ListLogins(context.Background(), "u-alice")
				if err != nil || len(logins) != 0 {
					t.Fatalf("logins left behind: %+v, %v", logins, err)
				}
			})
		}
	}
}

// TestRefreshChecksTheAccount: a refresh looks at the account itself, not
// only at the revocations: a suspended account, or one whose password was
// changed after the login, gets no new pair even when the revocation that
// should have ended the family was lost, and the login ends.
func TestRefreshChecksTheAccount(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// before runs before the login, after between login and refresh,
		// both on the account overlay alone (no revocation).
		before, after func(o user.Overlay) error
		status        int
		code          auth.Code
	}{
		{name: "untouched", status: 200},
		{name: "suspended", after: func(o user.Overlay) error {
			return o.SetSuspended(ctx, "u-alice", time.Now(), opsEmail, "fraud")
		}, status: 403, code: auth.CodeAccountSuspended},
		{name: "password changed after the login", after: func(o user.Overlay) error {
			return o.SetPassword(ctx, "u-alice", "bcrypt_sha256$unused", time.Now())
		}, status: 401, code: auth.CodeInvalidToken},
		{name: "password changed before the login", before: func(o user.Overlay) error {
			return o.SetPassword(ctx, "u-alice", "", time.Now().Add(-time.Minute))
		}, status: 200},
		{name: "suspension lifted before the login", before: func(o user.Overlay) error {
			if err := o.SetSuspended(ctx, "u-alice", time.Now(), opsEmail, "fraud"); err != nil {
				return err
			}
			return o.ClearSuspended(ctx, "u-alice")
		}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDevServer(t, withAccounts(true))
			o := user.NewStoreOverlay(s.store)
			if tc.before != nil {
				if err := tc.before(o); err != nil {
					t.Fatal(err)
				}
			}
			m := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)
			if tc.after != nil {
				if err := tc.after(o); err != nil {
					t.Fatal(err)
				}
			}
			a := s.do(t, call{method: "POST", path: "/auth/refresh", ctype: fiber.MIMEApplicationJSON,
				body: jsonBody(map[string]string{"refresh_token": m["refresh_token"].(string)})})
			if tc.status == 200 {
				if a.status != 200 {
					t.Fatalf("refresh: %d %s", a.status, a.body)
				}
				return
			}
			expectProblem(t, a, tc.status, tc.code)
			// The login is over, not only this refresh.
			expectProblem(t, s.do(t, call{path: "/auth/me", bearer: m["access_token"].(string)}), 401, auth.CodeInvalidToken)
			if _, err := s.opts.Sessions.Get(ctx, m["sid"].(string)); !isNotFound(err) {
				t.Fatalf("the login record outlived the refused refresh: %v", err)
			}
		})
	}
}
