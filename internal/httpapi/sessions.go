package httpapi

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// mySessions lists the caller's own live logins.
func (s *Server) mySessions(c *fiber.Ctx) error {
	p := authn.Principal(c)
	list, err := s.logins.ListLogins(c.UserContext(), p.UserID)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].Current = list[i].SID == p.SID
	}
	return c.JSON(fiber.Map{"user_id": p.UserID, "sessions": list})
}

// revokeMySession ends one of the caller's own logins.
func (s *Server) revokeMySession(c *fiber.Ctx) error {
	p := authn.Principal(c)
	sid := c.Params("sid")
	if err := s.logins.RevokeLoginOf(c.UserContext(), p.UserID, sid); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return auth.Errorf(auth.CodeNotFound, "no live login %q of yours", truncate(sid, 64))
		}
		return err
	}
	if sid == p.SID {
		s.opts.Cookies.clear(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}
