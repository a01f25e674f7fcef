package gateway_test

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// BenchmarkVerify drives GET /auth/verify in-process through app.Handler(),
// as httpapi's BenchmarkAuthMe drives /auth/me: tokenshift's whole answer
// to a forward-auth check (frame middleware, verification, identity
// headers) without the network. "bare" is a plain Fiber app answering 200
// with the same identity headers and no authentication.
//
//	go test -run '^$' -bench Verify -benchmem -count 5 ./internal/gateway/
func BenchmarkVerify(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		app := fiber.New(fiber.Config{DisableStartupMessage: true})
		app.Get("/auth/verify", func(c *fiber.Ctx) error {
			c.Set("X-Auth-User", "u-alice")
			c.Set("X-Auth-Email", aliceEmail)
			c.Set("X-Auth-Client", "web")
			c.Set("X-Auth-Scheme", "session")
			c.Set("X-Auth-Roles", "user")
			return c.SendStatus(fiber.StatusOK)
		})
		runVerify(b, app.Handler(), verifyRequest(nil))
	})
	for _, tc := range []struct{ name, client, scheme string }{
		{"session", "web", "session"},
		{"bearer-cache-hit", "web", "bearer"},
		{"jwt_cookie", "spa", "jwt_cookie"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEnv(b, envOptions{})
			c := e.login(b, tc.client)
			runVerify(b, e.app.Handler(), verifyRequest(func(r *fasthttp.Request) {
				switch tc.scheme {
				case "session":
					r.Header.SetCookie("ts_session", c.session)
				case "bearer":
					r.Header.Set(fiber.HeaderAuthorization, "Bearer "+c.access)
				case "jwt_cookie":
					r.Header.SetCookie("ts_access", c.accessCookie)
				}
			}))
		})
	}
}

func verifyRequest(setup func(r *fasthttp.Request)) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fiber.MethodGet)
	ctx.Request.SetRequestURI("/auth/verify")
	ctx.Request.Header.SetHost("tokenshift.test")
	if setup != nil {
		setup(&ctx.Request)
	}
	return &ctx
}

func runVerify(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.Helper()
	h(ctx)
	if ctx.Response.StatusCode() != 200 || len(ctx.Response.Header.Peek("X-Auth-User")) == 0 {
		b.Fatalf("status %d, no identity: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
	b.StopTimer()
	// CPU time of this thread, which on a shared machine does not count the
	// time spent waiting for a core as ns/op does.
	if d := threadCPUTime() - start; b.N > 0 && d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
