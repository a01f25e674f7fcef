package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// onSegment runs h only for requests on prefix or under it (prefix/...),
// and passes every other request on untouched. Fiber's Group and Use match
// a bare string prefix, so the middleware of a /auth group also ran for
// /authors/1, a path the reverse proxy serves for the app: the app's pages
// got tokenshift's Cache-Control: no-store. Comparison ignores case, as
// Fiber's routing does.
func onSegment(prefix string, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !underSegment(c.Path(), prefix) {
			return c.Next()
		}
		return h(c)
	}
}

// underSegment reports whether path is prefix or lies under it.
func underSegment(path, prefix string) bool {
	return len(path) >= len(prefix) && strings.EqualFold(path[:len(prefix)], prefix) &&
		(len(path) == len(prefix) || path[len(prefix)] == '/')
}
