package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// shadowMismatch counts and logs a disagreement found by the shadow check
// (migration.shadow_check). It logs who and which schemes, never a
// credential: operators need to find the user and the client, not replay it.
func (s *Server) shadowMismatch(c *fiber.Ctx, m authn.ShadowMismatch) {
	s.opts.Usage.ShadowMismatch(m.ClientID, m.Kind)
	attrs := []any{
		"kind", m.Kind, "phase", m.Phase.String(),
		"scheme", m.Scheme.String(), "user_id", m.UserID, "client_id", m.ClientID,
		"other_scheme", m.OtherScheme.String(),
	}
	if m.OtherUserID != "" {
		attrs = append(attrs, "other_user_id", m.OtherUserID, "other_client_id", m.OtherClientID)
	}
	attrs = append(attrs, "method", c.Method(), "path", c.Path(), "request_id", requestID(c))
	s.log.Warn("shadow check: the credentials of a request disagree", attrs...)
}
