package token

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p1 := e.issue(t, alice)
	c1, err := e.svc.VerifyAccess(p1.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := strings.CutPrefix(p1.RefreshToken, "rt_"+c1.SID+".")
	if !ok || len(mustDecode(t, secret)) != 32 {
		t.Fatalf("refresh token %q is not rt_<sid>.base64url(32 bytes)", p1.RefreshToken)
	}
	pr, _ := parseRefresh(p1.RefreshToken)
	login := store.LoginKey(c1.SID)
	h, _ := e.st.HGetAll(ctx, login)
	if st := h[store.FieldRefresh]; !bytes.HasPrefix(st, pr.storedID()) || len(st) > store.ChunkLen {
		t.Fatalf("login hash %q; want the token's SHA-256 (and no more than %d bytes) in %q", h, store.ChunkLen, store.FieldRefresh)
	}
	for f, v := range h {
		if strings.Contains(string(v), secret) || len(v) > store.ChunkLen {
			t.Fatalf("field %q = %q holds the token or is longer than %d bytes", f, v, store.ChunkLen)
		}
	}

	e.clock.Advance(time.Minute)
	p2, sub, err := e.svc.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if sub.UserID != alice.UserID || sub.ClientID != alice.ClientID || sub.Email != alice.Email || sub.SID != c1.SID {
		t.Fatalf("Refresh subject = %+v; want alice with sid %s", sub, c1.SID)
	}
	if p2.RefreshToken == p1.RefreshToken || p2.AccessToken == p1.AccessToken {
		t.Fatal("Refresh returned the same tokens")
	}
	c2, err := e.svc.VerifyAccess(p2.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c2.SID != c1.SID || c2.ID == c1.ID {
		t.Fatalf("new access token: sid %s jti %s; want sid %s and a new jti", c2.SID, c2.ID, c1.SID)
	}
	// The used token's state is replaced by its successor's, and its
	// fingerprint kept in the same hash: one key, one Cluster slot.
	h, _ = e.st.HGetAll(ctx, login)
	if bytes.HasPrefix(h[store.FieldRefresh], pr.storedID()) || !bytes.Equal(h[store.FieldRefreshUsed], pr.storedID()[:store.FingerprintLen]) {
		t.Fatalf("login hash after the refresh %q; want the successor and the used fingerprint", h)
	}
	for _, k := range []string{refreshKey(pr.hash), usedKey(pr.hash)} {
		if v, _ := e.st.GetCtx(ctx, k); v != nil {
			t.Fatalf("%s = %q; want no key of its own", k, v)
		}
	}
	// The old access token lives until its exp: rotation is not revocation.
	if _, err := e.svc.VerifyAccess(p1.AccessToken); err != nil {
		t.Fatalf("old access token after a plain rotation: %v", err)
	}
	if _, _, err := e.svc.Refresh(ctx, p2.RefreshToken); err != nil {
		t.Fatalf("second rotation: %v", err)
	}
}

func TestRefreshReuseKillsFamily(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p1 := e.issue(t, alice)
	other := e.issue(t, alice) // another login of the same user: must survive
	p2, _, err := e.svc.Refresh(ctx, p1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	p3, _, err := e.svc.Refresh(ctx, p2.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	_, reused, err := e.svc.Refresh(ctx, p1.RefreshToken)
	if !errors.Is(err, ErrRefreshReused) || !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("reusing a consumed refresh token: %v; want ErrRefreshReused wrapping auth.ErrRevoked", err)
	}
	// The caller needs to know whose login it was, to end its session too.
	if want := (Subject{SID: claimsOf(t, e, p1.AccessToken).SID, UserID: alice.UserID, ClientID: alice.ClientID}); reused.SID != want.SID || reused.UserID != want.UserID || reused.ClientID != want.ClientID {
		t.Fatalf("reuse returned subject %+v; want %+v", reused, want)
	}
	if _, err := e.svc.VerifyAccess(p3.AccessToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("newest access token of the family: %v; want ErrRevoked", err)
	}
	if _, err := e.svc.LookupRefresh(ctx, p3.RefreshToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("LookupRefresh of the revoked family: %v; want ErrRevoked", err)
	}
	if _, _, err := e.svc.Refresh(ctx, p3.RefreshToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("newest refresh token of the family: %v; want ErrRevoked", err)
	}
	if _, err := e.svc.VerifyAccess(other.AccessToken); err != nil {
		t.Fatalf("another login of the same user was hit: %v", err)
	}
	if _, _, err := e.svc.Refresh(ctx, other.RefreshToken); err != nil {
		t.Fatalf("another login of the same user was hit: %v", err)
	}
}

func TestRefreshConcurrentRace(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	for round := range 5 {
		p := e.issue(t, alice)
		const racers = 8
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			wins  int
			start = make(chan struct{})
		)
		for range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _, err := e.svc.Refresh(ctx, p.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, auth.ErrInvalid) || errors.Is(err, ErrRefreshReused):
				default:
					t.Errorf("losing racer: unexpected %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d of %d racing refreshes won; want exactly 1", round, wins, racers)
		}
	}
}

func TestRefreshRevoked(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		revoke func(e *env, sid string) error
		want   error
	}{
		{name: "sid revoked", revoke: func(e *env, sid string) error { return e.svc.RevokeFamily(ctx, sid) }, want: auth.ErrRevoked},
		{name: "user revoked after issuance", revoke: func(e *env, _ string) error {
			e.clock.Advance(time.Millisecond)
			return e.svc.RevokeUser(ctx, alice.UserID)
		}, want: auth.ErrRevoked},
		{name: "other user revoked", revoke: func(e *env, _ string) error { return e.svc.RevokeUser(ctx, "u-bob") }},
		{name: "other sid revoked", revoke: func(e *env, _ string) error { return e.svc.RevokeFamily(ctx, "another") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, AlgEdDSA)
			p := e.issue(t, alice)
			c, err := e.svc.VerifyAccess(p.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.revoke(e, c.SID); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.VerifyAccess(p.AccessToken)
			wantSentinel(t, err, tc.want)
			_, err = e.svc.LookupRefresh(ctx, p.RefreshToken)
			wantSentinel(t, err, tc.want)
			_, _, err = e.svc.Refresh(ctx, p.RefreshToken)
			wantSentinel(t, err, tc.want)
		})
	}
}

// A user revoked and logging in again within the same second (password
// change, then login) gets working tokens, while tokens from before the
// revocation in that same second are dead.
func TestReloginInTheRevocationSecond(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	before := e.issue(t, alice)
	e.clock.Advance(100 * time.Millisecond)
	if err := e.svc.RevokeUser(ctx, alice.UserID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(100 * time.Millisecond)
	after := e.issue(t, alice)
	if _, err := e.svc.VerifyAccess(before.AccessToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("access token from before the revocation: %v; want ErrRevoked", err)
	}
	if _, err := e.svc.VerifyAccess(after.AccessToken); err != nil {
		t.Fatalf("access token from after the revocation: %v", err)
	}
	if _, _, err := e.svc.Refresh(ctx, before.RefreshToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("refresh token from before the revocation: %v; want ErrRevoked", err)
	}
	if _, _, err := e.svc.Refresh(ctx, after.RefreshToken); err != nil {
		t.Fatalf("refresh token from after the revocation: %v", err)
	}
}

func TestRefreshInvalidInputs(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p := e.issue(t, alice)
	sid := claimsOf(t, e, p.AccessToken).SID
	unknown, _ := newRefreshToken(strings.NewReader(strings.Repeat("x", 32)), sid)
	unknownLogin, _ := newRefreshToken(strings.NewReader(strings.Repeat("x", 32)), "no-such-login")
	unknownLegacy := "rt_" + strings.Repeat("x", 43)
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{name: "access token as refresh token", raw: p.AccessToken, want: auth.ErrInvalid},
		{name: "empty", raw: "", want: auth.ErrInvalid},
		{name: "prefix only", raw: "rt_", want: auth.ErrInvalid},
		{name: "wrong prefix", raw: "xx_" + p.RefreshToken[3:], want: auth.ErrInvalid},
		{name: "truncated", raw: p.RefreshToken[:len(p.RefreshToken)-1], want: auth.ErrInvalid},
		{name: "extended", raw: p.RefreshToken + "A", want: auth.ErrInvalid},
		{name: "not base64url", raw: "rt_" + strings.Repeat("+", 43), want: auth.ErrInvalid},
		{name: "non-canonical last char", raw: p.RefreshToken[:len(p.RefreshToken)-1] + nonCanonicalTail(p.RefreshToken), want: auth.ErrInvalid},
		{name: "well-formed but unknown", raw: unknown, want: auth.ErrInvalid},
		{name: "well-formed, unknown login", raw: unknownLogin, want: auth.ErrInvalid},
		{name: "old kind, unknown", raw: unknownLegacy, want: auth.ErrInvalid},
		{name: "sid with a dot", raw: "rt_a." + p.RefreshToken[3:], want: auth.ErrInvalid},
		{name: "empty sid", raw: "rt_." + p.RefreshToken[len(p.RefreshToken)-43:], want: auth.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.svc.Refresh(ctx, tc.raw); !errors.Is(err, tc.want) {
				t.Fatalf("Refresh = %v; want %v", err, tc.want)
			}
			if _, err := e.svc.LookupRefresh(ctx, tc.raw); !errors.Is(err, tc.want) {
				t.Fatalf("LookupRefresh = %v; want %v", err, tc.want)
			}
		})
	}
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); err != nil {
		t.Fatalf("the genuine token after the failed attempts: %v", err)
	}
}

// nonCanonicalTail flips the unused low bits of the last base64url character
// of a 32-byte payload (43 chars carry 258 bits, 2 of them unused).
func nonCanonicalTail(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, tok[len(tok)-1])
	return string(alphabet[i^0b01])
}

func TestRefreshExpired(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p := e.issue(t, alice)
	e.clock.Advance(DefaultRefreshTTL + time.Second)
	_, _, err := e.svc.Refresh(ctx, p.RefreshToken)
	if !errors.Is(err, auth.ErrInvalid) && !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("Refresh past RefreshTTL = %v; want invalid or expired", err)
	}
	// A record the store did not expire (clock skew) is still refused.
	rec := refreshRecord{SID: "s", User: "u", Client: "c", Exp: e.clock.Now().Add(-time.Second).UnixNano()}
	if err := e.svc.checkRecord(&rec, e.clock.Now(), e.rev.SIDEpoch()); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("checkRecord of an expired record = %v; want ErrExpired", err)
	}
}

func TestLookupRefreshDoesNotConsume(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	sub := alice
	sub.SID = "sid-lookup"
	p := e.issue(t, sub)
	for range 2 {
		got, err := e.svc.LookupRefresh(ctx, p.RefreshToken)
		if err != nil || got.SID != "sid-lookup" || got.UserID != alice.UserID {
			t.Fatalf("LookupRefresh = %+v, %v", got, err)
		}
	}
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); err != nil {
		t.Fatalf("Refresh after LookupRefresh: %v", err)
	}
	if _, err := e.svc.LookupRefresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("LookupRefresh of a consumed token = %v; want ErrInvalid", err)
	}
}

func TestRefreshStoreDown(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p := e.issue(t, alice)
	_ = e.st.Close()
	if _, _, err := e.svc.Refresh(ctx, p.RefreshToken); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Refresh with the store down = %v; want ErrUnavailable", err)
	}
	if _, err := e.svc.Issue(ctx, alice); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Issue with the store down = %v; want ErrUnavailable", err)
	}
	// Verification needs no store.
	if _, err := e.svc.VerifyAccess(p.AccessToken); err != nil {
		t.Fatalf("VerifyAccess with the store down: %v", err)
	}
}

// claimsOf decodes the claims of an access token without verifying it (the
// family may already be revoked).
func claimsOf(t *testing.T, e *env, tok string) Claims {
	t.Helper()
	var c Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Markers written before the upgrade, under ts:rtu:<hash> (outside the
// record's Cluster slot), holding the bare sid or the sid, user and client,
// still identify the login as reuse.
func TestRefreshReuseOldMarker(t *testing.T) {
	tests := []struct {
		name   string
		marker func(sid string) string
		want   Subject
	}{
		{name: "bare sid", marker: func(sid string) string { return sid }},
		{name: "sid, user and client", marker: func(sid string) string {
			return `{"sid":"` + sid + `","user":"u-alice","client":"mobile"}`
		}, want: Subject{UserID: alice.UserID, ClientID: alice.ClientID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, AlgEdDSA)
			ctx := context.Background()
			sid := "sid-before-upgrade"
			raw, hash := e.legacyRefresh(t, sid, alice, e.clock.Now(), e.clock.Now().UnixNano(), time.Hour)
			if _, _, err := e.svc.Refresh(ctx, raw); err != nil {
				t.Fatal(err)
			}
			// As an instance before the upgrade left it: no marker in the
			// record's slot, the old one under its old name.
			if err := e.st.DeleteCtx(ctx, usedKey(hash)); err != nil {
				t.Fatal(err)
			}
			if err := e.st.SetCtx(ctx, "ts:rtu:"+hash, []byte(tc.marker(sid)), time.Hour); err != nil {
				t.Fatal(err)
			}
			_, sub, err := e.svc.Refresh(ctx, raw)
			if !errors.Is(err, ErrRefreshReused) || sub.SID != sid || sub.UserID != tc.want.UserID || sub.ClientID != tc.want.ClientID {
				t.Fatalf("reuse with an old marker: %+v, %v; want sid %s, %+v and ErrRefreshReused", sub, err, sid, tc.want)
			}
			if !e.rev.SIDRevoked(sid) {
				t.Fatal("the family was not revoked")
			}
		})
	}
}
