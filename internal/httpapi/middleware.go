package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

type requestIDKey struct{}

const headerRequestID = "X-Request-Id"

// requestContext gives each request an id (ours, never the client's: a client
// could forge one to confuse log correlation), sets security headers common to
// every answer, and writes one access log line without any credential.
func (s *Server) requestContext(c *fiber.Ctx) error {
	var b [12]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Locals(requestIDKey{}, id)
	c.Set(headerRequestID, id)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	if s.log.Enabled(c.UserContext(), -4) || c.Path() != "/livez" {
		attrs := []any{"method", c.Method(), "path", c.Path(), "status", c.Response().StatusCode(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "ip", s.ClientIP(c), "request_id", id}
		if p := authn.Principal(c); p != nil {
			attrs = append(attrs, "user_id", p.UserID, "client_id", p.ClientID, "scheme", p.Scheme.String(), "sid", p.SID)
		}
		s.log.Debug("request", attrs...)
	}
	return nil
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(requestIDKey{}).(string)
	return id
}
