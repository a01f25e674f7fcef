package session

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/token"
)

// instance is one tokenshift instance's session side: its own mirror and
// Manager over the shared store.
type instance struct {
	m   *Manager
	rev *token.Revocations
}

func newCachedInstance(t *testing.T, st store.Store, clk *fakeclock.Clock, cfg Options) instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rev := token.NewRevocations(st, clk.Now, nil)
	if err := rev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Clock, cfg.Revocations = clk.Now, rev
	m, err := New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return instance{m: m, rev: rev}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestNearCacheHitsAndTTL: a verified login is answered from memory (its
// record can vanish from the store behind the Manager's back and it still
// verifies) until CacheTTL has passed since the read; then the store decides.
func TestNearCacheHitsAndTTL(t *testing.T) {
	clk := newClock()
	st := store.NewMemory(clk.Now)
	in := newCachedInstance(t, st, clk, Options{CacheTTL: 10 * time.Second})
	ctx := context.Background()
	s, cookie, err := in.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.m.Verify(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteCtx(ctx, sessionKey(s.SID)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(9 * time.Second)
	if _, err := in.m.Verify(ctx, cookie); err != nil {
		t.Fatalf("within the TTL the cached login must verify without the store: %v", err)
	}
	if st := in.m.CacheStats(); st.Hits != 1 || st.Entries != 1 {
		t.Fatalf("stats %+v, want one hit and one entry", st)
	}
	// A wrong secret for a cached sid is never answered from the cache.
	bad := cookie[:len(cookie)-2] + "AA"
	if _, err := in.m.Verify(ctx, bad); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("wrong secret: %v, want invalid", err)
	}
	clk.Advance(time.Second)
	if _, err := in.m.Verify(ctx, cookie); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("past the TTL the store decides: %v, want invalid", err)
	}
}

// TestNearCacheEveryEndingRevokesTheSID: each way the Manager ends a login
// revokes its sid in the mirror, so another instance that has it cached
// refuses it once the announcement arrives, whatever the caller does next.
func TestNearCacheEveryEndingRevokesTheSID(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  Options
		end  func(t *testing.T, m *Manager, s *Session, cookie string)
	}{
		{name: "Delete (logout, operator, refresh reuse)", end: func(t *testing.T, m *Manager, s *Session, _ string) {
			if err := m.Delete(ctx, s.SID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "DeleteByUser (log out everywhere, password, suspension)", end: func(t *testing.T, m *Manager, s *Session, _ string) {
			if _, err := m.DeleteByUser(ctx, s.UserID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "eviction by MaxPerUser", cfg: Options{MaxPerUser: 1}, end: func(t *testing.T, m *Manager, s *Session, _ string) {
			if _, _, err := m.Create(ctx, NewSession{UserID: s.UserID, Cookie: true}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "replaced at login (fixation)", end: func(t *testing.T, m *Manager, s *Session, cookie string) {
			if _, _, err := m.Create(ctx, NewSession{UserID: s.UserID, Cookie: true, Replace: cookie}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			st := store.NewMemory(clk.Now)
			a := newCachedInstance(t, st, clk, tc.cfg)
			b := newCachedInstance(t, st, clk, tc.cfg)
			s, cookie, err := a.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := b.m.Verify(ctx, cookie); err != nil {
					t.Fatal(err)
				}
			}
			tc.end(t, a.m, s, cookie)
			if !a.rev.SIDRevoked(s.SID) {
				t.Fatal("the ending instance's mirror does not have the sid revoked")
			}
			waitFor(t, "B's mirror learns the revocation", func() bool { return b.rev.SIDRevoked(s.SID) })
			if _, err := b.m.Verify(ctx, cookie); err == nil {
				t.Fatal("B still verifies a login ended on A")
			}
			if st := b.m.CacheStats(); st.Entries != 0 {
				t.Fatalf("B keeps the ended login cached: %+v", st)
			}
		})
	}
}

// TestNearCacheUserRevocation: a per-user not-before after a cached login's
// creation (log out everywhere, password change, suspension) stops the hit
// even before any record is deleted.
func TestNearCacheUserRevocation(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := store.NewMemory(clk.Now)
	a := newCachedInstance(t, st, clk, Options{})
	_, cookie, err := a.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Verify(ctx, cookie); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := a.rev.RevokeUser(ctx, "u1", clk.Now(), clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Verify(ctx, cookie); err != nil {
		// The record is still there: the store path answers it, and the
		// caller (httpapi) refuses it by the same not-before. What matters
		// here is that the cache no longer holds it.
		t.Fatal(err)
	}
	if st := a.m.CacheStats(); st.Hits != 0 || st.Entries != 0 {
		t.Fatalf("a login revoked by its user's not-before is still answered from the cache: %+v", st)
	}
}

// TestNearCacheTouchesAreBatched: uses of a cached login are written by the
// flush, coalesced (one write per login however many uses), and another
// instance whose cached last-seen says the idle deadline is near re-reads the
// store, so it never expires a login that is in use elsewhere.
func TestNearCacheTouchesAreBatched(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	mem := store.NewMemory(clk.Now)
	cs := &countingStore{Store: mem}
	cfg := Options{IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute, CacheTTL: time.Hour}
	a := newCachedInstance(t, cs, clk, cfg)
	b := newCachedInstance(t, cs, clk, cfg)
	b.m.touches.running.Store(true) // as while Run is running
	_, cookie, err := a.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Verify(ctx, cookie); err != nil { // cached on A at login time
		t.Fatal(err)
	}
	writes := cs.writes.Load()
	// Used on B only, every 2 minutes, for 30 minutes: three idle timeouts.
	for i := range 15 {
		clk.Advance(2 * time.Minute)
		if _, err := b.m.Authenticate(ctx, cookie); err != nil {
			t.Fatalf("use %d on B: %v", i, err)
		}
		if got := cs.writes.Load(); got != writes {
			t.Fatalf("use %d: a touch was written inline (%d writes)", i, got-writes)
		}
		if st := b.m.CacheStats(); st.PendingTouches != 1 {
			t.Fatalf("use %d: %d pending touches, want 1 (coalesced)", i, st.PendingTouches)
		}
		b.m.Flush(ctx)
		writes = cs.writes.Load()
	}
	if _, err := a.m.Verify(ctx, cookie); err != nil {
		t.Fatalf("A expired a login used on B all along: %v", err)
	}
	clk.Advance(cfg.IdleTimeout)
	for name, in := range map[string]instance{"A": a, "B": b} {
		if _, err := in.m.Verify(ctx, cookie); !errors.Is(err, auth.ErrExpired) {
			t.Fatalf("%s: unused for IdleTimeout: %v, want expired", name, err)
		}
	}
}

// TestNearCacheBoundedByMemory: the cache never holds more than its byte
// budget, however many logins are verified.
func TestNearCacheBoundedByMemory(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := store.NewMemory(clk.Now)
	const budget = 64 << 10
	in := newCachedInstance(t, st, clk, Options{CacheBytes: budget})
	for i := range 1000 {
		_, cookie, err := in.m.Create(ctx, NewSession{UserID: fmt.Sprintf("u%d", i), Cookie: true, UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.m.Verify(ctx, cookie); err != nil {
			t.Fatal(err)
		}
	}
	s := in.m.CacheStats()
	if s.Bytes > budget || s.Evicted == 0 || s.Entries == 0 {
		t.Fatalf("stats %+v: want at most %d bytes, some entries and some evicted", s, budget)
	}
}
