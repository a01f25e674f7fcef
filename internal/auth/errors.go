package auth

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code carried in problem+json bodies.
// Clients may switch on it; never rename one.
type Code string

const (
	CodeInvalidRequest       Code = "invalid_request"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeInvalidCredentials   Code = "invalid_credentials"
	CodeUnauthenticated      Code = "unauthenticated"
	CodeInvalidToken         Code = "invalid_token"
	CodeInvalidSession       Code = "invalid_session"
	CodeSessionRetired       Code = "session_retired"
	CodeCredentialConflict   Code = "credential_conflict"
	CodeForbidden            Code = "forbidden"
	CodeCSRF                 Code = "csrf_failed"
	CodeUnknownClient        Code = "unknown_client"
	CodeRateLimited          Code = "rate_limited"
	CodeSessionLimit         Code = "session_limit"
	CodeNotAllowedInPhase    Code = "not_allowed_in_phase"
	CodeVersionConflict      Code = "version_conflict"
	CodeGuardRefused         Code = "guard_refused"
	CodeStoreUnavailable     Code = "store_unavailable"
	CodeUserStoreUnavailable Code = "user_store_unavailable"
	CodeUpstreamUnavailable  Code = "upstream_unavailable"
	CodeUpstreamTimeout      Code = "upstream_timeout"
	CodeInternal             Code = "internal"

	// Key rotation (admin API and readiness).
	CodeUnknownKey             Code = "unknown_key"
	CodeKeyAlgorithmNotAllowed Code = "key_algorithm_not_allowed"
	CodeRotationInProgress     Code = "rotation_in_progress"
	CodeKeysMissing            Code = "keys_missing"
)

// Codes of password verification and account control.
const (
	// CodeLoginBusy: every password-verification slot stayed busy; retry.
	CodeLoginBusy Code = "login_busy"
	// CodeAccountSuspended: the right password for an account an operator
	// suspended.
	CodeAccountSuspended Code = "account_suspended"
	// CodePasswordChangeDisabled: passwords are changed in the legacy app,
	// not here (users.allow_password_change).
	CodePasswordChangeDisabled Code = "password_change_disabled"
)

// Codes of cookie and origin integrity.
const (
	// CodeDuplicateCookie: the request carries two cookies of one credential
	// name; one was planted by another host (cookie tossing), and which one
	// is ours cannot be told.
	CodeDuplicateCookie Code = "duplicate_cookie"
	// CodeOriginNotAllowed: a browser request from an origin that is not in
	// its client's clients[].allowed_origins.
	CodeOriginNotAllowed Code = "origin_not_allowed"
)

// Codes of requests refused before routing.
const (
	// CodeNotImplemented: a method tokenshift does not implement (methods
	// are case-sensitive, so "post" is one).
	CodeNotImplemented Code = "not_implemented"
)

// Error is a domain error with a stable code and a message safe to show the
// client. Err, if set, is the cause, for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
	// Extra holds figures the client can act on (a guard refusal's usage
	// numbers, a rate limit's retry delay); they become extension members of
	// the problem+json body.
	Extra map[string]any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error with a formatted client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a code and client-safe message to a cause.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Sentinels shared across adapters. Adapters wrap them with %w; callers test
// with errors.Is.
var (
	// ErrUnavailable: a back end (Redis, SQL) could not be reached in time.
	ErrUnavailable = errors.New("back end unavailable")
	// ErrNotFound: the thing asked for does not exist (or no longer does).
	ErrNotFound = errors.New("not found")
	// ErrExpired: the credential existed but is past its lifetime.
	ErrExpired = errors.New("credential expired")
	// ErrRevoked: the credential was revoked (logout, reuse, operator).
	ErrRevoked = errors.New("credential revoked")
	// ErrInvalid: the credential is malformed, forged or of the wrong kind.
	ErrInvalid = errors.New("credential invalid")
)

// OutcomeOf classifies a verification error for usage counting.
func OutcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return OutcomeAccepted
	case errors.Is(err, ErrUnavailable):
		return OutcomeUnavailable
	case errors.Is(err, ErrExpired):
		return OutcomeExpired
	case errors.Is(err, ErrRevoked):
		return OutcomeRevoked
	default:
		return OutcomeInvalid
	}
}
