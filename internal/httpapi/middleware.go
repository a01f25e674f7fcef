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
	"github.com/tokenshift/tokenshift/internal/splitmix"
)

const headerRequestID = "X-Request-Id"

// Headers set on every answer, in canonical form (see requestContext, noStore).
var (
	keyRequestID          = []byte(headerRequestID)
	keyContentTypeOptions = []byte(fiber.HeaderXContentTypeOptions)
	valueNosniff          = []byte("nosniff")
	keyReferrerPolicy     = []byte(fiber.HeaderReferrerPolicy)
	valueNoReferrer       = []byte("no-referrer")
	keyCacheControl       = []byte(fiber.HeaderCacheControl)
	valueNoStore          = []byte("no-store")
	keyPragma             = []byte(fiber.HeaderPragma)
	valueNoCache          = []byte("no-cache")
	keyVary               = []byte(fiber.HeaderVary)
	valueOrigin           = []byte(fiber.HeaderOrigin)
)

// requestIDs hands out request ids: a random per-process prefix and a
// scrambled counter. Ids only correlate log lines with answers, so they need
// to be unique, not secret, and making one costs no syscall and no
// allocation beyond the header itself. The counter goes through a bijective
// mix so ids stay unique but do not tell a client how many requests this
// instance has served.
type requestIDs struct {
	prefix [16]byte // 8 random bytes, in hex once and for all
	key    uint64
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	r := &requestIDs{}
	var p, k [8]byte
	_, _ = rand.Read(p[:])
	_, _ = rand.Read(k[:])
	hex.Encode(r.prefix[:], p[:])
	r.key = binary.LittleEndian.Uint64(k[:])
	return r
}

// next writes a fresh 32-hex-digit id into dst.
func (r *requestIDs) next(dst *[32]byte) {
	copy(dst[:16], r.prefix[:])
	var raw [8]byte
	// Mix64 is a bijection, so distinct counters give distinct ids.
	binary.BigEndian.PutUint64(raw[:], splitmix.Mix64(r.n.Add(1)+r.key))
	hex.Encode(dst[16:], raw[:])
}

// requestContext gives each request an id (ours, never the client's: a client
// could forge one to confuse log correlation), sets security headers common to
// every answer, renders an error of the handlers, makes an HTML answer safe
// (secureHTML) and, at debug level, writes one access log line without any
// credential.
func (s *Server) requestContext(c *fiber.Ctx) error {
	s.commonHeaders(c)
	debug := s.log.Enabled(c.UserContext(), slog.LevelDebug)
	var start time.Time
	if debug {
		start = time.Now()
	}
	if err := c.Next(); err != nil {
		// Render the error now so secureHTML sees the final answer.
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	secureHTML(c)
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

// commonHeaders gives the answer its request id and the security headers of
// every answer; also used for requests refused before routing (framing.go).
func (s *Server) commonHeaders(c *fiber.Ctx) {
	var id [32]byte
	s.ids.next(&id)
	h := &c.Response().Header
	// Canonical keys as bytes: Set would copy and normalise each key on
	// every request.
	h.SetCanonical(keyRequestID, id[:])
	h.SetCanonical(keyContentTypeOptions, valueNosniff)
	h.SetCanonical(keyReferrerPolicy, valueNoReferrer)
}

// requestID is the id requestContext gave this request, read back from the
// answer's header so the hot path stores nothing else per request.
func requestID(c *fiber.Ctx) string {
	return string(c.Response().Header.Peek(headerRequestID))
}
