package token

import (
	"context"
	"encoding/binary"
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

// loginRecord writes what the session package's record starts with (version
// 3, the creation) under sid's login key, as a login would have it.
func loginRecord(t testing.TB, e *env, sid string, created time.Time) {
	t.Helper()
	r := binary.BigEndian.AppendUint64([]byte{3}, uint64(created.UnixNano()))
	if err := e.st.HSet(context.Background(), store.LoginKey(sid), 24*time.Hour, store.FieldRecord, r); err != nil {
		t.Fatal(err)
	}
}

// A login's refresh state refers to the login record's creation instead of
// storing it again (21 bytes), keeps doing so across refreshes, and ends
// the family at the record's creation plus RefreshAbsoluteTTL; a state whose
// record is gone is refused and its family revoked.
func TestRefreshStateRefersToTheLogin(t *testing.T) {
	e := newEnv(t, AlgEdDSA, func(c *Options) { c.RefreshTTL, c.RefreshAbsoluteTTL = 2*time.Hour, 3*time.Hour })
	ctx := context.Background()
	created := e.clock.Now()
	sub := alice
	sub.SID, sub.AuthTime, sub.LoginCreated = "abcdefghijklmnopqrstu", created, created // a 21-character sid
	loginRecord(t, e, sub.SID, created)
	p := e.issue(t, sub)
	h, _ := e.st.HGetAll(ctx, store.LoginKey(sub.SID))
	if st := h[store.FieldRefresh]; len(st) > refreshStoredHashLen+1+1+3 || st[refreshStoredHashLen] != refreshStateLoginFam {
		t.Fatalf("state %q (%d bytes); want the login's, at most 21 bytes", st, len(st))
	}
	e.clock.Advance(90 * time.Minute)
	p, _, err := e.svc.Refresh(ctx, p.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	h, _ = e.st.HGetAll(ctx, store.LoginKey(sub.SID))
	rec, err := decodeRefreshState(sub.SID, h)
	if err != nil || !rec.famIsLogin || rec.Fam != created.UnixNano() || rec.Iat != e.clock.Now().UnixNano() {
		t.Fatalf("state after refresh = %+v, %v", rec, err)
	}
	if got := time.Unix(0, rec.Exp); !got.Equal(p.RefreshExpiresAt) || got.After(created.Add(3*time.Hour)) {
		t.Fatalf("stored expiry %v; the pair says %v, the family ends at %v", got, p.RefreshExpiresAt, created.Add(3*time.Hour))
	}
	e.clock.Set(created.Add(3 * time.Hour))
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("refresh at the family's end: %v; want expired", err)
	}

	// The record gone, the state left: refused, and the family revoked.
	e2 := newEnv(t, AlgEdDSA)
	loginRecord(t, e2, sub.SID, e2.clock.Now())
	sub.AuthTime, sub.LoginCreated = e2.clock.Now(), e2.clock.Now()
	p = e2.issue(t, sub)
	if err := e2.st.HDel(ctx, store.LoginKey(sub.SID), store.FieldRecord); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e2.svc.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("refresh without the record: %v; want invalid", err)
	}
	if !e2.rev.SIDRevoked(sub.SID) {
		t.Fatal("the family of a login that is gone was not revoked")
	}
}

// A refresh state of version 1 (exp, iat and the family start, 8 bytes
// each) is looked up and refreshed; its successor stores the family start
// once (the old state may belong to a login without a version 3 record),
// which is carried on.
func TestRefreshStateVersion1Upgrades(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	sid := "sid-of-state-version-1"
	now := e.clock.Now()
	fam := now.Add(-time.Hour)
	raw, err := newRefreshToken(e.svc.cfg.Rand, sid)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := parseRefresh(raw)
	st := append([]byte(nil), pr.storedID()...)
	st = append(st, refreshStateV1)
	for _, v := range []int64{now.Add(24 * time.Hour).UnixNano(), now.Add(-time.Minute).UnixNano(), fam.UnixNano()} {
		st = binary.BigEndian.AppendUint64(st, uint64(v))
	}
	fields := append(store.IdentityFields(store.Identity{UserID: alice.UserID, Email: alice.Email, ClientID: alice.ClientID, Roles: alice.Roles}),
		store.Field{Name: store.FieldRefresh, Value: st})
	if err := e.st.HSetFields(ctx, store.LoginKey(sid), time.Hour, fields...); err != nil {
		t.Fatal(err)
	}
	if sub, err := e.svc.LookupRefresh(ctx, raw); err != nil || sub.SID != sid || sub.Email != alice.Email {
		t.Fatalf("LookupRefresh(version 1) = %+v, %v", sub, err)
	}
	p, sub, err := e.svc.Refresh(ctx, raw)
	if err != nil || sub.UserID != alice.UserID {
		t.Fatalf("Refresh(version 1) = %+v, %v", sub, err)
	}
	h, _ := e.st.HGetAll(ctx, store.LoginKey(sid))
	rec, err := decodeRefreshState(sid, h)
	if err != nil || rec.famIsLogin || rec.Fam != fam.UnixNano() || h[store.FieldRefresh][refreshStoredHashLen] != refreshStateOwnFam {
		t.Fatalf("successor state = %+v, %v", rec, err)
	}
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); err != nil {
		t.Fatalf("refresh of the successor: %v", err)
	}
	if _, _, err := e.svc.Refresh(ctx, raw); !errors.Is(err, ErrRefreshReused) {
		t.Fatalf("the version 1 token again: %v; want reuse", err)
	}
}

// Every cut of a refresh state is corrupt, never a record with times
// missing.
func TestRefreshStateCutIsCorrupt(t *testing.T) {
	id := make([]byte, refreshStoredHashLen)
	h := map[string][]byte{}
	for _, f := range store.IdentityFields(store.Identity{UserID: "u-1", ClientID: "web"}) {
		h[f.Name] = f.Value
	}
	h[store.FieldRecord] = binary.BigEndian.AppendUint64([]byte{3}, 1)
	for _, rec := range []refreshRecord{
		{Fam: 1, Iat: 1 + int64(time.Hour), Exp: 1 + int64(time.Hour) + int64(168*time.Hour), famIsLogin: true},
		{Fam: 5, Iat: 5, Exp: 5 + int64(time.Hour)},
	} {
		whole := encodeRefreshState(id, &rec)
		h[store.FieldRefresh] = whole
		got, err := decodeRefreshState("s", h)
		if err != nil || got.Fam != rec.Fam || got.Iat != rec.Iat || got.Exp != rec.Exp {
			t.Fatalf("decode = %+v, %v; want %+v", got, err, rec)
		}
		for i := range len(whole) {
			h[store.FieldRefresh] = whole[:i]
			if _, err := decodeRefreshState("s", h); err == nil {
				t.Fatalf("state cut at %d of %d bytes decoded", i, len(whole))
			}
		}
	}
}
