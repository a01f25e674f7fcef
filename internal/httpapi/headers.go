package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// defaultHTMLPolicy applies to an HTML answer that set no policy of its own:
// nothing may load, run inline, frame it or be posted elsewhere.
const defaultHTMLPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// htmlSecurityHeaders makes sure every HTML answer, from any handler or error
// path, carries a Content-Security-Policy without inline script that forbids
// framing, plus X-Frame-Options for old browsers. X-Content-Type-Options and
// Referrer-Policy are set on every answer by requestContext; they are set
// again here so HTML keeps them whatever a handler did.
func htmlSecurityHeaders(c *fiber.Ctx) error {
	if err := c.Next(); err != nil {
		// Render the error now so the headers below see the final answer.
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	h := &c.Response().Header
	if authn.IsForeignAnswer(c) || !strings.HasPrefix(strings.ToLower(string(h.ContentType())), "text/html") {
		// A proxied application's page keeps its own policy: ours would
		// block its inline scripts. tokenshift's own HTML always gets it.
		return nil
	}
	csp := string(h.Peek(fiber.HeaderContentSecurityPolicy))
	switch {
	case csp == "":
		h.Set(fiber.HeaderContentSecurityPolicy, defaultHTMLPolicy)
	case unsafeInlineScript(csp):
		// A handler's policy that allows inline script is replaced, not trusted.
		h.Set(fiber.HeaderContentSecurityPolicy, defaultHTMLPolicy)
	case !strings.Contains(csp, "frame-ancestors"):
		h.Set(fiber.HeaderContentSecurityPolicy, csp+"; frame-ancestors 'none'")
	}
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if len(h.Peek(fiber.HeaderReferrerPolicy)) == 0 {
		h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	}
	return nil
}

// unsafeInlineScript reports whether a policy lets inline script run: through
// 'unsafe-inline' in script-src, or in default-src when script-src is absent.
func unsafeInlineScript(csp string) bool {
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		name = strings.ToLower(name)
		if _, seen := directives[name]; !seen && name != "" {
			directives[name] = strings.ToLower(value)
		}
	}
	src, ok := directives["script-src"]
	if !ok {
		if src, ok = directives["default-src"]; !ok {
			return true // no script policy at all: inline script runs
		}
	}
	return strings.Contains(src, "'unsafe-inline'")
}
