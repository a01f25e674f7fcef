package gateway

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// headerCSRF is where cookie-authenticated unsafe requests carry tokenshift's
// CSRF token (the same header as on tokenshift's own routes).
const headerCSRF = "X-CSRF-Token"

// forwardedCSRF checks the CSRF defences of the original request behind a
// forward-auth proxy. The proxy passes the client's Origin, Sec-Fetch-Site,
// Cookie and X-CSRF-Token through to the check; the origin the request was
// sent to is the proxy's, given in X-Forwarded-Proto and X-Forwarded-Host
// (nginx as configured in docs/integrations.md, Traefik always) or in Host
// (Envoy keeps the original authority).
//
// X-Forwarded-Proto and -Host are believed only from a trusted proxy
// (server.trusted_proxies): anyone who can reach tokenshift directly could
// otherwise name the origin its own Origin header is compared with. A
// browser cannot add them to a cross-site request (they are not
// CORS-safelisted), but the check must not rest on who the caller is.
type forwardedCSRF struct {
	x       CSRF
	mode    CSRFMode
	trusted func(c *fiber.Ctx) bool
}

func (f forwardedCSRF) CheckCSRF(c *fiber.Ctx, p *auth.Principal) error {
	if err := checkForwardedOrigin(c, f.x, f.trusted(c)); err != nil {
		return err
	}
	if f.mode == CSRFOrigin {
		return nil
	}
	got := c.Get(headerCSRF)
	if got == "" {
		return auth.Errorf(auth.CodeCSRF, "cookie-authenticated %s requests need the %s header (from the login response or GET /auth/csrf)", OriginalMethod(c), headerCSRF)
	}
	if !f.x.ValidToken(p.SID, got) {
		return auth.Errorf(auth.CodeCSRF, "the %s header does not belong to this session", headerCSRF)
	}
	return nil
}

// checkForwardedOrigin is CSRF.CheckOrigin seen from the original request: a
// present Origin must be the origin the request was sent to, or a configured
// one; without Origin, Sec-Fetch-Site must not say cross-site.
func checkForwardedOrigin(c *fiber.Ctx, x CSRF, fromTrustedProxy bool) error {
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		if sameOrigin(o, originalOrigin(c, fromTrustedProxy)) || x.AllowedOrigin(o) {
			return nil
		}
		return auth.Errorf(auth.CodeCSRF, "origin %q is not allowed to make cookie-authenticated requests", o)
	}
	switch c.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return auth.Errorf(auth.CodeCSRF, "cross-site cookie-authenticated requests are refused")
}

// originalOrigin is scheme://host of the request the proxy received: from
// X-Forwarded-Proto and -Host when a trusted proxy sent the check, else the
// check request's own Host and connection scheme.
func originalOrigin(c *fiber.Ctx, fromTrustedProxy bool) string {
	proto, host := "", ""
	if fromTrustedProxy {
		proto = firstValue(c.Get(fiber.HeaderXForwardedProto))
		host = firstValue(c.Get(fiber.HeaderXForwardedHost))
	}
	if proto == "" {
		proto = "http"
		if c.Context().IsTLS() {
			proto = "https"
		}
	}
	if host == "" {
		host = string(c.Request().Host())
	}
	return strings.ToLower(proto + "://" + host)
}

// sameOrigin compares a browser's Origin with scheme://host, ignoring a
// default port written out on either side.
func sameOrigin(origin, want string) bool {
	if origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	w, err := url.Parse(want)
	if err != nil || w.Host == "" {
		return false
	}
	return strings.EqualFold(u.Scheme, w.Scheme) && strings.EqualFold(hostPort(u), hostPort(w))
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return u.Hostname() + ":" + port
}

// firstValue is the first element of a comma-separated header (a chain of
// proxies appends; the first is the client-facing one).
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// originOnly is the proxy's CSRF check in CSRFOrigin mode.
type originOnly struct{ x CSRF }

func (o originOnly) CheckCSRF(c *fiber.Ctx, _ *auth.Principal) error { return o.x.CheckOrigin(c) }
