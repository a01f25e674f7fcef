package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// AccountManager is the account control the user package offers on top of
// password verification (implemented by *user.Verifier).
type AccountManager interface {
	PasswordChangeAllowed() bool
	ChangePassword(ctx context.Context, userID, login, current, next string) error
	Account(ctx context.Context, userID string) (user.AccountState, error)
	Suspend(ctx context.Context, userID, by, reason string) (user.AccountState, error)
	Unsuspend(ctx context.Context, userID string) (user.AccountState, error)
}

// verifyError answers a failed password verification that is not a wrong
// password: the user store or the shared store down or misconfigured, no free
// hashing slot, a suspended account. It settles the rate-limit reservation:
// an attempt that could not be judged is refunded (the client is not to
// blame), a suspended account's right password counts as a success.
func (s *Server) verifyError(c *fiber.Ctx, clientID string, err error, rsv reservation) error {
	settle, how := s.limiter.refund, "refunding"
	if errors.Is(err, user.ErrSuspended) {
		settle, how = s.limiter.succeeded, "settling"
	}
	if serr := settle(c.UserContext(), rsv); serr != nil {
		s.log.Warn(how+" the rate-limit reservation failed", "error", serr)
	}
	switch {
	case errors.Is(err, user.ErrSuspended):
		s.opts.Usage.Login(clientID, "suspended")
		return auth.Wrap(err, auth.CodeAccountSuspended, "this account is suspended; contact support")
	case errors.Is(err, user.ErrBusy):
		s.opts.Usage.Login(clientID, "error")
		c.Set(fiber.HeaderRetryAfter, "1")
		return auth.Wrap(err, auth.CodeLoginBusy, "too many logins are being checked right now; retry in a moment")
	case errors.Is(err, user.ErrOverlay):
		s.opts.Usage.Login(clientID, "error")
		return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
	case errors.Is(err, user.ErrSQLConfig):
		// Not the client's fault and not transient: say so, and make it loud
		// for operators. Never "invalid credentials", which would hide it.
		s.opts.Usage.Login(clientID, "error")
		s.log.Error("user store misconfigured: logins fail until it is fixed", "error", err, "request_id", requestID(c))
		return auth.Wrap(err, auth.CodeUserStoreUnavailable, "login is unavailable: the user store is misconfigured (operators: see the server log)")
	}
	s.opts.Usage.Login(clientID, "error")
	return auth.Wrap(err, auth.CodeUserStoreUnavailable, "login is unavailable: the user store cannot be reached")
}

// changePassword verifies the caller's current password, stores the new one
// (tokenshift's overlay: every instance sees it) and revokes every session and
// token of the user on every instance, this one included: the caller logs in
// again with the new password. Failed attempts count against the login rate
// limit, so a stolen session cannot be used to guess the password.
func (s *Server) changePassword(c *fiber.Ctx) error {
	if s.opts.Accounts == nil || !s.opts.Accounts.PasswordChangeAllowed() {
		return auth.Errorf(auth.CodePasswordChangeDisabled, "passwords are not changed here; use the application's own password page")
	}
	var current, next string
	if _, err := parseForm(c, map[string]*string{"current_password": &current, "new_password": &next}); err != nil {
		return err
	}
	switch {
	case current == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"current_password\" is required")
	case next == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"new_password\" is required")
	case len(current) > user.MaxPasswordBytes || len(next) > user.MaxPasswordBytes:
		return auth.Errorf(auth.CodeInvalidRequest, "passwords are at most %d bytes", user.MaxPasswordBytes)
	}
	// The policy first: a refused new password tests nothing and spends no
	// rate-limit budget.
	if err := user.CheckNewPassword(current, next); err != nil {
		return auth.Wrap(err, auth.CodeInvalidRequest, err.Error())
	}
	p := authn.Principal(c)
	ctx := c.UserContext()
	ip := s.ClientIP(c)
	// Reserved before the current password is checked, as login does
	// (ratelimit.go).
	rsv, lim, err := s.limiter.reserve(ctx, p.Email, ip)
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "password change is unavailable: the rate limiter cannot be reached")
	}
	if lim.limited {
		return s.rateLimited(c, lim)
	}
	err = s.opts.Accounts.ChangePassword(ctx, p.UserID, p.Email, current, next)
	switch {
	case err == nil:
		if err := s.limiter.succeeded(ctx, rsv); err != nil {
			s.log.Warn("password change: settling the rate-limit reservation failed", "error", err)
		}
	case errors.Is(err, user.ErrInvalidCredentials):
		return auth.Errorf(auth.CodeInvalidCredentials, "the current password is wrong")
	case errors.Is(err, user.ErrPasswordPolicy):
		_ = s.limiter.refund(ctx, rsv)
		return auth.Wrap(err, auth.CodeInvalidRequest, err.Error())
	case errors.Is(err, user.ErrPasswordChangeDisabled):
		_ = s.limiter.refund(ctx, rsv)
		return auth.Wrap(err, auth.CodePasswordChangeDisabled, "passwords are not changed here; use the application's own password page")
	default:
		return s.verifyError(c, p.ClientID, err, rsv)
	}
	if err := s.revokeUser(ctx, p.UserID, "password-change"); err != nil {
		s.log.Error("password changed but the user's logins could not all be revoked", "user_id", p.UserID, "error", err)
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the password was changed, but other logins could not all be ended; log out everywhere once the service is back")
	}
	s.opts.Cookies.clear(c)
	s.log.Info("password changed; every login of the user revoked", "user_id", p.UserID, "client_id", p.ClientID, "scheme", p.Scheme.String(), "ip", ip)
	return c.SendStatus(fiber.StatusNoContent)
}

// refreshAllowed checks the account behind a token family at each refresh: a
// suspended account, or one whose password was changed through tokenshift
// after the family's login was authenticated, gets no new pair, and the
// login ends. The per-user revocation that the suspension or the change took
// normally ends such a family already; this check does not depend on it
// (a revocation that failed half-way, revocation state lost with an emptied
// store, an instance that has not heard of it yet), since the account state
// is written before anything is revoked.
func (s *Server) refreshAllowed(ctx context.Context, sub token.Subject) error {
	if s.opts.Accounts == nil {
		return nil
	}
	a, err := s.opts.Accounts.Account(ctx, sub.UserID)
	switch {
	case errors.Is(err, user.ErrNoOverlay):
		return nil
	case err != nil:
		return auth.Wrap(err, auth.CodeStoreUnavailable, "refresh is unavailable: the store cannot be reached")
	}
	why := ""
	switch {
	case a.Suspended:
		why = "account suspended"
	case !a.PasswordChangedAt.IsZero():
		l, err := s.opts.Sessions.Get(ctx, sub.SID)
		if err != nil {
			if isNotFound(err) {
				return nil // the caller ends a family whose login is gone
			}
			return s.storeError(err)
		}
		// CreatedAt is the instant the login's account state was read.
		if l.CreatedAt.Before(a.PasswordChangedAt) {
			why = "password changed since the login"
		}
	}
	if why == "" {
		return nil
	}
	if err := s.revokeLogin(ctx, sub.SID); err != nil {
		return s.storeError(err)
	}
	s.log.Warn("refresh refused and login ended: "+why, "user_id", sub.UserID, "client_id", sub.ClientID, "sid", sub.SID)
	if a.Suspended {
		return auth.Errorf(auth.CodeAccountSuspended, "this account is suspended; contact support")
	}
	return auth.Errorf(auth.CodeInvalidToken, "the password was changed since this login; log in again")
}

// AccountOf implements the admin API's AccountControl.
func (s *Server) AccountOf(ctx context.Context, userID string) (auth.AccountInfo, error) {
	if s.opts.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.opts.Accounts.Account(ctx, userID)
	return accountInfo(userID, a), err
}

// SuspendUser implements the admin API's AccountControl: the flag first, so no new
// login can start, then every live credential of the user on every instance.
func (s *Server) SuspendUser(ctx context.Context, userID, by, reason string) (auth.AccountInfo, error) {
	if s.opts.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.opts.Accounts.Suspend(ctx, userID, by, reason)
	if err != nil {
		return auth.AccountInfo{}, err
	}
	if err := s.revokeUser(ctx, userID, "suspended by "+by); err != nil {
		return accountInfo(userID, a), err
	}
	return accountInfo(userID, a), nil
}

// UnsuspendUser implements the admin API's AccountControl. Nothing is restored: the
// user logs in again.
func (s *Server) UnsuspendUser(ctx context.Context, userID string) (auth.AccountInfo, error) {
	if s.opts.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.opts.Accounts.Unsuspend(ctx, userID)
	return accountInfo(userID, a), err
}

func accountInfo(userID string, a user.AccountState) auth.AccountInfo {
	info := auth.AccountInfo{UserID: userID, Suspended: a.Suspended, SuspendedBy: a.SuspendedBy, Reason: a.SuspendReason}
	if !a.SuspendedAt.IsZero() {
		info.SuspendedAt = timePtr(a.SuspendedAt)
	}
	if !a.PasswordChangedAt.IsZero() {
		info.PasswordChangedAt = timePtr(a.PasswordChangedAt)
	}
	return info
}

func timePtr(t time.Time) *time.Time { return &t }
