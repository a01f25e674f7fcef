package httpapi

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

// corsAllowedHeaders are the request headers a browser app on an allowed
// origin may send: credentials, JSON bodies and the CSRF token.
const corsAllowedHeaders = "Authorization, Content-Type, X-CSRF-Token"

// corsExposedHeaders are the response headers such an app may read.
const corsExposedHeaders = "Retry-After, WWW-Authenticate, X-Request-Id, Deprecation, Sunset, Link"

// corsOrigins normalises the allow-list the way browsers send Origin
// (lower-case scheme://host[:port], no path). Config validation already
// refuses "*", "null" and non-origins; they are refused again here because a
// wildcard with credentials would let any site read authenticated answers.
func corsOrigins(list []string) (map[string]bool, error) {
	out := make(map[string]bool, len(list))
	for _, o := range list {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if o == "*" || o == "null" || err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
			u.Host == "" || strings.Contains(u.Host, "*") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("httpapi: CORS origin %q must be an explicit origin like https://app.example.com", o)
		}
		out[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return out, nil
}

// newCORS mounts Fiber's CORS middleware with an exact allow-list. The list is
// matched through AllowOriginsFunc (with AllowOrigins empty) so that Fiber's
// default of "*" can never apply, even to an empty list, and so that a bad
// entry is a start-up error here instead of a panic inside Fiber.
//
// next skips it: requests another component answers on its own terms (the
// gateway's proxied routes and forward-auth, see Server.SkipCORS).
//
// A request without Origin, most of them, is outside CORS: for it Fiber's
// middleware only adds Vary: Origin (so that a cache never hands this
// answer to a cross-origin request), which is done here directly, without
// its lower-casing of the header and read-modify-write of Vary.
func newCORS(allowed map[string]bool, next func(c *fiber.Ctx) bool) fiber.Handler {
	full := cors.New(cors.Config{
		AllowOriginsFunc: func(origin string) bool { return allowed[origin] },
		AllowMethods:     "GET,POST,PUT,PATCH,DELETE,HEAD",
		AllowHeaders:     corsAllowedHeaders,
		ExposeHeaders:    corsExposedHeaders,
		AllowCredentials: true,
		MaxAge:           600,
	})
	return func(c *fiber.Ctx) error {
		if next != nil && next(c) {
			return c.Next()
		}
		if len(c.Request().Header.Peek(fiber.HeaderOrigin)) != 0 {
			return full(c)
		}
		if h := &c.Response().Header; len(h.Peek(fiber.HeaderVary)) == 0 {
			h.SetCanonical(keyVary, valueOrigin)
		} else {
			c.Vary(fiber.HeaderOrigin)
		}
		return c.Next()
	}
}
