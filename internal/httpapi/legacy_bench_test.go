package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/token"
)

// BenchmarkAuthVerifyLegacy is forward-auth (GET /auth/verify, the gateway
// mounted as cmd/tokenshift mounts it) through app.Handler(), on a real
// redis-server, for an express-session cookie of an existing app against
// tokenshift's own session cookie: once each is in this instance's near
// cache, the legacy one should cost about what the own one costs.
//
//	CI=true go test -run '^$' -bench AuthVerifyLegacy -benchmem -count 5 ./internal/httpapi/
func BenchmarkAuthVerifyLegacy(b *testing.B) {
	srv := redistest.Start(b)
	st, err := store.NewRedis(store.RedisOptions{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	const secret = "keyboard cat"
	const id = "wSs6ZIbqXzWvG7mDcL5pA2kR9tYbN3eH" // express-session's uid-safe(24)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = admin.Close() })
	// What connect-redis stores for a passport login.
	if err := admin.Set(context.Background(), "sess:"+id, `{"cookie":{"originalMaxAge":86400000,"expires":"2099-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"passport":{"user":"u-alice"}}`, time.Hour).Err(); err != nil {
		b.Fatal(err)
	}
	opts := []legacy.Options{{Name: "shop", Kind: legacy.KindExpress, Client: "web", UserID: "passport.user",
		Secrets: []string{"new secret", secret}, Redis: store.RedisOptions{URL: srv.URL()}}}
	set, err := legacy.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close() })
	var lv *legacy.Verifier
	s := newDevServerOn(b, st, func(o *testOptions, _ *token.Options) {
		lv = legacy.NewVerifier(set, opts, o.Users.(legacy.UserLookup), o.Revoked.UserNotBefore)
		o.Options.Legacy, o.Legacy = lv, set
		o.Options.Mount = func(app *fiber.App, srv *Server) {
			g, err := gateway.New(gateway.Options{Authn: srv.AuthnConfig(), CSRF: srv.CSRF(), ForwardAuth: true,
				ClientIP: srv.ClientIP, FromTrustedProxy: srv.FromTrustedProxy})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(g.Close)
			srv.SkipCORS(g.Owns)
			g.Mount(app)
		}
	})
	lv.SetHooks(s.opts.Options.Logins.CheckLegacy, s.opts.Options.Logins.SeenLegacy)
	verify := func(ctx *fasthttp.RequestCtx) *fasthttp.RequestCtx {
		ctx.Request.SetRequestURI("/auth/verify")
		return ctx
	}
	b.Run("session-redis", func(b *testing.B) {
		runHandler(b, s.App.Handler(), verify(s.meRequestAs(b, "web", "session")))
	})
	b.Run("legacy-express-redis", func(b *testing.B) {
		// The value express-session sets: encodeURIComponent("s:" + sign(id)).
		ck := legacy.SignExpressCookie(id, secret)
		runHandler(b, s.App.Handler(), verify(meRequest(func(r *fasthttp.Request) { r.Header.SetCookie("connect.sid", ck) })))
	})
}
