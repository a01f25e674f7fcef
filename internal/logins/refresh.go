package logins

import (
	"context"
	"errors"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
)

// Owner is the login a refresh token belongs to.
type Owner struct {
	UserID, ClientID, SID string
}

// RefreshOwner is the login of a live refresh token, without rotating it.
func (s *Service) RefreshOwner(ctx context.Context, raw string) (Owner, error) {
	sub, err := s.o.Tokens.LookupRefresh(ctx, raw)
	if err != nil {
		return Owner{}, refreshError(err)
	}
	return Owner{UserID: sub.UserID, ClientID: sub.ClientID, SID: sub.SID}, nil
}

// Refreshed is the new pair of a refresh.
type Refreshed struct {
	Pair
	Owner
	Client auth.Client
}

// Refresh rotates a refresh token. check, if set, runs for the token's
// client before anything changes (httpapi's origin rules), and may refuse.
// A token presented again after its rotation (reuse) ends its whole login.
func (s *Service) Refresh(ctx context.Context, raw string, check func(auth.Client) error) (Refreshed, error) {
	if sub, err := s.o.Tokens.LookupRefresh(ctx, raw); err == nil {
		// Before the token is rotated: a refused request changes nothing.
		// A token that does not look up is still given to Refresh, which
		// tells reuse (and ends the family) from the other failures.
		if err := s.beforeRefresh(ctx, sub, check); err != nil {
			return Refreshed{}, err
		}
	}
	pair, sub, err := s.o.Tokens.Refresh(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrRefreshReused) {
			// RFC 9700 4.14.2: a replayed refresh token means the family may be
			// stolen; the token package killed the tokens, end the session too.
			s.log.Warn("refresh token reuse: login revoked", "sid", sub.SID, "user_id", sub.UserID)
			if sub.SID != "" {
				_ = s.o.Sessions.Delete(ctx, sub.SID)
			}
		}
		return Refreshed{}, refreshError(err)
	}
	if err := s.durable(ctx); err != nil {
		return Refreshed{}, codeError(err)
	}
	s.o.Usage.Issued("access")
	s.o.Usage.Issued("refresh")
	return Refreshed{Pair: pair, Owner: Owner{UserID: sub.UserID, ClientID: sub.ClientID, SID: sub.SID}, Client: s.clients[sub.ClientID]}, nil
}

// beforeRefresh runs the checks of a refresh that must pass before the
// token is rotated: the caller's, the phase, the account, and the login
// record.
func (s *Service) beforeRefresh(ctx context.Context, sub token.Subject, check func(auth.Client) error) error {
	if check != nil {
		if err := check(s.clients[sub.ClientID]); err != nil {
			return err
		}
	}
	if dec := s.Decide(sub.ClientID, sub.UserID); !dec.IssueTokens {
		return auth.Errorf(auth.CodeNotAllowedInPhase, "tokens are not issued to this client in phase %s", dec.Phase)
	}
	if err := s.refreshAllowed(ctx, sub); err != nil {
		return err
	}
	// The login record is what lists, revokes and counts a token family
	// (GET /auth/sessions, the operator's revocation, max_per_user). A
	// family whose record is gone can no longer be controlled, so it ends
	// here instead of living on unseen. Checked (and the family's life
	// extended) before rotating, so no pair is minted for it.
	if err := s.o.Sessions.TouchFamily(ctx, sub.SID); err != nil {
		if !errors.Is(err, auth.ErrNotFound) {
			return codeError(err)
		}
		if err := s.o.Tokens.RevokeFamily(ctx, sub.SID); err != nil {
			return codeError(err)
		}
		s.log.Warn("refresh of a token family whose login is gone: family revoked", "sid", sub.SID, "user_id", sub.UserID)
		return auth.Errorf(auth.CodeInvalidToken, "the login of this refresh token has ended; log in again")
	}
	return nil
}

// refreshAllowed checks the account behind a token family at each refresh: a
// suspended account, or one whose password was changed through tokenshift
// after the family's login was authenticated, gets no new pair, and the
// login ends. The per-user revocation that the suspension or the change took
// normally ends such a family already; this check does not depend on it
// (a revocation that failed half-way, revocation state lost with an emptied
// store, an instance that has not heard of it yet), since the account state
// is written before anything is revoked.
func (s *Service) refreshAllowed(ctx context.Context, sub token.Subject) error {
	if s.o.Accounts == nil {
		return nil
	}
	a, err := s.o.Accounts.Account(ctx, sub.UserID)
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
		l, err := s.o.Sessions.Get(ctx, sub.SID)
		if err != nil {
			if errors.Is(err, auth.ErrNotFound) {
				return nil // the caller ends a family whose login is gone
			}
			return codeError(err)
		}
		// CreatedAt is the instant the login's account state was read.
		if l.CreatedAt.Before(a.PasswordChangedAt) {
			why = "password changed since the login"
		}
	}
	if why == "" {
		return nil
	}
	if err := s.RevokeLogin(ctx, sub.SID); err != nil {
		return err
	}
	s.log.Warn("refresh refused and login ended: "+why, "user_id", sub.UserID, "client_id", sub.ClientID, "sid", sub.SID)
	if a.Suspended {
		return auth.Errorf(auth.CodeAccountSuspended, "this account is suspended; contact support")
	}
	return auth.Errorf(auth.CodeInvalidToken, "the password was changed since this login; log in again")
}

// Exchanged is the token pair a session holder got for its login.
type Exchanged struct {
	Pair
	Phase featureflags.Phase
	// AcceptSession: the phase still accepts the session cookie.
	AcceptSession bool
	Client        auth.Client
	// SID is the login the pair belongs to: the session's own for a
	// tokenshift session, a new login's for a legacy one.
	SID string
	// Cookie is the new login's session cookie when a legacy session was
	// exchanged in a phase that issues sessions; "" otherwise.
	Cookie          string
	CookieExpiresAt time.Time
	// LegacyEnded: the legacy session was deleted from its store
	// (legacy.sources[].on_exchange: end).
	LegacyEnded bool
}

// ExchangeRequest is one exchange of the session that proved Principal.
type ExchangeRequest struct {
	Principal *auth.Principal
	// IP and UserAgent describe the new login a legacy session's exchange
	// makes, for listings.
	IP, UserAgent string
	// Check, if set, runs for the client before anything changes (httpapi's
	// origin rules).
	Check func(auth.Client) error
}

// Exchange gives the holder of a session a token pair, so a client moves to
// tokens without asking for the password again: for tokenshift's own
// session, bound to the same sid; for a legacy session (Principal.Source
// set), as a new login of the same user and client (exchangeLegacy).
func (s *Service) Exchange(ctx context.Context, r ExchangeRequest) (Exchanged, error) {
	p := r.Principal
	if p == nil || p.Scheme != auth.SchemeSession {
		scheme := auth.SchemeNone
		if p != nil {
			scheme = p.Scheme
		}
		return Exchanged{}, auth.Errorf(auth.CodeInvalidRequest, "exchange needs a session cookie; this request was authenticated by %s", scheme)
	}
	dec := s.Decide(p.ClientID, p.UserID)
	if !dec.AllowExchange {
		return Exchanged{}, auth.Errorf(auth.CodeNotAllowedInPhase, "session exchange is not offered in phase %s", dec.Phase)
	}
	client := s.clients[p.ClientID]
	if r.Check != nil {
		if err := r.Check(client); err != nil {
			return Exchanged{}, err
		}
	}
	if p.Source != "" {
		return s.exchangeLegacy(ctx, r, dec, client)
	}
	// The login gets its token family before any token exists: the record is
	// what lists and revokes the tokens by sid and counts them against
	// max_per_user, and it must now outlive the cookie's idle timeout for as
	// long as the refresh chain lives.
	if err := s.o.Sessions.TouchFamily(ctx, p.SID); err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return Exchanged{}, auth.Wrap(err, auth.CodeInvalidSession, "the session has ended; log in again")
		}
		return Exchanged{}, codeError(err)
	}
	pair, err := s.issue(ctx, token.Subject{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, SID: p.SID, Roles: p.Roles})
	if err != nil {
		return Exchanged{}, err
	}
	if err := s.durable(ctx); err != nil {
		return Exchanged{}, codeError(err)
	}
	s.log.Info("session exchanged for tokens", "user_id", p.UserID, "client_id", p.ClientID, "sid", p.SID)
	return Exchanged{Pair: pair, Phase: dec.Phase, AcceptSession: dec.AcceptSession, Client: client, SID: p.SID}, nil
}
