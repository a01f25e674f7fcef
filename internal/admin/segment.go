package admin

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// onSegment runs h only for requests on prefix or under it (prefix/...),
// and passes every other request on untouched. Fiber's Group matches a bare
// string prefix, so the admin group's authentication also ran for
// /administrator or /admin-panel, paths the reverse proxy serves for the
// app, which then got tokenshift's 401/403. Comparison ignores case, as
// Fiber's routing does.
func onSegment(prefix string, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := c.Path()
		if len(p) < len(prefix) || !strings.EqualFold(p[:len(prefix)], prefix) || (len(p) > len(prefix) && p[len(prefix)] != '/') {
			return c.Next()
		}
		return h(c)
	}
}
