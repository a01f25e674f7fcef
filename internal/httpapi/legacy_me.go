package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// meSourced answers GET /auth/me: the caller as me answers it, plus
// "source" when a legacy session (legacy.sources) proved the request. Own
// credentials have no source, and their answer is me's, byte for byte.
// (Kept apart from handlers_auth.go while that file moves to
// internal/logins; fold Source into meResponse afterwards.)
func (s *Server) meSourced(c *fiber.Ctx) error {
	p := authn.Principal(c)
	if p == nil || p.Source == "" {
		return s.me(c)
	}
	r := meResponse{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: nonNil(p.Roles), Scheme: p.Scheme.String(), SID: p.SID}
	if !p.ExpiresAt.IsZero() {
		r.ExpiresAt = &p.ExpiresAt
	}
	return c.JSON(struct {
		meResponse
		Source string `json:"source"`
	}{r, p.Source})
}
