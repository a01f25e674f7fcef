package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/logins"
)

// CookieOptions name and secure the credential cookies.
type CookieOptions struct {
	// SessionName, AccessName, RefreshName are the configured base names.
	SessionName, AccessName, RefreshName string
	// Secure adds the Secure attribute and the __Host- / __Secure- prefixes,
	// which browsers only accept over HTTPS. Off only for plain-http dev.
	Secure bool
}

// refreshPath scopes the refresh cookie to the endpoints that need it, so it is
// not sent with every request.
const refreshPath = "/auth"

// SessionCookie is the effective session cookie name.
func (o CookieOptions) SessionCookie() string { return o.hostPrefixed(o.SessionName) }

// AccessCookie is the effective JWT access cookie name.
func (o CookieOptions) AccessCookie() string { return o.hostPrefixed(o.AccessName) }

// RefreshCookie is the effective refresh cookie name. It cannot use __Host-
// because it is scoped to a path; __Secure- still forbids setting it over http.
func (o CookieOptions) RefreshCookie() string {
	if o.Secure {
		return "__Secure-" + o.RefreshName
	}
	return o.RefreshName
}

func (o CookieOptions) hostPrefixed(name string) string {
	if o.Secure {
		return "__Host-" + name
	}
	return name
}

func (o CookieOptions) cookie(name, value, path string, expires time.Time) *fiber.Cookie {
	return &fiber.Cookie{
		Name:     name,
		Value:    value,
		Path:     path,
		Expires:  expires,
		Secure:   o.Secure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	}
}

// setSessionCookie and setTokenCookies are how handlers set credential
// cookies. Both pass the origin rules of origins.go first, so no path can
// plant credentials in a browser from a cross-site request, whatever carried
// the request's own credential. The handlers check earlier, before anything
// changes state; this is the net under them.
func (s *Server) setSessionCookie(c *fiber.Ctx, client auth.Client, value string, expires time.Time) error {
	if err := s.checkIssueOrigin(c, client, true); err != nil {
		return err
	}
	s.opts.Cookies.setSession(c, value, expires)
	return nil
}

func (s *Server) setTokenCookies(c *fiber.Ctx, client auth.Client, pair logins.Pair) error {
	if err := s.checkIssueOrigin(c, client, true); err != nil {
		return err
	}
	s.opts.Cookies.setTokens(c, pair.AccessToken, pair.AccessExpiresAt, pair.RefreshToken, pair.RefreshExpiresAt)
	return nil
}

// refuseDuplicateCookies answers 400 duplicate_cookie, on every route, to a
// request that carries one of the credential cookies twice (see
// authn.DuplicateCookie): the refresh cookie's __Secure- prefix does not stop
// a sibling subdomain from planting a Domain-wide one with a longer Path,
// which the browser then sends first.
func refuseDuplicateCookies(o CookieOptions) fiber.Handler {
	session, access, refresh := o.SessionCookie(), o.AccessCookie(), o.RefreshCookie()
	return func(c *fiber.Ctx) error {
		if name := authn.DuplicateCookie(c, session, access, refresh); name != "" {
			return authn.DuplicateCookieError(name)
		}
		return c.Next()
	}
}

func (o CookieOptions) setSession(c *fiber.Ctx, value string, expires time.Time) {
	c.Cookie(o.cookie(o.SessionCookie(), value, "/", expires))
}

func (o CookieOptions) setTokens(c *fiber.Ctx, access string, accessExp time.Time, refresh string, refreshExp time.Time) {
	c.Cookie(o.cookie(o.AccessCookie(), access, "/", accessExp))
	c.Cookie(o.cookie(o.RefreshCookie(), refresh, refreshPath, refreshExp))
}

// clear expires every credential cookie in the browser.
func (o CookieOptions) clear(c *fiber.Ctx) {
	past := time.Unix(0, 0)
	c.Cookie(o.cookie(o.SessionCookie(), "", "/", past))
	c.Cookie(o.cookie(o.AccessCookie(), "", "/", past))
	c.Cookie(o.cookie(o.RefreshCookie(), "", refreshPath, past))
}
