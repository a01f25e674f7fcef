package logins

import (
	"errors"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/user"
)

// ErrOvertaken: a per-user revocation (log out everywhere, password change,
// suspension) landed while the login was being made; the login was ended and
// its credentials are dead. It is answered as invalid_credentials.
var ErrOvertaken = errors.New("login overtaken by a revocation of its user")

// Markers of where a failure came from, for the failures whose code depends
// on it: an unavailable user store is user_store_unavailable, not the shared
// store's store_unavailable; a refresh token that fails for any other reason
// is invalid_token.
var (
	errUserStore    = errors.New("user store")
	errRefreshToken = errors.New("refresh token")
)

// ErrPasswordUnchecked marks a failure of the password check that is not a
// wrong password (user store down or misconfigured, no hashing slot, a
// suspended account). httpapi counts a password change that fails so as a
// login attempt, as it always has.
var ErrPasswordUnchecked = errors.New("password check failed")

// errorCodes is the one sentinel → code table of the login lifecycle (the
// code → HTTP status map is httpapi's statusOf). The first sentinel in the
// error's chain wins, so the specific ones come before the generic ones that
// they may wrap (user.ErrOverlay wraps auth.ErrUnavailable). An error none
// of them matches keeps its own code, or is an internal error.
var errorCodes = []struct {
	// origin, if set, limits the row to failures of that origin.
	origin, sentinel error
	code             auth.Code
	message          string
}{
	{sentinel: ErrOvertaken, code: auth.CodeInvalidCredentials, message: "every login of this account was ended while this one was being checked; log in again"},
	{sentinel: user.ErrInvalidCredentials, code: auth.CodeInvalidCredentials, message: "email or password is wrong"},
	{sentinel: user.ErrSuspended, code: auth.CodeAccountSuspended, message: "this account is suspended; contact support"},
	{sentinel: user.ErrBusy, code: auth.CodeLoginBusy, message: "too many logins are being checked right now; retry in a moment"},
	{sentinel: user.ErrOverlay, code: auth.CodeStoreUnavailable, message: "login is unavailable: the store cannot be reached"},
	// Not the client's fault and not transient: say so, and make it loud
	// for operators (verifyFailed logs it). Never "invalid credentials",
	// which would hide it.
	{sentinel: user.ErrSQLConfig, code: auth.CodeUserStoreUnavailable, message: "login is unavailable: the user store is misconfigured (operators: see the server log)"},
	{sentinel: errUserStore, code: auth.CodeUserStoreUnavailable, message: "login is unavailable: the user store cannot be reached"},
	{sentinel: session.ErrLimitReached, code: auth.CodeSessionLimit, message: "too many active logins for this account; log out elsewhere first"},
	{origin: errRefreshToken, sentinel: auth.ErrUnavailable, code: auth.CodeStoreUnavailable, message: "the token store is unavailable; retry shortly"},
	{sentinel: auth.ErrUnavailable, code: auth.CodeStoreUnavailable, message: "the store is unavailable; retry shortly"},
	{sentinel: auth.ErrExpired, code: auth.CodeInvalidToken, message: "the refresh token has expired; log in again"},
	{sentinel: auth.ErrRevoked, code: auth.CodeInvalidToken, message: "the refresh token has been revoked; log in again"},
	{sentinel: errRefreshToken, code: auth.CodeInvalidToken, message: "the refresh token is not valid"},
}

// codeError gives err its code from errorCodes. An *auth.Error keeps the
// code it was given where it was made; nil stays nil.
func codeError(err error) error { return codeErrorFrom(err, nil) }

// userStoreError is codeError for a failure of the user store: whatever it
// is, if nothing more precise is known, the user store is unavailable.
func userStoreError(err error) error { return codeErrorFrom(err, errUserStore) }

// refreshError is codeError for a refresh token that was refused.
func refreshError(err error) error { return codeErrorFrom(err, errRefreshToken) }

func codeErrorFrom(err, origin error) error {
	var ae *auth.Error
	if err == nil || errors.As(err, &ae) {
		return err
	}
	cause := err
	if origin != nil {
		cause = fmt.Errorf("%w: %w", origin, err)
	}
	for _, e := range errorCodes {
		if errors.Is(cause, e.sentinel) && (e.origin == nil || errors.Is(cause, e.origin)) {
			return auth.Wrap(err, e.code, e.message)
		}
	}
	return err
}
