package gateway_test

import (
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/testutil/handlerbench"
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
	return handlerbench.Request("/auth/verify", "tokenshift.test", setup)
}

// runVerify times h answering ctx; the answer must be a 200 with identity.
func runVerify(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.Helper()
	handlerbench.Run(b, h, ctx, func(r *fasthttp.Response) bool {
		return r.StatusCode() == fasthttp.StatusOK && len(r.Header.Peek("X-Auth-User")) > 0
	})
}
