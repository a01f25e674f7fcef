package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// defaultHTMLPolicy applies to an HTML answer that set no policy of its own:
// nothing may load, run inline, frame it or be posted elsewhere.
const defaultHTMLPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// secureHTML makes sure every HTML answer, from any handler or error path,
// carries a Content-Security-Policy without inline script that forbids
// framing, plus X-Frame-Options for old browsers. X-Content-Type-Options and
// Referrer-Policy are set on every answer by requestContext; they are set
// again here so HTML keeps them whatever a handler did. requestContext
// calls it once the answer is final (errors rendered).
func secureHTML(c *fiber.Ctx) {
	h := &c.Response().Header
	if !hasPrefixFold(h.ContentType(), "text/html") || authn.IsForeignAnswer(c) {
		// A proxied application's page keeps its own policy: ours would
		// block its inline scripts. tokenshift's own HTML always gets it.
		return
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
}

// hasPrefixFold reports whether b starts with prefix, ignoring case, as
// strings.HasPrefix(strings.ToLower(b), prefix) does for a lower-case
// prefix, without the copy.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && strings.EqualFold(string(b[:len(prefix)]), prefix)
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
