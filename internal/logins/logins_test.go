package logins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

const (
	alice     = "alice@example.com"
	alicePass = "alice-dev-password"
)

var testClients = []auth.Client{
	{ID: "web", Kind: auth.KindWeb, TokenTransport: auth.TransportBody},
	{ID: "spa", Kind: auth.KindSPA, TokenTransport: auth.TransportCookie},
}

// issued counts what the service hands out.
type issued struct{ n atomic.Int64 }

func (c *issued) Issued(string) { c.n.Add(1) }

// env is the service over the in-memory store, the dev users with the
// account overlay, and real sessions and tokens.
type env struct {
	*Service
	st       *store.Memory
	sessions *session.Manager
	tokens   *token.Service
	rev      *token.Revocations
	verifier *user.Verifier
}

type envOption func(*Options)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	return newEnvOn(t, st, opts...)
}

// sibling is another instance over the same store.
func (e *env) sibling(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, e.st, opts...)
}

func newEnvOn(t *testing.T, st *store.Memory, opts ...envOption) *env {
	t.Helper()
	rev := token.NewRevocations(st, time.Now, nil)
	if err := rev.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewEphemeralKeyRing(token.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.NewService(token.Options{CacheBytes: 1 << 20, Clients: []string{"web", "spa"}}, ring, st, rev)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := user.ParseFile(configs.DevUsersYAML)
	if err != nil {
		t.Fatal(err)
	}
	v := user.NewVerifier(fs, &user.VerifierOptions{Overlay: user.NewStoreOverlay(st), AllowPasswordChange: true, PasswordCost: 4, Logger: slog.New(slog.DiscardHandler)})
	o := Options{
		Logger: slog.New(slog.DiscardHandler), Store: st, Sessions: sessions, Tokens: tokens, Revoked: rev,
		Users: v, Accounts: v, Usage: &issued{}, Clients: testClients, DefaultClient: "web",
		RateLimit: RateLimit{PerAccount: 3, PerIP: 100, Window: time.Minute},
	}
	for _, opt := range opts {
		opt(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{Service: s, st: st, sessions: o.Sessions, tokens: tokens, rev: rev, verifier: v}
}

func inPhase(p featureflags.Phase) envOption {
	return func(o *Options) {
		f, err := featureflags.NewFlags(featureflags.State{Phase: p, RolloutSeed: "test"})
		if err != nil {
			panic(err)
		}
		o.Flags = f
	}
}

func (e *env) login(t *testing.T, client string) Login {
	t.Helper()
	l, err := e.Login(t.Context(), LoginRequest{Client: e.clients[client], Email: alice, Password: alicePass, IP: "192.0.2.1"})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return l
}

func wantCode(t *testing.T, err error, code auth.Code) {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *auth.Error (want %s)", err, code)
	}
	if ae.Code != code {
		t.Fatalf("code %s (%v), want %s", ae.Code, err, code)
	}
}

// TestLoginByPhase: the phase decides what a login hands out, always under
// one sid that the session record holds.
func TestLoginByPhase(t *testing.T) {
	tests := []struct {
		name           string
		phase          featureflags.Phase
		cookie, tokens bool
	}{
		{name: "legacy", phase: featureflags.PhaseLegacy, cookie: true},
		{name: "dual", phase: featureflags.PhaseDual, cookie: true, tokens: true},
		{name: "jwt-only", phase: featureflags.PhaseJWTOnly, tokens: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, inPhase(tt.phase))
			l := e.login(t, "web")
			if (l.Cookie != "") != tt.cookie || (l.Tokens != nil) != tt.tokens {
				t.Fatalf("cookie %q, tokens %v; want cookie %v, tokens %v", l.Cookie, l.Tokens, tt.cookie, tt.tokens)
			}
			if l.Phase != tt.phase || l.UserID != "u-alice" || l.ClientID != "web" {
				t.Fatalf("login %+v", l)
			}
			if _, err := e.sessions.Get(t.Context(), l.SID); err != nil {
				t.Fatalf("no login record for sid %s: %v", l.SID, err)
			}
		})
	}
}

// TestLoginFailures: each way a login fails has its code, and what it does
// to the rate-limit budget.
func TestLoginFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, e *env)
		users  Authenticator
		pass   string
		hook   func(context.Context) error
		code   auth.Code
		reason error
	}{
		{name: "wrong password", pass: "wrong", code: auth.CodeInvalidCredentials},
		{name: "suspended", setup: func(t *testing.T, e *env) {
			if _, err := e.verifier.Suspend(t.Context(), "u-alice", "ops", "test"); err != nil {
				t.Fatal(err)
			}
		}, code: auth.CodeAccountSuspended},
		{name: "no hashing slot", users: failingUsers{fmt.Errorf("%w: %w", user.ErrBusy, context.DeadlineExceeded)}, code: auth.CodeLoginBusy},
		{name: "user store down", users: failingUsers{fmt.Errorf("sql: %w", auth.ErrUnavailable)}, code: auth.CodeUserStoreUnavailable},
		{name: "user store misconfigured", users: failingUsers{user.ErrSQLConfig}, code: auth.CodeUserStoreUnavailable},
		{name: "shared store down", users: failingUsers{fmt.Errorf("%w: %w", user.ErrOverlay, auth.ErrUnavailable)}, code: auth.CodeStoreUnavailable},
		{name: "refused after the password check", hook: func(context.Context) error {
			return auth.Errorf(auth.CodeCSRF, "form already used")
		}, code: auth.CodeCSRF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				if tt.users != nil {
					o.Users = tt.users
				}
			})
			if tt.setup != nil {
				tt.setup(t, e)
			}
			pass := alicePass
			if tt.pass != "" {
				pass = tt.pass
			}
			_, err := e.Login(t.Context(), LoginRequest{Client: testClients[0], Email: alice, Password: pass, IP: "192.0.2.1", PasswordChecked: tt.hook})
			wantCode(t, err, tt.code)
			if logins, err := e.ListLogins(t.Context(), "u-alice"); err != nil || len(logins) != 0 {
				t.Fatalf("a failed login left logins %v (%v)", logins, err)
			}
		})
	}
}

type failingUsers struct{ err error }

func (f failingUsers) Verify(context.Context, string, string) (*user.User, error) {
	return nil, f.err
}

// TestLoginRateLimit: wrong passwords spend the budget, then the login is
// refused with the seconds to wait; the right password gives its unit back.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	try := func(pass string) error {
		_, err := e.Login(t.Context(), LoginRequest{Client: testClients[0], Email: alice, Password: pass, IP: "192.0.2.1"})
		return err
	}
	for range 5 {
		if err := try(alicePass); err != nil {
			t.Fatalf("right password: %v", err)
		}
	}
	for range 3 {
		wantCode(t, try("wrong"), auth.CodeInvalidCredentials)
	}
	err := try(alicePass)
	wantCode(t, err, auth.CodeRateLimited)
	var ae *auth.Error
	errors.As(err, &ae)
	if secs, _ := ae.Extra["retry_after"].(int); secs < 1 || secs > 60 {
		t.Fatalf("retry_after %v", ae.Extra)
	}
}

// TestLoginOvertakenByRevocation: a revocation of the user that lands while
// the password is being checked ends the login being made.
func TestLoginOvertakenByRevocation(t *testing.T) {
	e := newEnv(t)
	e.o.Users = revokingUsers{Authenticator: e.o.Users, revoke: func(ctx context.Context) error {
		return e.RevokeAllOf(ctx, "u-alice", "test")
	}}
	_, err := e.Login(t.Context(), LoginRequest{Client: testClients[0], Email: alice, Password: alicePass, IP: "192.0.2.1"})
	if !errors.Is(err, ErrOvertaken) {
		t.Fatalf("err %v, want ErrOvertaken", err)
	}
	wantCode(t, err, auth.CodeInvalidCredentials)
	list, err := e.sessions.ListByUser(t.Context(), "u-alice")
	if err != nil || len(list) != 0 {
		t.Fatalf("the overtaken login's record is still there: %v %v", list, err)
	}
}

type revokingUsers struct {
	Authenticator
	revoke func(ctx context.Context) error
}

func (u revokingUsers) Verify(ctx context.Context, login, password string) (*user.User, error) {
	got, err := u.Authenticator.Verify(ctx, login, password)
	if err == nil {
		// The same clock instant as the login's authAt is not "after" it.
		time.Sleep(time.Millisecond)
		if err := u.revoke(ctx); err != nil {
			return nil, err
		}
	}
	return got, err
}

// TestLoginEvictionRevokesTokens: a login beyond session.max_per_user ends
// the oldest, tokens included.
func TestLoginEvictionRevokesTokens(t *testing.T) {
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	sessions, err := session.New(st, session.Options{MaxPerUser: 1, OnLimit: session.LimitEvictOldest})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sessions = sessions; o.Store = st })
	first := e.login(t, "web")
	e.login(t, "web")
	if _, err := e.tokens.LookupRefresh(t.Context(), first.Tokens.RefreshToken); err == nil {
		t.Fatal("the evicted login's refresh token still works")
	}
}

// TestRefresh: the checks a refresh passes before its token rotates, and
// what each refusal ends.
func TestRefresh(t *testing.T) {
	tests := []struct {
		name  string
		after func(t *testing.T, e *env, l Login)
		check func(auth.Client) error
		code  auth.Code
		ended bool // the login is over, not only this refresh
	}{
		{name: "rotates"},
		{name: "suspended since", after: func(t *testing.T, e *env, _ Login) {
			if _, err := e.verifier.Suspend(t.Context(), "u-alice", "ops", "test"); err != nil {
				t.Fatal(err)
			}
		}, code: auth.CodeAccountSuspended, ended: true},
		{name: "password changed since", after: func(t *testing.T, e *env, _ Login) {
			time.Sleep(time.Millisecond)
			if err := e.verifier.ChangePassword(t.Context(), "u-alice", alice, alicePass, "alice-new-password-1"); err != nil {
				t.Fatal(err)
			}
		}, code: auth.CodeInvalidToken, ended: true},
		{name: "login record gone", after: func(t *testing.T, e *env, l Login) {
			if err := e.sessions.Delete(t.Context(), l.SID); err != nil {
				t.Fatal(err)
			}
		}, code: auth.CodeInvalidToken, ended: true},
		{name: "refused by the caller", check: func(auth.Client) error {
			return auth.Errorf(auth.CodeOriginNotAllowed, "no")
		}, code: auth.CodeOriginNotAllowed},
		{name: "reused", after: func(t *testing.T, e *env, l Login) {
			if _, err := e.Refresh(t.Context(), l.Tokens.RefreshToken, nil); err != nil {
				t.Fatal(err)
			}
		}, code: auth.CodeInvalidToken, ended: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.login(t, "web")
			if tt.after != nil {
				tt.after(t, e, l)
			}
			r, err := e.Refresh(t.Context(), l.Tokens.RefreshToken, tt.check)
			if tt.code == "" {
				if err != nil || r.SID != l.SID || r.Client.ID != "web" || r.RefreshToken == l.Tokens.RefreshToken {
					t.Fatalf("refresh %+v, %v", r, err)
				}
				return
			}
			wantCode(t, err, tt.code)
			_, gone := e.sessions.Get(t.Context(), l.SID)
			if ended := errors.Is(gone, auth.ErrNotFound); ended != tt.ended {
				t.Fatalf("login ended %v, want %v", ended, tt.ended)
			}
			if !tt.ended {
				if _, err := e.tokens.LookupRefresh(t.Context(), l.Tokens.RefreshToken); err != nil {
					t.Fatalf("a refused refresh used the token up: %v", err)
				}
			}
		})
	}
}

// TestVerifySessionRevokedUser: a session dated before a per-user
// revocation is revoked, wherever the revocation was made.
func TestVerifySessionRevokedUser(t *testing.T) {
	e := newEnv(t)
	l := e.login(t, "web")
	if _, _, err := e.VerifySession(t.Context(), l.Cookie); err != nil {
		t.Fatalf("fresh session: %v", err)
	}
	// Only the mirror knows: the record itself is left in place.
	now := time.Now().Add(time.Millisecond)
	if err := e.rev.RevokeUser(t.Context(), "u-alice", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.VerifySession(t.Context(), l.Cookie); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("session after the user's revocation: %v, want ErrRevoked", err)
	}
}

// TestSuspendAndLogoutEndLogins: suspension, log out everywhere and a
// password change end every login; logout ends one.
func TestSuspendAndLogoutEndLogins(t *testing.T) {
	tests := []struct {
		name   string
		end    func(t *testing.T, e *env, l Login) error
		remain int
	}{
		{name: "logout", end: func(t *testing.T, e *env, l Login) error { return e.Logout(t.Context(), l.UserID, l.SID, false) }, remain: 1},
		{name: "logout everywhere", end: func(t *testing.T, e *env, l Login) error { return e.Logout(t.Context(), l.UserID, l.SID, true) }},
		{name: "suspension", end: func(t *testing.T, e *env, l Login) error {
			_, err := e.SuspendUser(t.Context(), l.UserID, "ops", "test")
			return err
		}},
		{name: "password change", end: func(t *testing.T, e *env, l Login) error {
			return e.ChangePassword(t.Context(), PasswordChange{UserID: l.UserID, Email: alice, IP: "192.0.2.1", Current: alicePass, Next: "alice-new-password-1"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.login(t, "web")
			l := e.login(t, "spa")
			if err := tt.end(t, e, l); err != nil {
				t.Fatal(err)
			}
			list, err := e.ListLogins(t.Context(), "u-alice")
			if err != nil || len(list) != tt.remain {
				t.Fatalf("%d logins left (%v), want %d", len(list), err, tt.remain)
			}
			if _, err := e.tokens.VerifyAccess(l.Tokens.AccessToken); err == nil {
				t.Fatal("the ended login's access token still verifies")
			}
		})
	}
}

// TestCodeError: the sentinel → code table, most specific first.
func TestCodeError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		wrap func(error) error
		code auth.Code
		// message, if set, is the detail the client reads.
		message string
	}{
		{name: "store down", err: fmt.Errorf("redis: %w", auth.ErrUnavailable), wrap: codeError, code: auth.CodeStoreUnavailable},
		{name: "session limit", err: session.ErrLimitReached, wrap: codeError, code: auth.CodeSessionLimit},
		{name: "coded error kept", err: auth.Errorf(auth.CodeCSRF, "x"), wrap: codeError, code: auth.CodeCSRF},
		{name: "unknown stays internal", err: errors.New("boom"), wrap: codeError, code: auth.CodeInternal},
		{name: "user store down", err: auth.ErrUnavailable, wrap: userStoreError, code: auth.CodeUserStoreUnavailable},
		{name: "overlay down", err: fmt.Errorf("%w: %w", user.ErrOverlay, auth.ErrUnavailable), wrap: userStoreError, code: auth.CodeStoreUnavailable},
		{name: "account changed during login", err: user.ErrAccountChanged, wrap: userStoreError, code: auth.CodeInvalidCredentials},
		{name: "refresh token store down", err: auth.ErrUnavailable, wrap: refreshError, code: auth.CodeStoreUnavailable, message: "the token store is unavailable; retry shortly"},
		{name: "other store down", err: auth.ErrUnavailable, wrap: codeError, code: auth.CodeStoreUnavailable, message: "the store is unavailable; retry shortly"},
		{name: "refresh token reused", err: token.ErrRefreshReused, wrap: refreshError, code: auth.CodeInvalidToken},
		{name: "refresh token unknown", err: auth.ErrNotFound, wrap: refreshError, code: auth.CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.wrap(tt.err)
			if code := auth.ErrorCode(got); code != tt.code {
				t.Fatalf("code %s, want %s", code, tt.code)
			}
			var ae *auth.Error
			if tt.message != "" && (!errors.As(got, &ae) || ae.Message != tt.message) {
				t.Fatalf("message of %v, want %q", got, tt.message)
			}
			if !errors.Is(tt.wrap(tt.err), tt.err) {
				t.Fatal("the cause is lost")
			}
		})
	}
}
