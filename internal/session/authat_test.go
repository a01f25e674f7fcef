package session

import (
	"testing"
	"time"
)

// TestCreateDatesTheLoginByAuthAt: a login is dated by the instant its
// account state was read (NewSession.AuthAt), never later than now, so a
// per-user revocation between that read and the write ends it (issue 10,
// item 1); on both stores, as the date round-trips through the record.
func TestCreateDatesTheLoginByAuthAt(t *testing.T) {
	tests := []struct {
		name        string
		authAt      time.Duration // relative to now; 0 = unset
		wantCreated time.Duration
	}{
		{name: "unset: now", wantCreated: 0},
		{name: "the read before the hash", authAt: -1500 * time.Millisecond, wantCreated: -1500 * time.Millisecond},
		{name: "a future instant does not postdate the login", authAt: time.Hour, wantCreated: 0},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					e := newEnv(t, be.open, Options{})
					now := e.clk.Now()
					ns := NewSession{Cookie: true, Tokens: true}
					if tc.authAt != 0 {
						ns.AuthAt = now.Add(tc.authAt)
					}
					s, cookie := e.create(t, ns)
					want := now.Add(tc.wantCreated)
					if !s.CreatedAt.Equal(want) {
						t.Fatalf("Create: CreatedAt %v, want %v", s.CreatedAt, want)
					}
					got, err := e.m.Verify(ctx, cookie)
					mustOK(t, err)
					if !got.CreatedAt.Equal(want) {
						t.Fatalf("Verify: CreatedAt %v, want %v", got.CreatedAt, want)
					}
				})
			}
		})
	}
}
