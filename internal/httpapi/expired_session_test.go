package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
)

// outcomeRecorder keeps the session outcomes the authn middleware records.
type outcomeRecorder struct {
	UsageRecorder
	mu       sync.Mutex
	outcomes []auth.Outcome
}

func (r *outcomeRecorder) Record(scheme auth.Scheme, clientID, userID string, outcome auth.Outcome) {
	if scheme == auth.SchemeSession {
		r.mu.Lock()
		r.outcomes = append(r.outcomes, outcome)
		r.mu.Unlock()
	}
	r.UsageRecorder.Record(scheme, clientID, userID, outcome)
}

// A client that keeps sending its timed-out cookie is counted "expired" on
// every request, not "expired" once and then "invalid": the usage report
// would otherwise show expiries as forgeries.
func TestExpiredSessionCountedExpiredEveryTime(t *testing.T) {
	clk := fakeclock.New(time.Now())
	var m *session.Manager
	rec := &outcomeRecorder{}
	ts := newTestServer(t, func(o *testOptions) {
		var err error
		m, err = session.New(o.Store, session.Options{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute, Clock: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		o.Sessions = m
		rec.UsageRecorder = o.Usage
		o.Usage = rec
	})
	_, cookie, err := m.Create(context.Background(), session.NewSession{UserID: "u-alice", ClientID: "web", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Minute)
	for i := range 2 {
		r := ts.do(t, treq{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_session", Value: cookie}}})
		if r.status != 401 || !strings.Contains(string(r.body), "expired") {
			t.Fatalf("request %d with the expired cookie: %d %s; want 401 naming the expiry", i+1, r.status, r.body)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.outcomes) != 2 || rec.outcomes[0] != auth.OutcomeExpired || rec.outcomes[1] != auth.OutcomeExpired {
		t.Fatalf("session outcomes recorded = %v; want expired twice", rec.outcomes)
	}
}
