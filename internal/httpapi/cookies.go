package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
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
