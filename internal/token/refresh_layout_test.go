package token

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// A refresh token of the old kind (rt_<secret>, its own ts:rt: key) keeps
// working across the upgrade: it is looked up and consumed as it is, its
// successor is of the new kind in the login's hash, and presenting it again
// is still reuse.
func TestRefreshOldKindUpgrades(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	sid := "sid-before-upgrade"
	old, hash := e.legacyRefresh(t, sid, alice, e.clock.Now(), e.clock.Now().UnixNano(), 24*time.Hour)
	if sub, err := e.svc.LookupRefresh(ctx, old); err != nil || sub.SID != sid || sub.Email != alice.Email {
		t.Fatalf("LookupRefresh(old kind) = %+v, %v", sub, err)
	}
	e.clock.Advance(time.Minute)
	p2, sub, err := e.svc.Refresh(ctx, old)
	if err != nil || sub.SID != sid || sub.UserID != alice.UserID || !slicesEqual(sub.Roles, alice.Roles) {
		t.Fatalf("Refresh(old kind) = %+v, %v", sub, err)
	}
	if !strings.HasPrefix(p2.RefreshToken, "rt_"+sid+".") {
		t.Fatalf("successor %q is not of the new kind", p2.RefreshToken)
	}
	if v, _ := e.st.GetCtx(ctx, refreshKey(hash)); v != nil {
		t.Fatal("the old record is still stored")
	}
	p3, _, err := e.svc.Refresh(ctx, p2.RefreshToken)
	if err != nil {
		t.Fatalf("refresh of the successor: %v", err)
	}
	if _, sub, err := e.svc.Refresh(ctx, old); !errors.Is(err, ErrRefreshReused) || sub.SID != sid {
		t.Fatalf("old token again: %+v, %v; want ErrRefreshReused", sub, err)
	}
	if _, _, err := e.svc.Refresh(ctx, p3.RefreshToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("the family after reuse: %v; want revoked", err)
	}
}

// The newest refreshKeep consumed tokens of a login are reuse; an older one
// is refused as unknown without touching the family (its fingerprint is no
// longer kept), and a token never issued for the login is unknown too.
func TestRefreshReuseWindow(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p := e.issue(t, alice)
	sid := claimsOf(t, e, p.AccessToken).SID
	used := []string{}
	for range refreshKeep + 1 {
		used = append(used, p.RefreshToken)
		var err error
		if p, _, err = e.svc.Refresh(ctx, p.RefreshToken); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := e.st.HGetAll(ctx, store.LoginKey(sid))
	if len(h[store.FieldRefreshUsed]) != store.ChunkLen {
		t.Fatalf("used fingerprints = %d bytes; want %d", len(h[store.FieldRefreshUsed]), store.ChunkLen)
	}
	forged, _ := newRefreshToken(strings.NewReader(strings.Repeat("f", 32)), sid)
	for _, raw := range []string{used[0], forged} {
		if _, _, err := e.svc.Refresh(ctx, raw); !errors.Is(err, auth.ErrInvalid) || errors.Is(err, ErrRefreshReused) {
			t.Fatalf("Refresh = %v; want unknown (ErrInvalid)", err)
		}
	}
	if e.rev.SIDRevoked(sid) {
		t.Fatal("an unknown token revoked the family")
	}
	if _, _, err := e.svc.Refresh(ctx, used[1]); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("the oldest kept token: %v; want ErrRefreshReused", err)
	}
	if !e.rev.SIDRevoked(sid) {
		t.Fatal("reuse did not revoke the family")
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }
