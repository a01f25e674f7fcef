package httpapi

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/handlerbench"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/token"
)

// These benchmarks drive GET /auth/me in-process through app.Handler(), the
// same fasthttp entry point the listener uses, so they measure tokenshift's
// work per request (middleware, verification, decision, usage recording,
// JSON) without the network. "bare" is a plain Fiber app answering the same
// JSON with no authentication: every other figure is read as a ratio to it.
//
//	go test -run '^$' -bench AuthMe -benchmem -count 5 ./internal/httpapi/

// meRequest prepares a reusable request context for GET /auth/me.
func meRequest(setup func(r *fasthttp.Request)) *fasthttp.RequestCtx {
	return handlerbench.Request("/auth/me", "localhost:8080", setup)
}

func runHandler(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.Helper()
	handlerbench.Run(b, h, ctx, nil)
}

// bareApp answers what /auth/me answers, for a fixed principal, with no
// authentication at all: the floor any auth layer is measured against.
func bareApp() *fiber.App {
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	p := meResponse{UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Roles: []string{"user"}, Scheme: "bearer", SID: "0123456789abcdef0123456789abcdef"}
	app.Get("/auth/me", func(c *fiber.Ctx) error { return c.JSON(p) })
	return app
}

// noRecording keeps the metrics side of usage but drops per-request events,
// so "recording off" differs from "on" by exactly the Record call.
type noRecording struct{ UsageRecorder }

func (noRecording) Record(auth.Scheme, string, string, auth.Outcome) {}

func withoutRecording() devOption {
	return func(o *testOptions, _ *token.Options) { o.Usage = noRecording{o.Usage} }
}

type meCase struct {
	name   string
	client string
	scheme string // session | bearer | jwt_cookie
	opts   []devOption
}

func BenchmarkAuthMe(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		runHandler(b, bareApp().Handler(), meRequest(nil))
	})
	cases := []meCase{
		{name: "session", client: "web", scheme: "session"},
		{name: "bearer-EdDSA-cache-hit", client: "web", scheme: "bearer"},
		{name: "bearer-EdDSA-cache-miss", client: "web", scheme: "bearer", opts: []devOption{withoutTokenCache()}},
		{name: "jwt_cookie", client: "spa", scheme: "jwt_cookie"},
		// What a browser of the spa client sends in phase dual: the login
		// set both cookies, and both are verified (conflict check, the
		// session's idle timer), so the session's cost comes on top.
		{name: "jwt_cookie-with-session", client: "spa", scheme: "jwt_cookie+session"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := newDevServer(b, tc.opts...)
			runHandler(b, s.App.Handler(), s.meRequestAs(b, tc.client, tc.scheme))
		})
	}
	// The same session on a real redis-server: what a session costs when
	// its record lives across the network (the near cache's case).
	b.Run("session-redis", func(b *testing.B) {
		srv := redistest.Start(b)
		st, err := store.NewRedis(store.RedisOptions{URL: srv.URL()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		s := newDevServerOn(b, st)
		runHandler(b, s.App.Handler(), s.meRequestAs(b, "web", "session"))
	})
}

// BenchmarkAuthMeRecording compares the same bearer request with usage
// recording on and off, in one run (issue: recording cost on the hot path).
func BenchmarkAuthMeRecording(b *testing.B) {
	for _, tc := range []struct {
		name   string
		record bool
	}{{"on", true}, {"off", false}} {
		for _, scheme := range []string{"session", "bearer"} {
			b.Run(scheme+"/recording-"+tc.name, func(b *testing.B) {
				var opts []devOption
				if !tc.record {
					opts = append(opts, withoutRecording())
				}
				s := newDevServer(b, opts...)
				runHandler(b, s.App.Handler(), s.meRequestAs(b, "web", scheme))
			})
		}
	}
}

// meRequestAs logs alice in through client and returns a GET /auth/me that
// carries only the credential of scheme.
func (s *devServer) meRequestAs(b testing.TB, client, scheme string) *fasthttp.RequestCtx {
	b.Helper()
	a := s.loginJSON(b, "alice@example.com", "alice-dev-password", client)
	body := a.json(b)
	switch scheme {
	case "session":
		ck := a.cookie["ts_session"]
		if ck == nil {
			b.Fatalf("no session cookie: %v", a.header)
		}
		return meRequest(func(r *fasthttp.Request) { r.Header.SetCookie(ck.Name, ck.Value) })
	case "bearer":
		tok, _ := body["access_token"].(string)
		if tok == "" {
			b.Fatalf("no access token: %s", a.body)
		}
		return meRequest(func(r *fasthttp.Request) { r.Header.Set(fiber.HeaderAuthorization, "Bearer "+tok) })
	case "jwt_cookie+session":
		ck, sk := a.cookie["ts_access"], a.cookie["ts_session"]
		if ck == nil || sk == nil {
			b.Fatalf("want an access and a session cookie: %v", a.header)
		}
		return meRequest(func(r *fasthttp.Request) {
			r.Header.SetCookie(ck.Name, ck.Value)
			r.Header.SetCookie(sk.Name, sk.Value)
		})
	case "jwt_cookie":
		ck := a.cookie["ts_access"]
		if ck == nil {
			b.Fatalf("no access cookie: %v", a.header)
		}
		return meRequest(func(r *fasthttp.Request) { r.Header.SetCookie(ck.Name, ck.Value) })
	}
	b.Fatalf("unknown scheme %q", scheme)
	return nil
}
