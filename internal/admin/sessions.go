package admin

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// LoginInfo is one live login of a user as operators and users see it.
type LoginInfo = auth.LoginInfo

// SessionControl lists and revokes logins (implemented by logins.Service).
// Its errors carry their codes (*auth.Error), so handlers pass them on.
type SessionControl interface {
	ListLogins(ctx context.Context, userID string) ([]LoginInfo, error)
	// RevokeLoginOf revokes one login of userID; auth.ErrNotFound if that sid
	// is not a live login of that user.
	RevokeLoginOf(ctx context.Context, userID, sid string) error
	RevokeAllOf(ctx context.Context, userID, why string) error
}

func (h *Handlers) mountSessions(api fiber.Router) {
	api.Get("/users/:id/sessions", h.listSessions)
	api.Delete("/users/:id/sessions/:sid", h.revokeSession)
	api.Delete("/users/:id/sessions", h.revokeAll)
}

func (h *Handlers) listSessions(c *fiber.Ctx) error {
	uid, err := userIDParam(c)
	if err != nil {
		return err
	}
	logins, err := h.o.Sessions.ListLogins(c.UserContext(), uid)
	if err != nil {
		return err
	}
	if logins == nil {
		logins = []LoginInfo{}
	}
	return c.JSON(fiber.Map{"user_id": uid, "sessions": logins})
}

func (h *Handlers) revokeSession(c *fiber.Ctx) error {
	uid, err := userIDParam(c)
	if err != nil {
		return err
	}
	sid := c.Params("sid")
	if err := h.o.Sessions.RevokeLoginOf(c.UserContext(), uid, sid); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return auth.Errorf(auth.CodeNotFound, "user %q has no live login %q", truncate(uid, 64), truncate(sid, 64))
		}
		return err
	}
	h.log.Warn("operator revoked a login", "by", authn.Principal(c).Email, "user_id", uid, "sid", sid)
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handlers) revokeAll(c *fiber.Ctx) error {
	// The user id is stored (a revocation entry per user), so it follows
	// the rule of stored text.
	uid, err := userIDParam(c)
	if err != nil {
		return err
	}
	if err := h.o.Sessions.RevokeAllOf(c.UserContext(), uid, "operator:"+authn.Principal(c).Email); err != nil {
		return err
	}
	h.log.Warn("operator revoked every login of a user", "by", authn.Principal(c).Email, "user_id", uid)
	return c.SendStatus(fiber.StatusNoContent)
}
