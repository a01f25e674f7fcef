package httpapi

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// csrfAuthn authenticates GET /auth/csrf. A caller whose credential is stale
// (an expired session cookie is normal on a login page) is treated as
// anonymous and gets a pre-session token rather than a 401; only a store
// outage is an error. A session the phase retired but still lets exchange
// gets its own token: POST /auth/exchange needs it, and a client that lost
// the one from its login answer has nowhere else to get it.
func (s *Server) csrfAuthn(base authn.Config) fiber.Handler {
	cfg := base
	cfg.Optional = true
	cfg.AllowRetiredSession = true
	cfg.ErrorHandler = func(c *fiber.Ctx, err error) error {
		var ae *auth.Error
		if errors.As(err, &ae) && ae.Code == auth.CodeStoreUnavailable {
			return err
		}
		c.Response().Header.Del(fiber.HeaderWWWAuthenticate)
		return s.preSessionCSRF(c)
	}
	return authn.New(cfg)
}

// preSessionCSRF answers an anonymous GET /auth/csrf: the token a login form
// must carry, bound to a pre-session cookie set here. A still fresh cookie is
// reused, so two tabs of the login page do not invalidate each other.
func (s *Server) preSessionCSRF(c *fiber.Ctx) error {
	now := s.opts.Clock()
	name := s.opts.Cookies.preSessionCookie()
	value := c.Cookies(name)
	token, expires := "", time.Time{}
	reuse := false
	if exp, ok := preSessionExpiry(value); ok && exp.Sub(now) > preSessionTTL/2 && exp.Sub(now) <= preSessionTTL {
		// A login already spent it: the next form needs a fresh one.
		used, err := s.csrf.preSessionUsed(c.UserContext(), value)
		if err != nil {
			return auth.Wrap(err, auth.CodeStoreUnavailable, "the store is unavailable; retry shortly")
		}
		reuse = !used
		expires = exp
	}
	if reuse {
		token = s.csrf.preSessionToken(value)
	} else {
		var err error
		value, token, expires, err = s.csrf.newPreSession(now)
		if err != nil {
			return err
		}
	}
	c.Cookie(&fiber.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		Secure:   s.opts.Cookies.Secure,
		HTTPOnly: true,
		// Strict: the cookie is only needed by our own login form, never on
		// a navigation from another site.
		SameSite: fiber.CookieSameSiteStrictMode,
	})
	return c.JSON(fiber.Map{"csrf_token": token, "pre_session": true, "expires_in": int64(expires.Sub(now) / time.Second)})
}

// clearPreSession expires the pre-session cookie: a login consumed it.
func (s *Server) clearPreSession(c *fiber.Ctx) {
	if c.Cookies(s.opts.Cookies.preSessionCookie()) == "" {
		return
	}
	c.Cookie(&fiber.Cookie{
		Name:     s.opts.Cookies.preSessionCookie(),
		Value:    "",
		Path:     "/",
		Expires:  time.Unix(0, 0),
		Secure:   s.opts.Cookies.Secure,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode,
	})
}
