package httpapi

import (
	"errors"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// statusOf is the one place that maps error codes to HTTP status.
var statusOf = map[auth.Code]int{
	auth.CodeInvalidRequest:         fiber.StatusBadRequest,
	auth.CodeUnsupportedMediaType:   fiber.StatusUnsupportedMediaType,
	auth.CodePayloadTooLarge:        fiber.StatusRequestEntityTooLarge,
	auth.CodeNotFound:               fiber.StatusNotFound,
	auth.CodeMethodNotAllowed:       fiber.StatusMethodNotAllowed,
	auth.CodeInvalidCredentials:     fiber.StatusUnauthorized,
	auth.CodeUnauthenticated:        fiber.StatusUnauthorized,
	auth.CodeInvalidToken:           fiber.StatusUnauthorized,
	auth.CodeInvalidSession:         fiber.StatusUnauthorized,
	auth.CodeSessionRetired:         fiber.StatusUnauthorized,
	auth.CodeCredentialConflict:     fiber.StatusUnauthorized,
	auth.CodeForbidden:              fiber.StatusForbidden,
	auth.CodeCSRF:                   fiber.StatusForbidden,
	auth.CodeUnknownClient:          fiber.StatusBadRequest,
	auth.CodeRateLimited:            fiber.StatusTooManyRequests,
	auth.CodeSessionLimit:           fiber.StatusConflict,
	auth.CodeNotAllowedInPhase:      fiber.StatusForbidden,
	auth.CodeVersionConflict:        fiber.StatusConflict,
	auth.CodeGuardRefused:           fiber.StatusConflict,
	auth.CodeStoreUnavailable:       fiber.StatusServiceUnavailable,
	auth.CodeUserStoreUnavailable:   fiber.StatusServiceUnavailable,
	auth.CodeUpstreamUnavailable:    fiber.StatusBadGateway,
	auth.CodeUpstreamTimeout:        fiber.StatusGatewayTimeout,
	auth.CodeInternal:               fiber.StatusInternalServerError,
	auth.CodeUnknownKey:             fiber.StatusBadRequest,
	auth.CodeKeyAlgorithmNotAllowed: fiber.StatusBadRequest,
	auth.CodeRotationInProgress:     fiber.StatusConflict,
	auth.CodeKeysMissing:            fiber.StatusServiceUnavailable,

	// Password verification and account control (user store).
	auth.CodeLoginBusy:              fiber.StatusServiceUnavailable,
	auth.CodeAccountSuspended:       fiber.StatusForbidden,
	auth.CodePasswordChangeDisabled: fiber.StatusForbidden,

	// Cookie and origin integrity.
	auth.CodeDuplicateCookie:  fiber.StatusBadRequest,
	auth.CodeOriginNotAllowed: fiber.StatusForbidden,

	// Refused before routing (framing.go).
	auth.CodeNotImplemented: fiber.StatusNotImplemented,
}

// Status returns the HTTP status for a code (500 for an unmapped one).
func Status(code auth.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return fiber.StatusInternalServerError
}

// Problem is an RFC 9457 problem details body with our stable code.
type Problem struct {
	Type     string    `json:"type"`
	Title    string    `json:"title"`
	Status   int       `json:"status"`
	Detail   string    `json:"detail,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Code     auth.Code `json:"code"`
	// Extra carries figures for some errors (guard refusals, rate limits).
	Extra map[string]any `json:"-"`
}

const problemContentType = "application/problem+json"

// writeProblem sends p. Extra members are merged at the top level, as RFC 9457
// allows extension members.
func writeProblem(c *fiber.Ctx, p Problem) error {
	body := map[string]any{
		"type":   p.Type,
		"title":  p.Title,
		"status": p.Status,
		"code":   p.Code,
	}
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	if p.Instance != "" {
		body["instance"] = p.Instance
	}
	for k, v := range p.Extra {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderCacheControl, "no-store")
	// Also on answers made before any middleware ran (fasthttp could not
	// read the request): every answer carries them.
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	if err := c.JSON(body); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, problemContentType)
	return nil
}

// errorHandler is Fiber's ErrorHandler: every error, ours or Fiber's, leaves as
// problem+json with the right status; nothing a client sends becomes a 500.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := Problem{Type: "about:blank", Instance: c.Path()}
		var ae *auth.Error
		var fe *fiber.Error
		switch {
		case errors.As(err, &ae):
			p.Code, p.Detail, p.Extra = ae.Code, ae.Message, ae.Extra
		case errors.As(err, &fe):
			p.Code, p.Detail = codeForFiber(fe.Code), fe.Message
			if requestID(c) == "" {
				// The request never reached a handler: fasthttp could not
				// read it (bad syntax, headers too large, body over the
				// limit) and Fiber's message quotes the raw request, Cookie
				// and Authorization included. Echoing it would hand a
				// same-origin script the HttpOnly cookies.
				p.Detail = serverLayerDetail
			}
		default:
			p.Code = auth.CodeInternal
		}
		p.Status = Status(p.Code)
		if fe != nil && p.Code == auth.CodeInvalidRequest {
			p.Status = fe.Code
		}
		if p.Status >= 500 {
			log.Error("request failed", "status", p.Status, "code", p.Code, "method", c.Method(), "path", c.Path(), "request_id", requestID(c), "error", err)
			if p.Code == auth.CodeInternal {
				p.Detail = "internal error; the request id is in the logs"
			}
		}
		p.Title = titleOf(p.Status)
		return writeProblem(c, p)
	}
}

// serverLayerDetail replaces the message of errors raised before routing.
const serverLayerDetail = "the request could not be read (malformed, or over a size limit); its content is not repeated here"

func codeForFiber(status int) auth.Code {
	switch status {
	case fiber.StatusNotFound:
		return auth.CodeNotFound
	case fiber.StatusMethodNotAllowed:
		return auth.CodeMethodNotAllowed
	case fiber.StatusRequestEntityTooLarge:
		return auth.CodePayloadTooLarge
	case fiber.StatusUnsupportedMediaType:
		return auth.CodeUnsupportedMediaType
	case fiber.StatusTooManyRequests:
		return auth.CodeRateLimited
	case fiber.StatusServiceUnavailable:
		return auth.CodeStoreUnavailable
	}
	if status >= 500 {
		return auth.CodeInternal
	}
	return auth.CodeInvalidRequest
}

func titleOf(status int) string {
	if t := fiberStatusText(status); t != "" {
		return t
	}
	return "Error"
}

func fiberStatusText(status int) string { return utils.StatusMessage(status) }
