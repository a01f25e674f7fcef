package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// loginLog records every login outcome the handlers report, and passes it on
// to the real recorder.
type loginLog struct {
	UsageRecorder
	mu  sync.Mutex
	got []string
}

func (l *loginLog) Login(clientID string, outcome auth.LoginOutcome) {
	l.mu.Lock()
	l.got = append(l.got, clientID+"/"+string(outcome))
	l.mu.Unlock()
	l.UsageRecorder.Login(clientID, outcome)
}

func (l *loginLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.got
	l.got = nil
	return out
}

// flakyStore fails the operations a test switches on, with a store outage.
type flakyStore struct {
	store.Store
	failDelete, failSet atomic.Bool
}

func (s *flakyStore) DeleteCtx(ctx context.Context, keys ...string) error {
	if s.failDelete.Load() {
		return auth.ErrUnavailable
	}
	return s.Store.DeleteCtx(ctx, keys...)
}

func (s *flakyStore) HSetFields(ctx context.Context, key string, exp time.Duration, fields ...store.Field) error {
	if s.failSet.Load() {
		return auth.ErrUnavailable
	}
	return s.Store.HSetFields(ctx, key, exp, fields...)
}

func (s *flakyStore) SetCtx(ctx context.Context, key string, val []byte, exp time.Duration) error {
	if s.failSet.Load() {
		return auth.ErrUnavailable
	}
	return s.Store.SetCtx(ctx, key, val, exp)
}

// suspendedUsers answers ErrSuspended for one account with the right password.
type suspendedUsers struct {
	logins.Authenticator
	email string
}

func (u suspendedUsers) Verify(ctx context.Context, login, password string) (*user.User, error) {
	if strings.EqualFold(login, u.email) {
		if _, err := u.Authenticator.Verify(ctx, login, password); err != nil {
			return nil, err
		}
		return nil, user.ErrSuspended
	}
	return u.Authenticator.Verify(ctx, login, password)
}

// TestLoginOutcomesCounted: every way a login ends is counted under its own
// outcome in tokenshift_logins_total: a login refused by the login-CSRF
// check is csrf_failed, a suspended account is suspended (neither is an
// error of ours), and the store failures after the password check (settling
// the rate limit, issuing the tokens) are counted as error instead of not at
// all.
func TestLoginOutcomesCounted(t *testing.T) {
	var log *loginLog
	var limiterStore, tokenStore *flakyStore
	ts := newTestServer(t, func(o *testOptions) {
		log = &loginLog{UsageRecorder: o.Usage}
		o.Usage = log
		limiterStore = &flakyStore{Store: o.Store}
		o.Store = limiterStore
		o.Users = suspendedUsers{Authenticator: o.Users, email: "ops@example.com"}
		// A token service of its own over a store that can fail, so issuing
		// can fail after the session was created.
		tokenStore = &flakyStore{Store: store.NewMemory(time.Now)}
		rev := token.NewRevocations(tokenStore, time.Now, nil)
		if err := rev.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ring, err := token.NewEphemeralKeyRing(token.AlgEdDSA)
		if err != nil {
			t.Fatal(err)
		}
		tokens, err := token.NewService(token.Options{CacheBytes: 1 << 20, Clients: []string{"web", "spa", "mobile"}}, ring, tokenStore, rev)
		if err != nil {
			t.Fatal(err)
		}
		o.Tokens, o.Revoked = tokens, rev
	})
	login := func(email, pass string) *tresp {
		return ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": email, "password": pass, "client_id": "web"}})
	}

	tests := []struct {
		name   string
		setup  func()
		send   func() *tresp
		status int
		want   string
	}{
		{name: "csrf refused", send: func() *tresp { return ts.do(t, treq{method: "POST", path: "/auth/login", form: aliceForm("")}) },
			status: 403, want: "web/csrf_failed"},
		{name: "suspended account", send: func() *tresp { return login("ops@example.com", "ops-pass") }, status: 403, want: "web/suspended"},
		{name: "rate limit cannot be settled", setup: func() { limiterStore.failDelete.Store(true) },
			send: func() *tresp { return login("alice@example.com", "alice-pass") }, status: 503, want: "web/error"},
		{name: "tokens cannot be issued", setup: func() { limiterStore.failDelete.Store(false); tokenStore.failSet.Store(true) },
			send: func() *tresp { return login("alice@example.com", "alice-pass") }, status: 503, want: "web/error"},
		{name: "success", setup: func() { tokenStore.failSet.Store(false) },
			send: func() *tresp { return login("alice@example.com", "alice-pass") }, status: 200, want: "web/success"},
	}
	for _, tt := range tests {
		if tt.setup != nil {
			tt.setup()
		}
		r := tt.send()
		if r.status != tt.status {
			t.Errorf("%s: status %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
		if got := log.take(); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("%s: login outcomes recorded %v, want exactly [%s]", tt.name, got, tt.want)
		}
	}

	// The real recorder keeps csrf_failed and suspended as label values of
	// their own rather than folding them into error.
	rec := httptest.NewRecorder()
	log.UsageRecorder.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`tokenshift_logins_total{client="web",outcome="csrf_failed"} 1`,
		`tokenshift_logins_total{client="web",outcome="suspended"} 1`,
		`tokenshift_logins_total{client="web",outcome="error"} 2`,
		`tokenshift_logins_total{client="web",outcome="success"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// busyAccounts fails every password change's check of the current password.
type busyAccounts struct {
	logins.AccountManager
	err error
}

func (a busyAccounts) ChangePassword(context.Context, string, string, string, string) error {
	return a.err
}

// TestPasswordChangeCheckFailureCounted: a password change whose check of
// the current password could not be done (or met a suspended account) is
// counted as a login attempt with that outcome; a wrong current password
// and a refused new one are not counted.
func TestPasswordChangeCheckFailureCounted(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		want   []string
	}{
		{name: "no hashing slot", err: fmt.Errorf("%w: %w", user.ErrBusy, context.DeadlineExceeded), status: 503, want: []string{"mobile/error"}},
		{name: "suspended", err: user.ErrSuspended, status: 403, want: []string{"mobile/suspended"}},
		{name: "wrong current password", err: user.ErrInvalidCredentials, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log *loginLog
			s := newDevServer(t, withAccounts(true), func(o *testOptions, _ *token.Options) {
				o.Accounts = busyAccounts{AccountManager: o.Accounts, err: tt.err}
				log = &loginLog{UsageRecorder: o.Usage}
				o.Usage = log
			})
			m := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)
			log.take()
			a := s.do(t, call{method: "POST", path: "/auth/password", ctype: "application/json", bearer: m["access_token"].(string),
				body: jsonBody(map[string]string{"current_password": alicePassword, "new_password": "alice-new-password-1"})})
			if a.status != tt.status {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tt.status)
			}
			if got := log.take(); !slices.Equal(got, tt.want) {
				t.Fatalf("login outcomes %v, want %v", got, tt.want)
			}
		})
	}
}
