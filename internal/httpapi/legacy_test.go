package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func legacyPrincipal(source, id string) *auth.Principal {
	return &auth.Principal{
		UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Scheme: auth.SchemeSession,
		SID: logins.LegacyHandle(source, id), Source: source, LegacyID: id,
	}
}

// A legacy session's CSRF token is bound to its handle: it passes for that
// session only, never for another legacy session or a tokenshift one, and a
// legacy principal without its id has no token at all.
func TestCSRFTokenOfALegacySession(t *testing.T) {
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	x, err := NewCSRF(context.Background(), CSRFOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	shop := legacyPrincipal("shop", "id-1")
	tests := []struct {
		name  string
		token string
		p     *auth.Principal
		ok    bool
	}{
		{name: "its own token", token: x.Token(csrfBinding(shop)), p: shop, ok: true},
		{name: "the token of its handle (SID), as the gateway checks", token: x.Token(shop.SID), p: shop, ok: true},
		{name: "another legacy session's", token: x.Token(csrfBinding(legacyPrincipal("shop", "id-2"))), p: shop},
		{name: "same id, another source", token: x.Token(csrfBinding(legacyPrincipal("blog", "id-1"))), p: shop},
		{name: "a tokenshift session's", token: x.Token("AAAAAAAAAAAAAAAAAAAAAA"), p: shop},
		{name: "legacy principal without its id", token: x.Token(""), p: &auth.Principal{Source: "shop", SID: ""}},
		{name: "its token under a forged SID", token: x.Token(csrfBinding(shop)), p: &auth.Principal{Source: "shop", LegacyID: "id-2", SID: shop.SID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New()
			app.Post("/", func(c *fiber.Ctx) error {
				if err := x.CheckCSRF(c, tt.p); err != nil {
					return c.SendStatus(403)
				}
				return c.SendStatus(204)
			})
			req, _ := http.NewRequest("POST", "http://tokenshift.test/", nil)
			req.Header.Set("Origin", "http://tokenshift.test")
			req.Header.Set(HeaderCSRF, tt.token)
			res, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if (res.StatusCode == 204) != tt.ok {
				t.Fatalf("status %d, want ok=%v", res.StatusCode, tt.ok)
			}
		})
	}
}

// serveAs serves hr with p as the request's principal, as authn's legacy
// adapter leaves it (optional routes keep it when no tokenshift credential
// is present).
func (ts *testServer) serveAs(t *testing.T, hr *http.Request, p *auth.Principal) *tresp {
	t.Helper()
	return ts.serveWith(t, hr, "", p)
}

// GET /auth/csrf hands a legacy session the token bound to it, and POST
// /auth/logout deletes the legacy session from the Express app's Redis.
func TestLegacyCSRFAndLogoutHandlers(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	set, err := legacy.Open([]legacy.Options{{Name: "shop", Kind: legacy.KindExpress, Client: "web", UserID: "userId", Secrets: []string{"s1"}, Redis: store.RedisOptions{URL: srv.URL()}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	ts := newTestServer(t, func(o *testOptions) { o.Legacy = set })
	const id = "0123456789abcdef0123456789abcdef"
	if err := admin.Set(context.Background(), "sess:"+id, `{"cookie":{"originalMaxAge":3600000},"userId":"u-alice"}`, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	p := legacyPrincipal("shop", id)

	hr, _ := http.NewRequest("GET", "http://tokenshift.test/auth/csrf", nil)
	r := ts.serveAs(t, hr, p)
	var body struct {
		Token      string `json:"csrf_token"`
		PreSession bool   `json:"pre_session"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &body) != nil || body.PreSession || !ts.csrf.ValidToken(logins.LegacyHandle("shop", id), body.Token) {
		t.Fatalf("GET /auth/csrf for a legacy session: %d %s", r.status, r.body)
	}

	hr, _ = http.NewRequest("POST", "http://tokenshift.test/auth/logout", nil)
	hr.Header.Set("Origin", "http://tokenshift.test")
	hr.Header.Set(HeaderCSRF, body.Token)
	if r := ts.serveAs(t, hr, p); r.status != 204 {
		t.Fatalf("POST /auth/logout: %d %s", r.status, r.body)
	}
	if n, _ := admin.Exists(context.Background(), "sess:"+id).Result(); n != 0 {
		t.Fatal("the legacy session is still in the Express app's Redis after logout")
	}
}
