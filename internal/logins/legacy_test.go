package logins

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/user"
)

const (
	expressSecret = "shop-secret"
	aliceID       = "u-alice"
)

// expressShop is a real express source ("shop", client web, userId) over a
// private redis-server, and a client that writes sessions into it as
// express-session + connect-redis do.
type expressShop struct {
	set   *legacy.Set
	admin *redis.Client
}

func startExpressShop(t *testing.T) *expressShop {
	t.Helper()
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	set, err := legacy.Open([]legacy.Options{{
		Name: "shop", Kind: legacy.KindExpress, Client: "web", UserID: "userId",
		Secrets: []string{expressSecret},
		Redis:   store.RedisOptions{URL: srv.URL(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return &expressShop{set: set, admin: admin}
}

// login writes a connect-redis record for userID saved at savedAt (the
// stored cookie.expires minus originalMaxAge) and returns the session id.
func (x *expressShop) login(t *testing.T, userID string, savedAt time.Time) string {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	const maxAge = 24 * time.Hour
	rec, _ := json.Marshal(map[string]any{
		"cookie": map[string]any{
			"originalMaxAge": maxAge.Milliseconds(), "expires": savedAt.Add(maxAge).UTC().Format("2006-01-02T15:04:05.000Z"),
			"httpOnly": true, "path": "/",
		},
		"userId": userID,
	})
	if err := x.admin.Set(context.Background(), "sess:"+id, rec, maxAge).Err(); err != nil {
		t.Fatal(err)
	}
	return id
}

func (x *expressShop) exists(t *testing.T, id string) bool {
	t.Helper()
	n, err := x.admin.Exists(context.Background(), "sess:"+id).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func withLegacy(set LegacySources, onExchange map[string]OnExchange) envOption {
	return func(o *Options) { o.Legacy, o.LegacyOnExchange = set, onExchange }
}

// accept is what authn's legacy adapter does with a legacy cookie: the
// real one (legacy.Verifier, hooked to this service as serve hooks it)
// verifies it, loads the session, checks its handle and its user's
// not-before, looks the user up, builds the principal, records it as seen.
func (e *env) accept(t *testing.T, set *legacy.Set, cookies map[string]string) (*auth.Principal, error) {
	t.Helper()
	v := legacy.NewVerifier(set, nil, withBob{e.verifier}, e.rev.UserNotBefore)
	v.SetHooks(e.CheckLegacy, e.SeenLegacy)
	cred, ok, err := v.ParseLegacy(authn.CookieFunc(func(n string) string { return cookies[n] }))
	if !ok {
		return nil, legacy.ErrNoCookie
	}
	if err != nil {
		return nil, err
	}
	p, err := v.VerifyLegacy(t.Context(), cred)
	if err != nil {
		return nil, err
	}
	p.Scheme = auth.SchemeSession // as authn sets it
	return p, nil
}

// withBob is the env's users plus u-bob, a legacy app's user the tests
// never log in to tokenshift.
type withBob struct{ *user.Verifier }

func (u withBob) LookupID(ctx context.Context, id string) (*user.User, error) {
	if id == "u-bob" {
		return &user.User{ID: id, Email: "bob@example.com"}, nil
	}
	return u.Verifier.LookupID(ctx, id)
}

func shopCookie(id string) map[string]string {
	return map[string]string{"connect.sid": legacy.SignExpressCookie(id, expressSecret)}
}

func (e *env) seenHandles(t *testing.T, userID string) map[string]seenEntry {
	t.Helper()
	all, err := e.st.HGetAll(t.Context(), seenKey(userID))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]seenEntry{}
	for f, v := range all {
		var se seenEntry
		if err := json.Unmarshal(v, &se); err != nil {
			t.Fatalf("entry %s: %v", f, err)
		}
		out[f] = se
	}
	return out
}

// Logout with a legacy session deletes it from the Express app's Redis
// (so the app refuses it too) and from the seen index.
func TestLegacyLogoutEndsTheSessionInItsStore(t *testing.T) {
	shop := startExpressShop(t)
	e := newEnv(t, withLegacy(shop.set, nil))
	id := shop.login(t, aliceID, time.Now().Add(-time.Hour))
	other := shop.login(t, aliceID, time.Now().Add(-time.Hour))
	p, err := e.accept(t, shop.set, shopCookie(id))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.seenHandles(t, aliceID)[p.SID]; !ok {
		t.Fatal("accepted legacy session not in the seen index")
	}
	if err := e.LogoutLegacy(t.Context(), p, false); err != nil {
		t.Fatal(err)
	}
	if shop.exists(t, id) {
		t.Fatal("the legacy session is still in the Express app's Redis")
	}
	if _, err := e.accept(t, shop.set, shopCookie(id)); !errors.Is(err, legacy.ErrNotFound) {
		t.Fatalf("logged-out legacy session: %v, want ErrNotFound", err)
	}
	if _, ok := e.seenHandles(t, aliceID)[p.SID]; ok {
		t.Fatal("ended legacy session still in the seen index")
	}
	if !shop.exists(t, other) {
		t.Fatal("logout ended another legacy session of the user")
	}
	if err := e.LogoutLegacy(t.Context(), &auth.Principal{UserID: aliceID, SID: "x"}, false); !errors.Is(err, ErrNotLegacy) {
		t.Fatalf("logout of a non-legacy principal: %v", err)
	}
}

// Every per-user revocation deletes the user's seen legacy sessions from
// their store and refuses the unseen ones saved before it (not-before);
// other users keep theirs, and a legacy login after it works.
func TestRevokeAllOfEndsSeenLegacySessions(t *testing.T) {
	tests := []struct {
		name   string
		revoke func(t *testing.T, e *env) error
	}{
		{name: "log out everywhere", revoke: func(t *testing.T, e *env) error { return e.Logout(t.Context(), aliceID, "", true) }},
		{name: "operator revocation", revoke: func(t *testing.T, e *env) error { return e.RevokeAllOf(t.Context(), aliceID, "test") }},
		{name: "suspension", revoke: func(t *testing.T, e *env) error {
			_, err := e.SuspendUser(t.Context(), aliceID, "ops", "test")
			return err
		}},
		{name: "password change", revoke: func(t *testing.T, e *env) error {
			return e.ChangePassword(t.Context(), PasswordChange{UserID: aliceID, Email: alice, Current: alicePass, Next: "a-new-password-for-alice", IP: "192.0.2.1"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := startExpressShop(t)
			e := newEnv(t, withLegacy(shop.set, nil))
			saved := time.Now().Add(-time.Hour)
			seen1, seen2 := shop.login(t, aliceID, saved), shop.login(t, aliceID, saved)
			unseen := shop.login(t, aliceID, saved)
			bob := shop.login(t, "u-bob", saved)
			for _, id := range []string{seen1, seen2, bob} {
				if _, err := e.accept(t, shop.set, shopCookie(id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.revoke(t, e); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{seen1, seen2} {
				if shop.exists(t, id) {
					t.Fatal("a seen legacy session survived the revocation in its store")
				}
			}
			if len(e.seenHandles(t, aliceID)) != 0 {
				t.Fatal("ended sessions still in the seen index")
			}
			// Refused by the adapter's one not-before check (a suspended
			// user already by the user store).
			want := auth.ErrRevoked
			if tt.name == "suspension" {
				want = legacy.ErrUserRefused
			}
			if _, err := e.accept(t, shop.set, shopCookie(unseen)); !errors.Is(err, want) {
				t.Fatalf("unseen legacy session saved before the revocation: %v, want %v", err, want)
			}
			if _, err := e.accept(t, shop.set, shopCookie(bob)); err != nil || !shop.exists(t, bob) {
				t.Fatalf("another user's legacy session: %v", err)
			}
			if tt.name == "suspension" {
				return // a suspended user's new legacy login is refused by the user store (authn)
			}
			fresh := shop.login(t, aliceID, time.Now().Add(time.Second))
			if _, err := e.accept(t, shop.set, shopCookie(fresh)); err != nil {
				t.Fatalf("legacy login after the revocation: %v", err)
			}
		})
	}
}

// The seen index keeps the LegacySeenMax newest entries, and one instance
// rewrites an id's entry at most once per LegacySeenEvery.
func TestSeenLegacyIndexIsBoundedAndRateLimited(t *testing.T) {
	shop := startExpressShop(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Millisecond); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnv(t, withLegacy(shop.set, nil), func(o *Options) { o.LegacySeenMax = 3; o.Clock = clock })
	var handles []string
	for range 5 {
		p, err := e.accept(t, shop.set, shopCookie(shop.login(t, aliceID, time.Now().Add(-time.Minute))))
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, p.SID)
	}
	got := e.seenHandles(t, aliceID)
	if len(got) != 3 {
		t.Fatalf("index holds %d entries, want 3", len(got))
	}
	for _, h := range handles[2:] {
		if _, ok := got[h]; !ok {
			t.Fatalf("newest entry %s pruned; index %v", h, got)
		}
	}
	// Rate limit: a second use within the minute writes nothing.
	id := handles[4]
	before := got[id].SeenAt
	p := &auth.Principal{UserID: aliceID, Source: "shop", LegacyID: got[id].ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.SeenLegacy(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if e.seenHandles(t, aliceID)[id].SeenAt != before {
		t.Fatal("a second SeenLegacy within the minute rewrote the entry")
	}
	advance(DefaultLegacySeenEvery)
	if err := e.SeenLegacy(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if e.seenHandles(t, aliceID)[id].SeenAt == before {
		t.Fatal("SeenLegacy a minute later did not rewrite the entry")
	}
}

// Exchange of a legacy session makes a new login of the same user and
// client in tokenshift's registry (listed, revocable), with a session
// cookie where the phase issues them; on_exchange decides whether the
// legacy session survives in its store.
func TestLegacyExchange(t *testing.T) {
	tests := []struct {
		name       string
		phase      featureflags.Phase
		rollout    float64
		onExchange OnExchange
		wantCookie bool
		wantLegacy bool
	}{
		{name: "dual keep", phase: featureflags.PhaseDual, onExchange: OnExchangeKeep, wantCookie: true, wantLegacy: true},
		{name: "dual end", phase: featureflags.PhaseDual, onExchange: OnExchangeEnd, wantCookie: true},
		{name: "default is keep", phase: featureflags.PhaseDual, wantCookie: true, wantLegacy: true},
		{name: "retiring, fully rolled out, end", phase: featureflags.PhaseRetiring, rollout: 100, onExchange: OnExchangeEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shop := startExpressShop(t)
			oe := map[string]OnExchange{}
			if tt.onExchange != "" {
				oe["shop"] = tt.onExchange
			}
			e := newEnv(t, withLegacy(shop.set, oe), func(o *Options) {
				f, err := featureflags.NewFlags(featureflags.State{Phase: tt.phase, Rollout: tt.rollout, RolloutSeed: "test"})
				if err != nil {
					t.Fatal(err)
				}
				o.Flags = f
			})
			id := shop.login(t, aliceID, time.Now().Add(-time.Hour))
			p, err := e.accept(t, shop.set, shopCookie(id))
			if err != nil {
				t.Fatal(err)
			}
			x, err := e.Exchange(t.Context(), ExchangeRequest{Principal: p, IP: "192.0.2.7", UserAgent: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if x.SID == "" || x.SID == p.SID || x.Client.ID != "web" {
				t.Fatalf("exchanged %+v", x)
			}
			if (x.Cookie != "") != tt.wantCookie {
				t.Fatalf("cookie %q, want one: %v", x.Cookie, tt.wantCookie)
			}
			cl, err := e.tokens.VerifyAccess(x.AccessToken)
			if err != nil || cl.Subject != aliceID || cl.ClientID != "web" || cl.SID != x.SID {
				t.Fatalf("access token %+v, %v", cl, err)
			}
			list, err := e.ListLogins(t.Context(), aliceID)
			if err != nil || len(list) != 1 || list[0].SID != x.SID || list[0].IP != "192.0.2.7" {
				t.Fatalf("logins %+v, %v", list, err)
			}
			if shop.exists(t, id) != tt.wantLegacy || x.LegacyEnded == tt.wantLegacy {
				t.Fatalf("legacy session in its store: %v (ended %v), want %v", shop.exists(t, id), x.LegacyEnded, tt.wantLegacy)
			}
			if err := e.RevokeLogin(t.Context(), x.SID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.tokens.VerifyAccess(x.AccessToken); err == nil {
				t.Fatal("revoked login's access token still verifies")
			}
		})
	}
}

// A legacy session ended after authn accepted it (a revocation racing with
// the exchange) gets no login: the exchange reads it again.
func TestLegacyExchangeAfterRevocationIsRefused(t *testing.T) {
	shop := startExpressShop(t)
	e := newEnv(t, withLegacy(shop.set, nil))
	p, err := e.accept(t, shop.set, shopCookie(shop.login(t, aliceID, time.Now().Add(-time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RevokeAllOf(t.Context(), aliceID, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = e.Exchange(t.Context(), ExchangeRequest{Principal: p})
	wantCode(t, err, auth.CodeInvalidSession)
	if list, _ := e.ListLogins(t.Context(), aliceID); len(list) != 0 {
		t.Fatalf("a refused exchange left logins %+v", list)
	}
}

// A callout source cannot delete its sessions: logout and log-out-
// everywhere revoke the handle in the revocation mirror, which another
// instance on the same store applies at once, whatever its callout cache
// holds.
func TestCalloutLegacyEndedByRevocationOnEveryInstance(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("JSESSIONID"); err == nil && c.Value != "" {
			fmt.Fprint(w, `{"user":{"id":"u-alice"}}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(app.Close)
	newSet := func() *legacy.Set {
		set, err := legacy.Open([]legacy.Options{{Name: "spring", Kind: legacy.KindCallout, Client: "web", URL: app.URL, ForwardCookies: []string{"JSESSIONID"}, Subject: "user.id"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = set.Close() })
		return set
	}
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("all=%v", all), func(t *testing.T) {
			setA, setB := newSet(), newSet()
			a := newEnv(t, withLegacy(setA, nil))
			b := a.sibling(t, withLegacy(setB, nil))
			cookie := map[string]string{"JSESSIONID": "abc"}
			p, err := a.accept(t, setA, cookie)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.accept(t, setB, cookie); err != nil { // now in b's cache
				t.Fatal(err)
			}
			if err := a.LogoutLegacy(t.Context(), p, all); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(100 * time.Millisecond)
			for {
				_, err := b.accept(t, setB, cookie)
				if errors.Is(err, ErrLegacyRevoked) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("other instance after 100 ms: %v, want ErrLegacyRevoked", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
