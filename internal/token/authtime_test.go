package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// TestIssueDatesThePairByAuthTime: a login's pair is dated by the instant its
// account state was read (Subject.AuthTime), so a per-user revocation taken
// after that instant but before the pair was minted (a password change or a
// suspension landing while the password was being checked) ends it: access
// and refresh token alike (issue 10, item 1).
func TestIssueDatesThePairByAuthTime(t *testing.T) {
	ctx := context.Background()
	const mint = 300 * time.Millisecond // after the read
	tests := []struct {
		name string
		// authTime is Subject.AuthTime and revokeAt the user's revocation,
		// both relative to the read of the account state; the pair is
		// minted at mint.
		authTime, revokeAt time.Duration
		wantErr            error
	}{
		{name: "revoked before the read", revokeAt: -100 * time.Millisecond},
		{name: "revoked right after the read", revokeAt: time.Nanosecond, wantErr: auth.ErrRevoked},
		{name: "revoked while the password was checked", revokeAt: 200 * time.Millisecond, wantErr: auth.ErrRevoked},
		{name: "revoked after minting", revokeAt: 400 * time.Millisecond, wantErr: auth.ErrRevoked},
		{name: "an AuthTime in the future does not postdate the pair", authTime: time.Hour, revokeAt: 400 * time.Millisecond, wantErr: auth.ErrRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, AlgEdDSA)
			read := e.clock.Now().Add(time.Second)
			sub := alice
			sub.AuthTime = read.Add(tc.authTime)
			at := func(d time.Duration) { e.clock.Advance(read.Add(d).Sub(e.clock.Now())) }
			revoke := func() {
				at(tc.revokeAt)
				if err := e.svc.RevokeUser(ctx, alice.UserID); err != nil {
					t.Fatal(err)
				}
			}
			var p Pair
			if tc.revokeAt < mint {
				revoke()
			}
			at(mint)
			p = e.issue(t, sub)
			if tc.revokeAt >= mint {
				revoke()
			}
			_, err := e.svc.VerifyAccess(p.AccessToken)
			wantSentinel(t, err, tc.wantErr)
			_, err = e.svc.LookupRefresh(ctx, p.RefreshToken)
			wantSentinel(t, err, tc.wantErr)
		})
	}
}

// TestSecondRevocationInTheSameSecond: a token minted just after a
// revocation has its iat rounded up to the next second (so that it is not
// dead by the rounding), which must not let it survive a second revocation
// within that same second. Revocation judges by iat_ns.
func TestSecondRevocationInTheSameSecond(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	// The fake clock starts at .5s.
	if err := e.svc.RevokeUser(ctx, alice.UserID); err != nil { // logged out everywhere at .5
		t.Fatal(err)
	}
	e.clock.Advance(100 * time.Millisecond)
	p := e.issue(t, alice) // logged in again at .6: iat rounded up to the next second
	c, err := e.svc.VerifyAccess(p.AccessToken)
	if err != nil {
		t.Fatalf("login after the first revocation: %v", err)
	}
	if !c.IssuedAt.After(e.clock.Now()) || c.IssuedAtNS != e.clock.Now().UnixNano() {
		t.Fatalf("iat %v, iat_ns %d; want iat rounded up and iat_ns exact (%d)", c.IssuedAt, c.IssuedAtNS, e.clock.Now().UnixNano())
	}
	e.clock.Advance(100 * time.Millisecond)
	if err := e.svc.RevokeUser(ctx, alice.UserID); err != nil { // password changed at .7
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyAccess(p.AccessToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("token from before the second revocation: %v; want ErrRevoked", err)
	}
}

// TestRevocationTimeFallsBackToIat: tokens without iat_ns (earlier versions)
// are judged by iat, and an iat_ns that is not within a second of iat is not
// believed.
func TestRevocationTimeFallsBackToIat(t *testing.T) {
	iat := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		ns   int64
		want time.Time
	}{
		{name: "no iat_ns", ns: 0, want: iat},
		{name: "iat_ns within the second", ns: iat.Add(400 * time.Millisecond).UnixNano(), want: iat.Add(400 * time.Millisecond)},
		{name: "iat rounded up", ns: iat.Add(-300 * time.Millisecond).UnixNano(), want: iat.Add(-300 * time.Millisecond)},
		{name: "iat_ns an hour later", ns: iat.Add(time.Hour).UnixNano(), want: iat},
		{name: "iat_ns an hour earlier", ns: iat.Add(-time.Hour).UnixNano(), want: iat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, AlgEdDSA)
			m := e.claimsMap()
			m["iat"] = iat.Unix()
			if tc.ns != 0 {
				m["iat_ns"] = tc.ns
			}
			raw := forge(t, hdr("EdDSA", "ed-1"), m, e.ring.keys["ed-1"].method, e.ring.keys["ed-1"].signer)
			var c Claims
			if _, err := e.svc.state.Load().parser.ParseWithClaims(raw, &c, e.svc.state.Load().keyfunc); err != nil {
				t.Fatal(err)
			}
			if got := c.revocationTime(); !got.Equal(tc.want) {
				t.Fatalf("revocationTime = %v, want %v", got, tc.want)
			}
		})
	}
}
