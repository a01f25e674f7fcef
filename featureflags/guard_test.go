package featureflags

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestGuardJudgesCoverage: the guard refuses a forward move when the usage
// data does not cover its window or holds no traffic of the affected
// clients, whatever the share, and says why in the figures; a forced change
// goes through and keeps those figures in the audit.
func TestGuardJudgesCoverage(t *testing.T) {
	clock := newClock() // 2026-04-01 09:00 UTC
	now := clock.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	tests := []struct {
		name    string
		guard   func() *fakeGuard
		refused bool
		covered string
		reason  string // substring of one reason when refused
	}{
		{name: "history longer than the window", guard: func() *fakeGuard { return &fakeGuard{share: 0.001, since: at(25 * time.Hour)} }, covered: "24h"},
		{name: "history exactly the window", guard: func() *fakeGuard { return &fakeGuard{share: 0, since: at(24 * time.Hour)} }, covered: "24h"},
		{name: "fresh deployment", guard: func() *fakeGuard { return &fakeGuard{share: 0, since: at(3*time.Hour + 12*time.Minute)} }, refused: true, covered: "3h12m",
			reason: "usage data only covers 3h12m of the 24h window"},
		{name: "no usage data at all", guard: func() *fakeGuard { return &fakeGuard{noData: true, total: -1} }, refused: true, covered: "0m",
			reason: "no usage data has been recorded yet"},
		{name: "no traffic of the affected clients", guard: func() *fakeGuard { return &fakeGuard{total: -1} }, refused: true, covered: "24h",
			reason: "sent no accepted request in the 24h window"},
		{name: "store lost data inside the window", guard: func() *fakeGuard { return &fakeGuard{share: 0, lostAt: at(2 * time.Hour)} }, refused: true, covered: "2h",
			reason: "lost data inside the 24h window"},
		{name: "store lost data before the window", guard: func() *fakeGuard { return &fakeGuard{share: 0, lostAt: at(48 * time.Hour)} }, covered: "24h"},
		{name: "share above the threshold", guard: func() *fakeGuard { return &fakeGuard{share: 0.02} }, refused: true, covered: "24h",
			reason: "session share 2.00% (200 of 10000 requests) is above the maximum 1.00%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			g := tt.guard()
			m := newTestManager(t, nil, clock, g.Func)
			c := change(m, "ops@example.com", "", func(s *State) { s.Clients["web"] = ClientRule{Phase: PhaseJWTOnly} })
			_, err := m.Apply(ctx, c)
			var ge *GuardError
			if !tt.refused {
				if err != nil {
					t.Fatalf("Apply = %v, want it allowed", err)
				}
				e, _ := m.Audit(ctx, 1)
				if f := e[0].Figures; f == nil || f.Covered != tt.covered || len(f.Reasons) != 0 {
					t.Errorf("audited figures = %+v, want covered %s and no reason", f, tt.covered)
				}
				return
			}
			if !errors.As(err, &ge) {
				t.Fatalf("Apply = %v, want a *GuardError", err)
			}
			f := ge.Figures
			if f.Covered != tt.covered || f.Window != "24h" {
				t.Errorf("covered %q of %q, want %q of 24h", f.Covered, f.Window, tt.covered)
			}
			if !hasSubstring(f.Reasons, tt.reason) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("reasons %q (error %q) lack %q", f.Reasons, err, tt.reason)
			}
			if _, err := m.Apply(ctx, c.with(true, "fresh cluster, sessions were retired on the old one")); err != nil {
				t.Fatalf("forced Apply: %v", err)
			}
			e, _ := m.Audit(ctx, 1)
			if !e[0].Forced || e[0].Figures == nil || !hasSubstring(e[0].Figures.Reasons, tt.reason) {
				t.Errorf("forced entry = %+v, want forced with the refusal's reasons", e[0])
			}
		})
	}
}

// TestGuardMaxShareZero: an explicit 0 means no session at all, never the
// 1 % default.
func TestGuardMaxShareZero(t *testing.T) {
	ctx := context.Background()
	g := &fakeGuard{share: 0.0001} // 1 of 10 000
	m, err := NewManager(ctx, Options{Initial: initialState(), KnownClients: known, Guard: g.Func, GuardMaxShare: 0, Clock: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	c := change(m, "ops", "", func(s *State) { s.Clients["web"] = ClientRule{Phase: PhaseJWTOnly} })
	_, err = m.Apply(ctx, c)
	var ge *GuardError
	if !errors.As(err, &ge) || ge.Figures.MaxShare != 0 || ge.Figures.SessionRequests != 1 {
		t.Fatalf("one session request with max share 0: Apply = %v, want a refusal at max 0", err)
	}
	g.share = 0
	if _, err := m.Apply(ctx, c); err != nil {
		t.Fatalf("no session request with max share 0: %v", err)
	}
}

func TestNewManagerGuardOptions(t *testing.T) {
	tests := []struct {
		name  string
		share float64
		ok    bool
	}{
		{name: "zero", share: 0, ok: true},
		{name: "default", share: DefaultGuardMaxShare, ok: true},
		{name: "one", share: 1, ok: true},
		{name: "negative", share: -0.01},
		{name: "above one", share: 1.5},
		{name: "NaN", share: math.NaN()},
	}
	for _, tt := range tests {
		m, err := NewManager(context.Background(), Options{Initial: initialState(), GuardMaxShare: tt.share})
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewManager(GuardMaxShare %v) err = %v, want ok %v", tt.name, tt.share, err, tt.ok)
		}
		if err == nil && m.maxShare != tt.share {
			t.Errorf("%s: max share %v, want %v as given", tt.name, m.maxShare, tt.share)
		}
	}
}

func hasSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
