package httpapi

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/tokenshift/tokenshift/internal/store"
)

// notDurableStore answers Durable as a Redis whose replicas do not
// acknowledge (a failover in progress, replicas down) while fail is set.
type notDurableStore struct {
	store.Store
	fail  atomic.Bool
	calls atomic.Int64
}

func (s *notDurableStore) Durable(ctx context.Context) error {
	s.calls.Add(1)
	if s.fail.Load() {
		return fmt.Errorf("test: %w", store.ErrNotDurable)
	}
	return s.Store.Durable(ctx)
}

// TestCredentialWritesWaitForDurability: every answer that reports a
// credential write as done (login, exchange, refresh, logout, RFC 7009
// revocation) asks the store for durability last, and answers 503
// store_unavailable without credential cookies when the writes are not on
// enough replicas, instead of a success a failover could take back.
func TestCredentialWritesWaitForDurability(t *testing.T) {
	var st *notDurableStore
	ts := newTestServer(t, func(o *testOptions) {
		st = &notDurableStore{Store: o.Store}
		o.Store = st
	})
	tests := []struct {
		name string
		// run does what the request needs first, then calls fail, then the
		// request under test.
		run func(t *testing.T, fail func()) *tresp
	}{
		{name: "login web", run: func(t *testing.T, fail func()) *tresp {
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": "alice@example.com", "password": "alice-pass", "client_id": "web"}})
		}},
		{name: "login spa (token cookies)", run: func(t *testing.T, fail func()) *tresp {
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": "alice@example.com", "password": "alice-pass", "client_id": "spa"}})
		}},
		{name: "refresh", run: func(t *testing.T, fail func()) *tresp {
			rt := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["refresh_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": rt}})
		}},
		{name: "exchange", run: func(t *testing.T, fail func()) *tresp {
			lr := ts.loginJSON(t, "alice@example.com", "alice-pass", "web")
			csrf := lr.json(t)["csrf_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/exchange", cookies: lr.cookies, header: map[string]string{"X-CSRF-Token": csrf, "Origin": "http://tokenshift.test"}})
		}},
		{name: "logout", run: func(t *testing.T, fail func()) *tresp {
			at := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["access_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/logout", header: map[string]string{"Authorization": "Bearer " + at}})
		}},
		{name: "logout everywhere", run: func(t *testing.T, fail func()) *tresp {
			at := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["access_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/logout?all=true", header: map[string]string{"Authorization": "Bearer " + at}})
		}},
		{name: "revoke access token", run: func(t *testing.T, fail func()) *tresp {
			at := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["access_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token": {at}, "token_type_hint": {"access_token"}}})
		}},
		{name: "revoke refresh token", run: func(t *testing.T, fail func()) *tresp {
			rt := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["refresh_token"].(string)
			fail()
			return ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token": {rt}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st.fail.Store(false)
			t.Cleanup(func() { st.fail.Store(false) })
			var before int64
			r := tc.run(t, func() { st.fail.Store(true); before = st.calls.Load() })
			if st.calls.Load() == before {
				t.Fatal("the answer was given without asking the store for durability")
			}
			wantProblem(t, r, 503, "store_unavailable")
			for _, c := range r.cookies {
				if c.Value != "" && c.MaxAge >= 0 {
					t.Errorf("a 503 sets cookie %s: a credential that may not survive", c.Name)
				}
			}
		})
	}
}
