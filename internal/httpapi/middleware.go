package httpapi

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

const headerRequestID = "X-Request-Id"

// requestIDs hands out request ids: a random per-process prefix and a
// counter. Ids only correlate log lines with answers, so they need to be
// unique, not secret, and making one costs no syscall and no allocation
// beyond the header itself.
type requestIDs struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	r := &requestIDs{}
	_, _ = rand.Read(r.prefix[:])
	return r
}

// next writes a fresh 32-hex-digit id into dst.
func (r *requestIDs) next(dst *[32]byte) {
	var raw [16]byte
	copy(raw[:8], r.prefix[:])
	binary.BigEndian.PutUint64(raw[8:], r.n.Add(1))
	hex.Encode(dst[:], raw[:])
}

// requestContext gives each request an id (ours, never the client's: a client
// could forge one to confuse log correlation), sets security headers common to
// every answer, and, at debug level, writes one access log line without any
// credential.
func (s *Server) requestContext(c *fiber.Ctx) error {
	var id [32]byte
	s.ids.next(&id)
	h := &c.Response().Header
	h.SetBytesV(headerRequestID, id[:])
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	debug := s.log.Enabled(c.UserContext(), slog.LevelDebug)
	var start time.Time
	if debug {
		start = time.Now()
	}
	err := c.Next()
	if err != nil {
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	if debug && c.Path() != "/livez" {
		attrs := []any{"method", c.Method(), "path", c.Path(), "status", c.Response().StatusCode(),
			"duration_ms", float64(time.Since(start).Microseconds()) / 1000, "ip", s.ClientIP(c), "request_id", requestID(c)}
		if p := authn.Principal(c); p != nil {
			attrs = append(attrs, "user_id", p.UserID, "client_id", p.ClientID, "scheme", p.Scheme.String(), "sid", p.SID)
		}
		s.log.Debug("request", attrs...)
	}
	return nil
}

// requestID is the id requestContext gave this request, read back from the
// answer's header so the hot path stores nothing else per request.
func requestID(c *fiber.Ctx) string {
	return string(c.Response().Header.Peek(headerRequestID))
}
