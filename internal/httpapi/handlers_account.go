package httpapi

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/logins"
)

// changePassword changes the caller's password (logins.Service.ChangePassword:
// the current one checked under the login rate limit, then every login of
// the user revoked, this one included): the caller logs in again with the
// new password.
func (s *Server) changePassword(c *fiber.Ctx) error {
	if !s.logins.PasswordChangeAllowed() {
		return auth.Errorf(auth.CodePasswordChangeDisabled, "passwords are not changed here; use the application's own password page")
	}
	var current, next string
	if _, err := parseForm(c, map[string]*string{"current_password": &current, "new_password": &next}); err != nil {
		return err
	}
	switch {
	case current == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"current_password\" is required")
	case next == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"new_password\" is required")
	}
	p := authn.Principal(c)
	err := s.logins.ChangePassword(c.UserContext(), logins.PasswordChange{
		UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Scheme: p.Scheme.String(),
		IP: s.ClientIP(c), Current: current, Next: next,
	})
	if err != nil {
		if errors.Is(err, logins.ErrPasswordUnchecked) {
			// Counted like the login whose check it shares.
			s.opts.Usage.Login(p.ClientID, auth.LoginOutcomeOf(err))
		}
		return setRetryAfter(c, err)
	}
	s.opts.Cookies.clear(c)
	return c.SendStatus(fiber.StatusNoContent)
}
