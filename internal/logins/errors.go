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

// errorCodes is the one sentinel → code table of the login lifecycle (the
// code → HTTP status map is httpapi's statusOf). The first sentinel in the
// error's chain wins, so the specific ones come before the generic ones that
// they may wrap (user.ErrOverlay wraps auth.ErrUnavailable). An error none
// of them matches keeps its own code, or is an internal error.
var errorCodes = []struct {
	sentinel error
	code     auth.Code
	message  string
}{
	{ErrOvertaken, auth.CodeInvalidCredentials, "every login of this account was ended while this one was being checked; log in again"},
	{user.ErrInvalidCredentials, auth.CodeInvalidCredentials, "email or password is wrong"},
	{user.ErrSuspended, auth.CodeAccountSuspended, "this account is suspended; contact support"},
	{user.ErrBusy, auth.CodeLoginBusy, "too many logins are being checked right now; retry in a moment"},
	{user.ErrOverlay, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached"},
	// Not the client's fault and not transient: say so, and make it loud
	// for operators (verifyFailed logs it). Never "invalid credentials",
	// which would hide it.
	{user.ErrSQLConfig, auth.CodeUserStoreUnavailable, "login is unavailable: the user store is misconfigured (operators: see the server log)"},
	{errUserStore, auth.CodeUserStoreUnavailable, "login is unavailable: the user store cannot be reached"},
	{session.ErrLimitReached, auth.CodeSessionLimit, "too many active logins for this account; log out elsewhere first"},
	{auth.ErrUnavailable, auth.CodeStoreUnavailable, "the store is unavailable; retry shortly"},
	{auth.ErrExpired, auth.CodeInvalidToken, "the refresh token has expired; log in again"},
	{auth.ErrRevoked, auth.CodeInvalidToken, "the refresh token has been revoked; log in again"},
	{errRefreshToken, auth.CodeInvalidToken, "the refresh token is not valid"},
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
		if errors.Is(cause, e.sentinel) {
			return auth.Wrap(err, e.code, e.message)
		}
	}
	return err
}
