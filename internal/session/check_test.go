package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// TestCheckSharedPrincipal: a near-cache hit answers the entry's principal
// (the same pointer for every request, no allocation) until a touch moves
// the idle deadline, when a new one is built and the one already handed out
// is left as it was (requests still holding it must not see it change).
func TestCheckSharedPrincipal(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := store.NewMemory(clk.Now)
	cfg := Options{IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, TouchInterval: time.Minute, CacheTTL: time.Hour}
	in := newCachedInstance(t, st, clk, cfg)
	_, cookie, err := in.m.Create(ctx, NewSession{UserID: "u1", Email: "u1@example.com", ClientID: "web", Roles: []string{"user"}, Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	miss, err := in.m.Check(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if miss.MirrorChecked {
		t.Fatal("a store read claims the mirror was checked")
	}
	first, err := in.m.Check(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	p := first.Principal
	want := auth.Principal{UserID: "u1", Email: "u1@example.com", ClientID: "web", Roles: []string{"user"},
		Scheme: auth.SchemeSession, SID: miss.Principal.SID, ExpiresAt: clk.Now().Add(cfg.IdleTimeout).UTC()}
	if !first.MirrorChecked || p.UserID != want.UserID || p.Email != want.Email || p.ClientID != want.ClientID ||
		len(p.Roles) != 1 || p.Roles[0] != "user" || p.Scheme != want.Scheme || p.SID != want.SID || !p.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("hit: %+v mirror %v, want %+v from the cache", *p, first.MirrorChecked, want)
	}
	if n := testing.AllocsPerRun(50, func() {
		c, err := in.m.Check(ctx, cookie)
		if err != nil || c.Principal != p {
			t.Fatalf("hit: %v, principal %p want the shared %p", err, c.Principal, p)
		}
	}); n != 0 {
		t.Fatalf("a near-cache hit allocates %v times", n)
	}
	clk.Advance(2 * time.Minute)
	due, err := in.m.Check(ctx, cookie)
	if err != nil || !due.TouchDue {
		t.Fatalf("after TouchInterval: %v, touch due %v", err, due.TouchDue)
	}
	in.m.TouchChecked(ctx, &due)
	after, err := in.m.Check(ctx, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if after.Principal == p || !after.Principal.ExpiresAt.Equal(clk.Now().Add(cfg.IdleTimeout)) || after.TouchDue {
		t.Fatalf("after a touch: principal %+v (touch due %v), want a new one expiring at %v", *after.Principal, after.TouchDue, clk.Now().Add(cfg.IdleTimeout))
	}
	if !p.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("the principal handed out earlier changed: %v", p.ExpiresAt)
	}
}

// TestCheckMirrorCheckedOnlyWhenClean: MirrorChecked, which lets the caller
// skip its own mirror checks, is never set for a login the mirror has ended
// (the hit falls through to the store, which does not know the mirror), and
// malformed cookies are refused before and after a hit.
func TestCheckMirrorCheckedOnlyWhenClean(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(ctx context.Context, in instance, sid string, now time.Time) error
	}{
		{name: "sid", revoke: func(ctx context.Context, in instance, sid string, now time.Time) error {
			return in.rev.RevokeSID(ctx, sid, now.Add(time.Hour))
		}},
		{name: "user not-before", revoke: func(ctx context.Context, in instance, _ string, now time.Time) error {
			return in.rev.RevokeUser(ctx, "u1", now, now.Add(time.Hour))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			st := store.NewMemory(clk.Now)
			in := newCachedInstance(t, st, clk, Options{})
			s, cookie, err := in.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := in.m.Check(ctx, cookie); err != nil {
					t.Fatal(err)
				}
			}
			clk.Advance(time.Second)
			if err := tc.revoke(ctx, in, s.SID, clk.Now()); err != nil {
				t.Fatal(err)
			}
			c, err := in.m.Check(ctx, cookie)
			if err == nil && c.MirrorChecked {
				t.Fatal("a login ended in the mirror was answered as mirror-checked")
			}
			for _, bad := range []string{cookie[:sidLen] + "!" + cookie[sidLen+1:], "!" + cookie[1:], cookie[:len(cookie)-1]} {
				if _, err := in.m.Check(ctx, bad); !errors.Is(err, auth.ErrInvalid) {
					t.Fatalf("Check(%q): %v, want invalid", bad, err)
				}
			}
		})
	}
}
