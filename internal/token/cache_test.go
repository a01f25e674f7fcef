package token

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// verifyAll verifies raw through every entry point of s; they must agree.
func verifyAll(t *testing.T, s *Service, raw string) error {
	t.Helper()
	_, errA := s.VerifyAccess(raw)
	_, errP := s.VerifyPrincipal(raw, auth.SchemeBearer)
	_, errS := s.VerifySharedPrincipal(raw, auth.SchemeJWTCookie)
	if sentinel(errA) != sentinel(errP) || sentinel(errA) != sentinel(errS) {
		t.Fatalf("entry points disagree: VerifyAccess %v, VerifyPrincipal %v, VerifySharedPrincipal %v", errA, errP, errS)
	}
	return errA
}

func sentinel(err error) error {
	for _, s := range []error{auth.ErrInvalid, auth.ErrExpired, auth.ErrRevoked} {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// A cache hit never accepts what the uncached path refuses: a service with
// the cache and one without, over the same ring, mirror and clock, give the
// same answer at every step, and before each event the cached one answers
// from the cache. The clock-moved-back cases fail if a hit checks only exp
// (the parser also refuses a token before iat or nbf, less the leeway).
func TestCacheHitRefusesWhatVerifyRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// token is what is verified (nil: a token issued to alice).
		token func(e *env) string
		event func(t *testing.T, e *env, un *Service, raw string)
		want  error
	}{
		{name: "expired", want: auth.ErrExpired, event: func(t *testing.T, e *env, _ *Service, _ string) {
			e.clock.Advance(DefaultAccessTTL + DefaultLeeway)
		}},
		{name: "inside the leeway past exp", event: func(t *testing.T, e *env, _ *Service, _ string) {
			e.clock.Advance(DefaultAccessTTL + DefaultLeeway - time.Second)
		}},
		{name: "clock back before iat", want: auth.ErrInvalid, event: func(t *testing.T, e *env, _ *Service, _ string) {
			e.clock.Advance(-DefaultLeeway - time.Second)
		}},
		{name: "clock back inside the leeway of iat", event: func(t *testing.T, e *env, _ *Service, _ string) {
			e.clock.Advance(-DefaultLeeway + time.Second)
		}},
		{
			name: "clock back before nbf", want: auth.ErrInvalid,
			token: func(e *env) string {
				c := e.claimsMap()
				c["iat"] = e.clock.Now().Add(-time.Minute).Unix()
				c["nbf"] = e.clock.Now().Add(3 * time.Second).Unix() // accepted: inside the leeway
				return forge(t, hdr("EdDSA", "ed-1"), c, jwt.SigningMethodEdDSA, e.ring.Key("ed-1").signer)
			},
			event: func(t *testing.T, e *env, _ *Service, _ string) { e.clock.Advance(-3 * time.Second) },
		},
		{name: "jti revoked", want: auth.ErrRevoked, event: func(t *testing.T, e *env, un *Service, raw string) {
			c, err := un.VerifyAccess(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.rev.RevokeJTI(ctx, c.ID, c.ExpiresAt.Time); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "sid revoked (logout)", want: auth.ErrRevoked, event: func(t *testing.T, e *env, un *Service, raw string) {
			c, err := un.VerifyAccess(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.svc.RevokeFamily(ctx, c.SID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "user revoked (log out everywhere)", want: auth.ErrRevoked, event: func(t *testing.T, e *env, _ *Service, _ string) {
			e.clock.Advance(time.Millisecond)
			if err := e.svc.RevokeUser(ctx, alice.UserID); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "key retired", want: auth.ErrInvalid, event: func(t *testing.T, e *env, un *Service, _ string) {
			other, err := NewEphemeralKeyRing(AlgEdDSA)
			if err != nil {
				t.Fatal(err)
			}
			e.svc.SetRing(other)
			un.SetRing(other)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, AlgEdDSA)
			un, err := NewService(Options{Clock: e.clock.Now}, e.ring, e.st, e.rev)
			if err != nil {
				t.Fatal(err)
			}
			raw := ""
			if tc.token != nil {
				raw = tc.token(e)
			} else {
				raw = e.issue(t, alice).AccessToken
			}
			if err := verifyAll(t, e.svc, raw); err != nil {
				t.Fatalf("before the event: %v", err)
			}
			if _, ok := e.svc.cache.get(raw, e.clock.Now().UnixNano()); !ok {
				t.Fatal("the token was not cached: the test would not test a hit")
			}
			tc.event(t, e, un, raw)
			wantSentinel(t, verifyAll(t, un, raw), tc.want)
			wantSentinel(t, verifyAll(t, e.svc, raw), tc.want)
		})
	}
}

// A verification that read the key ring before SetRing must not put its
// token after SetRing's purge: the retired key would go on verifying from
// the cache until exp.
func TestVerifiedCachePutAfterPurge(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(1 << 20)
	gen := c.generation() // the verification starts, under the old ring
	c.purge()             // SetRing
	c.put(cacheToken(1), cacheClaims(1, now.Add(time.Hour)), auth.SchemeBearer, 0, gen, now.UnixNano())
	if _, ok := c.get(cacheToken(1), now.UnixNano()); ok {
		t.Fatal("a token verified under the retired ring was cached after the purge")
	}
	c.put(cacheToken(2), cacheClaims(2, now.Add(time.Hour)), auth.SchemeBearer, 0, c.generation(), now.UnixNano())
	if _, ok := c.get(cacheToken(2), now.UnixNano()); !ok {
		t.Fatal("a token verified under the current ring was not cached")
	}
}

// Tokens that end alike (the index hashes the end) share a slot, never an
// answer: the whole token is compared.
func TestVerifiedCacheSameEndOtherToken(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(1 << 20)
	tok := cacheToken(1)
	putAt(c, tok, cacheClaims(1, now.Add(time.Hour)), now)
	for name, other := range map[string]string{
		"other payload":         tok[:70] + "x" + tok[71:],
		"other header":          "x" + tok[1:],
		"prefix of the payload": tok[80:],
		"just the end":          tok[len(tok)-hashTail:],
	} {
		if c.hash(other) != c.hash(tok) {
			t.Fatalf("%s: the case must share the token's index hash", name)
		}
		if _, ok := getAt(c, other, now); ok {
			t.Errorf("%s: hit for a token that was never verified", name)
		}
	}
}

// VerifySharedPrincipal answers the cache entry's principal on a hit, with
// the scheme asked for; a hit under another scheme, and VerifyPrincipal,
// answer the caller's own copy, and nothing a caller does to a copy reaches
// the cache.
func TestVerifySharedPrincipal(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	raw := e.issue(t, alice).AccessToken
	miss, err := e.svc.VerifySharedPrincipal(raw, auth.SchemeJWTCookie)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.VerifyAccess(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := c.Principal(auth.SchemeJWTCookie)
	hit, err := e.svc.VerifySharedPrincipal(raw, auth.SchemeJWTCookie)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := e.svc.VerifySharedPrincipal(raw, auth.SchemeJWTCookie)
	if hit != again || hit == miss {
		t.Fatal("hits must share the entry's principal, the miss its own")
	}
	for name, p := range map[string]*auth.Principal{"miss": miss, "hit": hit} {
		if p.UserID != want.UserID || p.Email != want.Email || p.ClientID != want.ClientID || p.SID != want.SID ||
			p.TokenID != want.TokenID || !p.ExpiresAt.Equal(want.ExpiresAt) || p.Scheme != auth.SchemeJWTCookie ||
			len(p.Roles) != 1 || p.Roles[0] != "user" {
			t.Fatalf("%s: principal %+v; want %+v", name, p, want)
		}
	}
	bearer, err := e.svc.VerifySharedPrincipal(raw, auth.SchemeBearer)
	if err != nil || bearer == hit || bearer.Scheme != auth.SchemeBearer {
		t.Fatalf("hit under another scheme = %+v, %v; want a copy with that scheme", bearer, err)
	}
	own, err := e.svc.VerifyPrincipal(raw, auth.SchemeJWTCookie)
	if err != nil || own == hit {
		t.Fatalf("VerifyPrincipal = %p, %v; want the caller's copy", own, err)
	}
	own.UserID, own.Scheme, bearer.UserID = "tampered", auth.SchemeSession, "tampered"
	c.Subject = "tampered"
	if p, _ := e.svc.VerifySharedPrincipal(raw, auth.SchemeJWTCookie); p.UserID != alice.UserID || p.Scheme != auth.SchemeJWTCookie {
		t.Fatalf("a caller's copy reached the cache: %+v", p)
	}
	if c, _ := e.svc.VerifyAccess(raw); c.Subject != alice.UserID {
		t.Fatalf("a caller's claims reached the cache: %+v", c)
	}
}

// The shared principal is only read: concurrent hits and misses under
// both schemes race with nothing (run with -race).
func TestVerifySharedPrincipalConcurrent(t *testing.T) {
	e := newEnv(t, AlgEdDSA, withCache(4<<10))
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = e.issue(t, alice).AccessToken
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scheme := auth.SchemeBearer
			if g%2 == 1 {
				scheme = auth.SchemeJWTCookie
			}
			for i := range 200 {
				p, err := e.svc.VerifySharedPrincipal(toks[(g+i)%len(toks)], scheme)
				if err != nil || p.UserID != alice.UserID {
					t.Errorf("VerifySharedPrincipal = %+v, %v", p, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
