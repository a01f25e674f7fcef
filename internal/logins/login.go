package logins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// Pair is an access and refresh token with their expiries.
type Pair = token.Pair

// LoginRequest is one password login. The caller has resolved the client
// (Service.Client) and run its own checks (login CSRF, the client's origins).
type LoginRequest struct {
	Client          auth.Client
	Email, Password string
	IP, UserAgent   string
	// Replace is the session cookie the browser still holds, if any: that
	// login ends (session fixation defence).
	Replace string
	// PasswordChecked, if set, runs once the password was found right,
	// before any login is written; its error ends the login (httpapi spends
	// the login form's single-use pre-session there).
	PasswordChecked func(ctx context.Context) error
}

// Login is a login made: a session cookie and/or a token pair, per phase,
// under one sid.
type Login struct {
	UserID, Email, ClientID string
	Roles                   []string
	Phase                   featureflags.Phase
	SID                     string
	// Cookie is the session cookie's value; "" when the phase sets none.
	Cookie          string
	CookieExpiresAt time.Time
	// Tokens is nil when the phase issues none.
	Tokens *Pair
}

// Login checks a password and makes a login: rate-limit reservation →
// password check → phase decision → session (fresh sid, the replaced one
// ended, evictions beyond session.max_per_user) → token pair bound to the
// sid → the durability barrier. Every error is an *auth.Error;
// auth.LoginOutcomeOf names its usage outcome.
func (s *Service) Login(ctx context.Context, r LoginRequest) (Login, error) {
	u, authAt, err := s.checkPassword(ctx, r)
	if err != nil {
		return Login{}, err
	}
	if r.PasswordChecked != nil {
		if err := r.PasswordChecked(ctx); err != nil {
			return Login{}, err
		}
	}
	l, err := s.makeLogin(ctx, r, u, authAt)
	if err != nil {
		return Login{}, codeError(err)
	}
	if err := s.durable(ctx); err != nil {
		return Login{}, codeError(err)
	}
	s.log.Info("login", "user_id", u.ID, "client_id", l.ClientID, "sid", l.SID, "session", l.Cookie != "", "tokens", l.Tokens != nil, "phase", l.Phase.String(), "ip", r.IP)
	return l, nil
}

// checkPassword spends a rate-limit unit and checks the password. The login
// is dated by authAt, the instant before the account state is read
// (user.Verifier.Verify), not by when it is written: a password change or
// suspension that lands while the password is being checked revokes the
// user after this instant, so its not-before ends this login wherever it is
// checked.
func (s *Service) checkPassword(ctx context.Context, r LoginRequest) (*user.User, time.Time, error) {
	// The attempt is reserved before the password is checked (ratelimit.go).
	rsv, lim, err := s.limiter.reserve(ctx, r.Email, r.IP)
	if err != nil {
		return nil, time.Time{}, auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the rate limiter cannot be reached")
	}
	if lim.limited {
		return nil, time.Time{}, lim.err()
	}
	authAt := s.o.Clock()
	u, err := s.o.Users.Verify(ctx, r.Email, r.Password)
	if err != nil {
		if errors.Is(err, user.ErrInvalidCredentials) {
			return nil, time.Time{}, codeError(err)
		}
		return nil, time.Time{}, s.verifyFailed(ctx, err, rsv)
	}
	// Refunded at once, before anything else is done for this login, so the
	// units of correct passwords are back before their answers leave and a
	// user's burst of logins (tabs, retries, a script) is limited only while
	// its attempts overlap.
	if err := s.limiter.succeeded(ctx, rsv); err != nil {
		return nil, time.Time{}, auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
	}
	return u, authAt, nil
}

// verifyFailed answers a failed password verification that is not a wrong
// password: the user store or the shared store down or misconfigured, no
// free hashing slot, a suspended account. It settles the rate-limit
// reservation: an attempt that could not be judged is refunded (the client
// is not to blame), a suspended account's right password counts as a
// success.
func (s *Service) verifyFailed(ctx context.Context, err error, rsv reservation) error {
	settle, how := s.limiter.refund, "refunding"
	if errors.Is(err, user.ErrSuspended) {
		settle, how = s.limiter.succeeded, "settling"
	}
	if serr := settle(ctx, rsv); serr != nil {
		s.log.Warn(how+" the rate-limit reservation failed", "error", serr)
	}
	if errors.Is(err, user.ErrSQLConfig) {
		s.log.Error("user store misconfigured: logins fail until it is fixed", "error", err)
	}
	return userStoreError(fmt.Errorf("%w: %w", ErrPasswordUnchecked, err))
}

// makeLogin writes the login the phase allows: the session record (with its
// cookie or not) and the token pair.
func (s *Service) makeLogin(ctx context.Context, r LoginRequest, u *user.User, authAt time.Time) (Login, error) {
	dec := s.Decide(r.Client.ID, u.ID)
	sess, cookie, err := s.o.Sessions.Create(ctx, session.NewSession{
		UserID: u.ID, Email: u.Email, ClientID: r.Client.ID, Roles: u.Roles,
		IP: r.IP, UserAgent: r.UserAgent,
		Cookie: dec.IssueSession, Tokens: dec.IssueTokens,
		AuthAt: authAt, Replace: r.Replace,
	})
	if err != nil {
		return Login{}, err
	}
	// Logins ended by this one (the replaced cookie's, or the oldest beyond
	// session.max_per_user) must lose their tokens too.
	for _, old := range sess.Evicted {
		if err := s.o.Tokens.RevokeFamily(ctx, old); err != nil {
			return Login{}, err
		}
	}
	l := Login{UserID: u.ID, Email: u.Email, ClientID: r.Client.ID, Roles: u.Roles, Phase: dec.Phase, SID: sess.SID}
	if dec.IssueSession {
		l.Cookie, l.CookieExpiresAt = cookie, sess.AbsoluteExpiresAt
		s.o.Usage.Issued("session")
	}
	if dec.IssueTokens {
		pair, err := s.issue(ctx, token.Subject{UserID: u.ID, Email: u.Email, ClientID: r.Client.ID, SID: sess.SID, Roles: u.Roles, AuthTime: authAt, LoginCreated: sess.CreatedAt})
		if err != nil {
			return Login{}, err
		}
		l.Tokens = &pair
	}
	// Revoked while it was being made: its credentials are dead already (they
	// are dated authAt), so answer that instead of handing them out, and end
	// the record that the revocation's DeleteByUser could not see yet.
	if s.revokedSince(u.ID, authAt) {
		if err := s.RevokeLogin(ctx, sess.SID); err != nil {
			s.log.Warn("ending a login overtaken by a revocation failed", "sid", sess.SID, "error", err)
		}
		return Login{}, ErrOvertaken
	}
	return l, nil
}

// issue mints a pair for sub and counts it.
func (s *Service) issue(ctx context.Context, sub token.Subject) (Pair, error) {
	pair, err := s.o.Tokens.Issue(ctx, sub)
	if err != nil {
		return Pair{}, refreshError(err)
	}
	s.o.Usage.Issued("access")
	s.o.Usage.Issued("refresh")
	return pair, nil
}
