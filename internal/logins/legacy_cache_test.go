package logins

import (
	"context"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/store"
)

// Every ending tokenshift makes of a legacy session wins over the legacy
// near cache of another instance within 100 ms: instance B has the
// session cached (a hit, no store read), instance A ends it, and B's next
// hits refuse it. A single logout works only because it revokes the
// session's handle in the mirror (the deletion from the Express Redis
// alone would be seen by B at its next store read, up to cache_ttl later).
func TestLegacyEndingsWinOverTheNearCacheOfEveryInstance(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, a *env, p *auth.Principal) error
	}{
		{name: "logout", end: func(t *testing.T, a *env, p *auth.Principal) error { return a.LogoutLegacy(t.Context(), p, false) }},
		{name: "logout everywhere", end: func(t *testing.T, a *env, p *auth.Principal) error { return a.LogoutLegacy(t.Context(), p, true) }},
		{name: "suspension", end: func(t *testing.T, a *env, _ *auth.Principal) error {
			_, err := a.SuspendUser(t.Context(), aliceID, "ops", "test")
			return err
		}},
		{name: "password change", end: func(t *testing.T, a *env, _ *auth.Principal) error {
			return a.ChangePassword(t.Context(), PasswordChange{UserID: aliceID, Email: alice, Current: alicePass, Next: "a-new-password-for-alice", IP: "192.0.2.1"})
		}},
	}
	for _, tt := range tests {
		for _, dated := range []bool{true, false} {
			name := tt.name + ", session saved before"
			if !dated {
				name = tt.name + ", session without a save time"
			}
			t.Run(name, func(t *testing.T) {
				shop := startExpressShop(t)
				a := newEnv(t, withLegacy(shop.set, nil))
				setB := reopenExpressShop(t, shop)
				b := a.sibling(t, withLegacy(setB, nil))
				vb := legacy.NewVerifier(setB, nil, b.verifier, b.rev.UserNotBefore)
				vb.SetHooks(b.CheckLegacy, b.SeenLegacy)

				id := shop.login(t, aliceID, time.Now().Add(-time.Hour))
				if !dated {
					// A browser-session cookie: express-session stores no
					// expiry, so nothing dates the login (IssuedAt zero).
					rec := `{"cookie":{"originalMaxAge":null,"expires":false,"httpOnly":true,"path":"/"},"userId":"` + aliceID + `"}`
					if err := shop.admin.Set(context.Background(), "sess:"+id, rec, time.Hour).Err(); err != nil {
						t.Fatal(err)
					}
				}
				p, err := a.accept(t, shop.set, shopCookie(id))
				if err != nil {
					t.Fatal(err)
				}
				cred := authn.LegacyCredential{Source: "shop", ID: id}
				for range 2 { // the second is a hit
					if _, err := vb.VerifyLegacy(context.Background(), cred); err != nil {
						t.Fatal(err)
					}
				}
				if st := setB.CacheStats(); st.Hits != 1 {
					t.Fatalf("B did not answer from its near cache: %+v", st)
				}
				if err := tt.end(t, a, p); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(100 * time.Millisecond)
				for {
					_, err := vb.VerifyLegacy(context.Background(), cred)
					if err != nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("B still accepts the ended legacy session after 100 ms (cache %+v)", setB.CacheStats())
					}
					time.Sleep(2 * time.Millisecond)
				}
				if _, err := vb.VerifyLegacy(context.Background(), cred); err == nil {
					t.Fatal("accepted again")
				}
			})
		}
	}
}

// reopenExpressShop is another instance's view of the same Express Redis.
func reopenExpressShop(t *testing.T, x *expressShop) *legacy.Set {
	t.Helper()
	set, err := legacy.Open([]legacy.Options{{
		Name: "shop", Kind: legacy.KindExpress, Client: "web", UserID: "userId",
		Secrets: []string{expressSecret},
		Redis:   store.RedisOptions{URL: "redis://" + x.admin.Options().Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return set
}
