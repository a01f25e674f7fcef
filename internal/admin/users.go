package admin

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// AccountInfo is tokenshift's own state of a user, as operators see it.
type AccountInfo = auth.AccountInfo

// AccountControl suspends and reinstates users (implemented by
// logins.Service, which also revokes the user's credentials on suspension).
// Its errors carry their codes (*auth.Error), so handlers pass them on.
type AccountControl interface {
	AccountOf(ctx context.Context, userID string) (AccountInfo, error)
	SuspendUser(ctx context.Context, userID, by, reason string) (AccountInfo, error)
	UnsuspendUser(ctx context.Context, userID string) (AccountInfo, error)
}

func (h *Handlers) mountUsers(api fiber.Router) {
	api.Get("/users/:id/account", h.getAccount)
	api.Post("/users/:id/suspend", h.suspend)
	api.Delete("/users/:id/suspend", h.unsuspend)
}

// userIDParam is the {id} of the path: a user id as the user store has it
// (the store is not asked: suspending an id nobody has is harmless, and the
// SQL store cannot list ids).
func userIDParam(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if id == "" || len(id) > 256 {
		return "", auth.Errorf(auth.CodeInvalidRequest, "user id must be 1-256 printable characters")
	}
	if err := checkText("user id", id); err != nil {
		return "", err
	}
	return id, nil
}

func (h *Handlers) getAccount(c *fiber.Ctx) error {
	id, err := userIDParam(c)
	if err != nil {
		return err
	}
	a, err := h.o.Accounts.AccountOf(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

type suspendRequest struct {
	Reason string `json:"reason"`
}

// suspend refuses the user's future logins and revokes every session and
// token they hold, on every instance. The reason is required: it is what the
// next operator reads.
func (h *Handlers) suspend(c *fiber.Ctx) error {
	id, err := userIDParam(c)
	if err != nil {
		return err
	}
	var req suspendRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	switch {
	case req.Reason == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"reason\" is required")
	case len(req.Reason) > 500:
		return auth.Errorf(auth.CodeInvalidRequest, "reason is longer than 500 characters")
	}
	if err := checkText("reason", req.Reason); err != nil {
		return err
	}
	p := authn.Principal(c)
	if id == p.UserID {
		// The last admin locking themselves out needs a database edit to undo.
		return auth.Errorf(auth.CodeInvalidRequest, "you cannot suspend your own account")
	}
	a, err := h.o.Accounts.SuspendUser(c.UserContext(), id, p.Email, req.Reason)
	if err != nil {
		if a.Suspended {
			h.log.Error("user suspended but not every credential could be revoked", "by", p.Email, "user_id", id, "error", err)
			return auth.Wrap(err, auth.CodeStoreUnavailable, "the user is suspended, but live credentials could not all be revoked; retry")
		}
		return err
	}
	h.log.Warn("operator suspended a user; every login revoked", "by", p.Email, "by_user_id", p.UserID, "user_id", id, "reason", req.Reason)
	return c.JSON(a)
}

func (h *Handlers) unsuspend(c *fiber.Ctx) error {
	id, err := userIDParam(c)
	if err != nil {
		return err
	}
	a, err := h.o.Accounts.UnsuspendUser(c.UserContext(), id)
	if err != nil {
		return err
	}
	p := authn.Principal(c)
	h.log.Warn("operator lifted a suspension", "by", p.Email, "by_user_id", p.UserID, "user_id", id)
	return c.JSON(a)
}
