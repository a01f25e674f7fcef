package logins

import (
	"context"
	"errors"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/user"
)

// PasswordChange is a user's request to change their own password.
type PasswordChange struct {
	UserID, Email, ClientID string
	// Scheme is the credential the request came with, for the log.
	Scheme        string
	IP            string
	Current, Next string
}

// ChangePassword verifies the caller's current password, stores the new one
// (tokenshift's overlay: every instance sees it) and revokes every session
// and token of the user on every instance, the caller's included: the
// caller logs in again with the new password. Failed attempts count against
// the login rate limit, so a stolen session cannot be used to guess the
// password.
func (s *Service) ChangePassword(ctx context.Context, r PasswordChange) error {
	if !s.PasswordChangeAllowed() {
		return errPasswordChangeDisabled(user.ErrPasswordChangeDisabled)
	}
	if len(r.Current) > user.MaxPasswordBytes || len(r.Next) > user.MaxPasswordBytes {
		return auth.Errorf(auth.CodeInvalidRequest, "passwords are at most %d bytes", user.MaxPasswordBytes)
	}
	// The policy first: a refused new password tests nothing and spends no
	// rate-limit budget.
	if err := user.CheckNewPassword(r.Current, r.Next); err != nil {
		return auth.Wrap(err, auth.CodeInvalidRequest, err.Error())
	}
	// Reserved before the current password is checked, as login does
	// (ratelimit.go).
	rsv, lim, err := s.limiter.reserve(ctx, r.Email, r.IP)
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "password change is unavailable: the rate limiter cannot be reached")
	}
	if lim.limited {
		return lim.err()
	}
	err = s.o.Accounts.ChangePassword(ctx, r.UserID, r.Email, r.Current, r.Next)
	switch {
	case err == nil:
		if err := s.limiter.succeeded(ctx, rsv); err != nil {
			s.log.Warn("password change: settling the rate-limit reservation failed", "error", err)
		}
	case errors.Is(err, user.ErrInvalidCredentials):
		return auth.Wrap(err, auth.CodeInvalidCredentials, "the current password is wrong")
	case errors.Is(err, user.ErrPasswordPolicy):
		_ = s.limiter.refund(ctx, rsv)
		return auth.Wrap(err, auth.CodeInvalidRequest, err.Error())
	case errors.Is(err, user.ErrPasswordChangeDisabled):
		_ = s.limiter.refund(ctx, rsv)
		return errPasswordChangeDisabled(err)
	default:
		return s.verifyFailed(ctx, err, rsv)
	}
	if err := s.RevokeAllOf(ctx, r.UserID, "password-change"); err != nil {
		s.log.Error("password changed but the user's logins could not all be revoked", "user_id", r.UserID, "error", err)
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the password was changed, but other logins could not all be ended; log out everywhere once the service is back")
	}
	s.log.Info("password changed; every login of the user revoked", "user_id", r.UserID, "client_id", r.ClientID, "scheme", r.Scheme, "ip", r.IP)
	return nil
}

func errPasswordChangeDisabled(err error) error {
	return auth.Wrap(err, auth.CodePasswordChangeDisabled, "passwords are not changed here; use the application's own password page")
}

// AccountOf is tokenshift's own state of a user (the admin API's
// AccountControl).
func (s *Service) AccountOf(ctx context.Context, userID string) (auth.AccountInfo, error) {
	if s.o.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.o.Accounts.Account(ctx, userID)
	return accountInfo(userID, a), codeError(err)
}

// SuspendUser sets the flag first, so no new login can start, then revokes
// every live credential of the user on every instance. An error with a
// suspended account in the answer means the revocation failed.
func (s *Service) SuspendUser(ctx context.Context, userID, by, reason string) (auth.AccountInfo, error) {
	if s.o.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.o.Accounts.Suspend(ctx, userID, by, reason)
	if err != nil {
		return auth.AccountInfo{}, codeError(err)
	}
	if err := s.RevokeAllOf(ctx, userID, "suspended by "+by); err != nil {
		return accountInfo(userID, a), err
	}
	return accountInfo(userID, a), nil
}

// UnsuspendUser lifts a suspension. Nothing is restored: the user logs in
// again.
func (s *Service) UnsuspendUser(ctx context.Context, userID string) (auth.AccountInfo, error) {
	if s.o.Accounts == nil {
		return auth.AccountInfo{}, user.ErrNoOverlay
	}
	a, err := s.o.Accounts.Unsuspend(ctx, userID)
	return accountInfo(userID, a), codeError(err)
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
