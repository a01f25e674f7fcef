package token

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// A valid signature must not buy a token that lives longer than we ever
// issue, nor one for a client nobody registered.
func TestAccessLifetimeCapAndRegisteredClients(t *testing.T) {
	e := newEnv(t, AlgEdDSA, func(c *Options) { c.Clients = []string{"web", "mobile"} })
	edPriv := e.ring.Key("ed-1").signer
	now := e.clock.Now().Unix()
	ttl := int64(DefaultAccessTTL / time.Second)
	leeway := int64(DefaultLeeway / time.Second)
	tests := []struct {
		name string
		mut  func(c map[string]any)
		want error
	}{
		{name: "exactly the access TTL", mut: func(c map[string]any) { c["exp"] = now + ttl }},
		{name: "TTL plus leeway", mut: func(c map[string]any) { c["exp"] = now + ttl + leeway }},
		{name: "one second beyond TTL plus leeway", mut: func(c map[string]any) { c["exp"] = now + ttl + leeway + 1 }, want: auth.ErrInvalid},
		{name: "ten years", mut: func(c map[string]any) { c["exp"] = now + 10*365*24*3600 }, want: auth.ErrInvalid},
		{name: "old iat, long exp, still inside the window", mut: func(c map[string]any) { c["iat"] = now - 3600; c["exp"] = now + 600 }, want: auth.ErrInvalid},
		{name: "registered client web", mut: func(c map[string]any) { c["client_id"] = "web" }},
		{name: "unregistered client", mut: func(c map[string]any) { c["client_id"] = "evil" }, want: auth.ErrInvalid},
		{name: "client id differing in case", mut: func(c map[string]any) { c["client_id"] = "Mobile" }, want: auth.ErrInvalid},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.claimsMap()
			c["jti"] = "jti-life-" + string(rune('a'+i))
			tc.mut(c)
			_, err := e.svc.VerifyAccess(forge(t, hdr("EdDSA", "ed-1"), c, jwt.SigningMethodEdDSA, edPriv))
			wantSentinel(t, err, tc.want)
		})
	}

	// What we issue ourselves always passes the cap.
	p := e.issue(t, alice)
	if _, err := e.svc.VerifyAccess(p.AccessToken); err != nil {
		t.Fatalf("our own token: %v", err)
	}
	// IssueAccess refuses to mint, for our audience, what VerifyAccess refuses.
	if _, _, err := e.svc.IssueAccess(alice, DefaultAccessTTL+time.Second, ""); err == nil {
		t.Fatal("IssueAccess minted a token for our audience longer than the access TTL")
	}
	if _, _, err := e.svc.IssueAccess(alice, time.Hour, "upstream-api"); err != nil {
		t.Fatalf("IssueAccess for another audience within the revocation horizon: %v", err)
	}
}

// RevokeAccess revokes the jti only: other tokens of the same login live on,
// and tokens that do not verify are not added to the list.
func TestRevokeAccessOnlyTheJTI(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p1 := e.issue(t, alice)
	sub := alice
	sub.SID = claimsOf(t, e, p1.AccessToken).SID
	p2 := e.issue(t, sub) // same login
	c, err := e.svc.RevokeAccess(ctx, p1.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !e.rev.JTIRevoked(c.ID) || e.rev.SIDRevoked(c.SID) {
		t.Fatal("RevokeAccess must revoke the jti, not the login")
	}
	wantSentinel(t, func() error { _, err := e.svc.VerifyAccess(p1.AccessToken); return err }(), auth.ErrRevoked)
	if _, err := e.svc.VerifyAccess(p2.AccessToken); err != nil {
		t.Fatalf("another token of the same login: %v", err)
	}
	// Revoked until exp plus leeway, then forgotten.
	e.clock.Advance(DefaultAccessTTL + DefaultLeeway - time.Second)
	if !e.rev.JTIRevoked(c.ID) {
		t.Fatal("revocation ended before exp + leeway")
	}
	e.clock.Advance(2 * time.Second)
	if e.rev.JTIRevoked(c.ID) {
		t.Fatal("revocation outlived exp + leeway")
	}

	entries := func() int {
		e.rev.mu.RLock()
		defer e.rev.mu.RUnlock()
		return len(e.rev.jti)
	}
	before := entries()
	forged := e.claimsMap()
	forged["jti"] = "made-up"
	for _, bad := range []string{"garbage", p2.AccessToken, forge(t, hdr("EdDSA", "ed-1"), forged, jwt.SigningMethodEdDSA, randomKey(t))} {
		if _, err := e.svc.RevokeAccess(ctx, bad); !IsNotRevocable(err) {
			t.Fatalf("%.20s: %v; want a not-revocable error", bad, err)
		}
	}
	if n := entries(); n != before {
		t.Fatalf("revoking tokens that do not verify added %d jti entries", n-before)
	}
}

func randomKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
