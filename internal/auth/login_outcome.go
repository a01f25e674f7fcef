package auth

import "errors"

// LoginOutcome is how one login attempt ended, as counted in
// tokenshift_logins_total{outcome}. The values are label strings that
// dashboards and alerts select on: never rename one.
type LoginOutcome string

const (
	LoginSuccess            LoginOutcome = "success"
	LoginInvalidCredentials LoginOutcome = "invalid_credentials"
	LoginRateLimited        LoginOutcome = "rate_limited"
	LoginUnknownClient      LoginOutcome = "unknown_client"
	// LoginCSRFFailed: refused by the login-CSRF check or the client's
	// allowed origins.
	LoginCSRFFailed LoginOutcome = "csrf_failed"
	// LoginSuspended: the right password of a suspended account.
	LoginSuspended LoginOutcome = "suspended"
	// LoginError: ours, a store or user store failure.
	LoginError LoginOutcome = "error"
)

// LoginOutcomes lists every outcome, LoginError last.
var LoginOutcomes = []LoginOutcome{LoginSuccess, LoginInvalidCredentials, LoginRateLimited, LoginUnknownClient, LoginCSRFFailed, LoginSuspended, LoginError}

// loginOutcomeOf is the outcome of each code a login can fail with; any
// other code is LoginError.
var loginOutcomeOf = map[Code]LoginOutcome{
	CodeInvalidCredentials: LoginInvalidCredentials,
	CodeRateLimited:        LoginRateLimited,
	CodeUnknownClient:      LoginUnknownClient,
	CodeCSRF:               LoginCSRFFailed,
	CodeOriginNotAllowed:   LoginCSRFFailed,
	CodeAccountSuspended:   LoginSuspended,
}

// LoginOutcomeOf is the one place a login's outcome is derived: from the
// error the login ended with (nil is LoginSuccess), by its code, unless a
// stage of the login named the outcome with WithLoginOutcome.
func LoginOutcomeOf(err error) LoginOutcome {
	if err == nil {
		return LoginSuccess
	}
	var o *outcomeError
	if errors.As(err, &o) {
		return o.outcome
	}
	if out, ok := loginOutcomeOf[ErrorCode(err)]; ok {
		return out
	}
	return LoginError
}

// WithLoginOutcome marks err as ending a login with outcome, whatever its
// code: the login-CSRF check counts as csrf_failed even when it could not
// read the store. The error's code and message are unchanged.
func WithLoginOutcome(err error, outcome LoginOutcome) error {
	if err == nil {
		return nil
	}
	return &outcomeError{err: err, outcome: outcome}
}

type outcomeError struct {
	err     error
	outcome LoginOutcome
}

func (e *outcomeError) Error() string { return e.err.Error() }
func (e *outcomeError) Unwrap() error { return e.err }
