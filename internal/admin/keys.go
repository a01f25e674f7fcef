package admin

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/token"
)

// KeyManager lists and rotates the signing keys (token.Rotator, or
// token.StaticKeys for the ephemeral development key).
type KeyManager interface {
	Keys(ctx context.Context) (token.KeysView, error)
	Rotate(ctx context.Context, req token.RotateRequest) (token.KeysView, error)
}

func (h *Handlers) mountKeys(api fiber.Router) {
	api.Get("/keys", h.listKeys)
	api.Post("/keys/rotate", h.rotateKey)
}

func (h *Handlers) listKeys(c *fiber.Ctx) error {
	v, err := h.o.Keys.Keys(c.UserContext())
	if err != nil {
		return keysError(err)
	}
	return c.JSON(v)
}

type rotateRequest struct {
	KID    string `json:"kid"`
	Reason string `json:"reason"`
	Force  bool   `json:"force"`
}

// rotateKey starts a rotation; it answers 202 because the new key signs only
// after the publish delay.
func (h *Handlers) rotateKey(c *fiber.Ctx) error {
	var req rotateRequest
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	switch {
	case req.KID != "" && !token.ValidKID(req.KID):
		return auth.Errorf(auth.CodeInvalidRequest, "kid %q is not a valid key id (letters, digits, '.', '_', '-'; at most 64)", truncate(req.KID, 64))
	case len(req.Reason) > 500:
		return auth.Errorf(auth.CodeInvalidRequest, "reason is longer than 500 characters")
	case req.Force && req.Reason == "":
		return auth.Errorf(auth.CodeInvalidRequest, "a forced rotation must say why: give a reason")
	}
	if err := checkText("reason", req.Reason); err != nil {
		return err
	}
	p := authn.Principal(c)
	v, err := h.o.Keys.Rotate(c.UserContext(), token.RotateRequest{KID: req.KID, Reason: req.Reason, Force: req.Force, Actor: p.Email})
	if err != nil {
		h.log.Warn("signing key rotation refused", "by", p.Email, "kid", req.KID, "forced", req.Force, "reason", req.Reason, "err", err)
		return keysError(err)
	}
	r := v.Rotation
	h.log.Warn("signing key rotation started", "by", p.Email, "user_id", p.UserID, "kid", r.KID, "from", r.From,
		"signs_at", r.SignsAt, "old_key_retires_at", r.RetireAt, "cancelled", r.Cancelled, "forced", r.Forced,
		"reason", r.Reason, "version", r.Version, "problems", v.Problems)
	return c.Status(fiber.StatusAccepted).JSON(v)
}

func keysError(err error) error {
	switch {
	case errors.Is(err, token.ErrUnknownKey):
		return auth.Wrap(err, auth.CodeUnknownKey, errDetail(err))
	case errors.Is(err, token.ErrAlgorithmNotAllowed):
		return auth.Wrap(err, auth.CodeKeyAlgorithmNotAllowed, errDetail(err))
	case errors.Is(err, token.ErrRotationInProgress):
		return auth.Wrap(err, auth.CodeRotationInProgress, errDetail(err))
	case errors.Is(err, token.ErrKeyRetired), errors.Is(err, token.ErrAlreadySigning):
		return auth.Wrap(err, auth.CodeInvalidRequest, errDetail(err))
	case errors.Is(err, auth.ErrUnavailable):
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the key rotation state cannot be read or written right now; nothing was changed")
	}
	return err
}

// errDetail is the error's message, which the token package writes for
// operators (kids, algorithms, times; never key material or paths).
func errDetail(err error) string { return truncate(err.Error(), 500) }
