package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// revokeRequest is the body of POST /auth/revoke (RFC 7009 §2.1).
type revokeRequest struct {
	Token, Hint string
	// FromCookie: the token came from one of our cookies, not the body, so a
	// foreign page could have triggered the request.
	FromCookie bool
}

// parseRevoke reads the token from the body (form, as RFC 7009 says, or JSON)
// or, for cookie-transport clients that cannot read their tokens, from the
// access or refresh cookie.
func (s *Server) parseRevoke(c *fiber.Ctx) (revokeRequest, error) {
	var r revokeRequest
	if len(c.Body()) > 0 || c.Get(fiber.HeaderContentType) != "" {
		if _, err := parseForm(c, map[string]*string{"token": &r.Token, "token_type_hint": &r.Hint}); err != nil {
			return r, err
		}
	}
	if r.Token != "" {
		return r, nil
	}
	access, refresh := c.Cookies(s.opts.Cookies.AccessCookie()), c.Cookies(s.opts.Cookies.RefreshCookie())
	switch {
	case r.Hint == "refresh_token" && refresh != "":
		r.Token = refresh
	case access != "":
		r.Token = access
	default:
		r.Token = refresh
	}
	r.FromCookie = r.Token != ""
	return r, nil
}

// revoke implements RFC 7009 token revocation for public clients: the token
// itself is the proof, no client authentication. An access token loses its
// jti (other tokens of the login keep working); a refresh token ends its
// whole login, as RFC 7009 §2.1 asks for tokens of the same grant. Unknown,
// invalid or already dead tokens are answered 200 like live ones (§2.2), so
// the endpoint tells nobody whether a token was valid. A token taken from a
// cookie needs the same-origin check and the login's CSRF token, like any
// cookie-authenticated unsafe request.
func (s *Server) revoke(c *fiber.Ctx) error {
	r, err := s.parseRevoke(c)
	if err != nil {
		return err
	}
	if r.Token == "" {
		return auth.Errorf(auth.CodeInvalidRequest, "field \"token\" is required")
	}
	var check func(sid string) error
	if r.FromCookie {
		if err := s.csrf.CheckOrigin(c); err != nil {
			return err
		}
		check = func(sid string) error { return s.checkCookieCSRF(c, sid) }
	}
	done, err := s.logins.RevokeToken(c.UserContext(), r.Token, check)
	if err != nil {
		return err
	}
	if done.Login && r.FromCookie {
		s.opts.Cookies.clear(c)
	}
	return revokeOK(c)
}

// checkCookieCSRF checks the X-CSRF-Token of a cookie-carried credential of
// login sid.
func (s *Server) checkCookieCSRF(c *fiber.Ctx, sid string) error {
	return s.csrf.CheckCSRF(c, &auth.Principal{SID: sid})
}

// revokeOK is RFC 7009's answer whatever the token was: 200, empty body.
func revokeOK(c *fiber.Ctx) error {
	c.Status(fiber.StatusOK)
	return nil
}
