package logins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/token"
)

// RevokeLogin ends one login: every token of its sid and its session, on
// every instance.
func (s *Service) RevokeLogin(ctx context.Context, sid string) error {
	if err := s.o.Tokens.RevokeFamily(ctx, sid); err != nil {
		return codeError(err)
	}
	if err := s.o.Sessions.Delete(ctx, sid); err != nil {
		return codeError(err)
	}
	return codeError(s.durable(ctx))
}

// RevokeAllOf ends every login of a user (log out everywhere, an operator's
// revocation, a password change, a suspension): a per-user "not valid
// before" now, which every instance applies to sessions, tokens and legacy
// sessions saved before it (CheckLegacy), then the legacy sessions of the
// seen index (deleted from their stores, or revoked by handle), then the
// records and families it knows of. A legacy store that fails does not
// stop the rest; the error reports it, and its entries stay for a retry.
// why is logged.
func (s *Service) RevokeAllOf(ctx context.Context, userID, why string) error {
	now := s.o.Clock()
	if s.o.Revoked != nil {
		if err := s.o.Revoked.RevokeUser(ctx, userID, now, now.Add(s.o.MaxCredentialLife)); err != nil {
			return codeError(err)
		}
	}
	// Before the logins are deleted: see exchangeLegacy.
	ended, legacyErr := s.endSeenLegacy(ctx, userID)
	sids, err := s.o.Sessions.DeleteByUser(ctx, userID)
	if err != nil {
		return codeError(err)
	}
	for _, sid := range sids {
		if err := s.o.Tokens.RevokeFamily(ctx, sid); err != nil {
			return codeError(err)
		}
	}
	if legacyErr != nil {
		s.log.Warn("revoking a user: some legacy sessions could not be ended", "user_id", userID, "why", why, "error", legacyErr)
		return codeError(legacyErr)
	}
	if err := s.durable(ctx); err != nil {
		return codeError(err)
	}
	s.log.Info("revoked every login of a user", "user_id", userID, "logins", len(sids), "legacy_sessions", ended, "why", why)
	return nil
}

// revokedSince reports whether userID's credentials dated at are dead by a
// per-user revocation (log out everywhere, password change, suspension), as
// far as this instance knows yet.
func (s *Service) revokedSince(userID string, at time.Time) bool {
	if s.o.Revoked == nil {
		return false
	}
	nb := s.o.Revoked.UserNotBefore(userID)
	return !nb.IsZero() && at.Before(nb)
}

// ListLogins lists a user's live logins (the admin API's SessionControl and
// GET /auth/sessions).
func (s *Service) ListLogins(ctx context.Context, userID string) ([]auth.LoginInfo, error) {
	list, err := s.o.Sessions.ListByUser(ctx, userID)
	if err != nil {
		return nil, codeError(err)
	}
	out := make([]auth.LoginInfo, 0, len(list))
	for _, l := range list {
		if s.o.Revoked != nil && s.o.Revoked.SIDRevoked(l.SID) {
			continue
		}
		if s.revokedSince(userID, l.CreatedAt) {
			// Dated before a revocation of the user, whose DeleteByUser it
			// escaped by being written later: dead, not to be listed.
			continue
		}
		info := auth.LoginInfo{
			SID: l.SID, ClientID: l.ClientID, CreatedAt: l.CreatedAt, LastSeenAt: l.LastSeenAt,
			Session: l.HasCookie, Tokens: l.HasTokens, IP: l.IP, UserAgent: l.UserAgent,
		}
		if l.HasCookie {
			info.ExpiresAt = minTime(l.IdleExpiresAt, l.AbsoluteExpiresAt)
		}
		out = append(out, info)
	}
	return out, nil
}

// RevokeLoginOf ends one login of userID; an error wrapping auth.ErrNotFound
// if that sid is not a live login of that user.
func (s *Service) RevokeLoginOf(ctx context.Context, userID, sid string) error {
	l, err := s.o.Sessions.Get(ctx, sid)
	if err != nil {
		return codeError(err)
	}
	if l.UserID != userID {
		// Do not reveal that the sid exists for someone else.
		return fmt.Errorf("login of another user: %w", auth.ErrNotFound)
	}
	return s.RevokeLogin(ctx, sid)
}

// Logout ends the login sid of userID, or with all every login of the user.
func (s *Service) Logout(ctx context.Context, userID, sid string, all bool) error {
	var err error
	if all {
		err = s.RevokeAllOf(ctx, userID, "logout-all")
	} else {
		err = s.RevokeLogin(ctx, sid)
	}
	if err != nil {
		return err
	}
	s.log.Info("logout", "user_id", userID, "sid", sid, "all", all)
	return nil
}

// TokenRevoked says what RevokeToken ended.
type TokenRevoked struct {
	// Login: a refresh token's whole login ended.
	Login bool
}

// RevokeToken is RFC 7009 revocation: an access token loses its jti (other
// tokens of the login keep working); a refresh token ends its whole login,
// as RFC 7009 §2.1 asks for tokens of the same grant. Unknown, invalid or
// already dead tokens are no error (§2.2). check, if set, runs with the
// token's sid before anything is revoked (httpapi's CSRF check of a token
// taken from a cookie).
func (s *Service) RevokeToken(ctx context.Context, raw string, check func(sid string) error) (TokenRevoked, error) {
	if len(raw) > s.o.Tokens.Options().MaxTokenBytes {
		return TokenRevoked{}, nil // not one of ours: nothing to revoke
	}
	if token.LooksLikeRefresh(raw) {
		return s.revokeRefresh(ctx, raw, check)
	}
	if check != nil {
		cl, err := s.o.Tokens.VerifyAccess(raw)
		if err != nil {
			return TokenRevoked{}, nil
		}
		if err := check(cl.SID); err != nil {
			return TokenRevoked{}, err
		}
	}
	cl, err := s.o.Tokens.RevokeAccess(ctx, raw)
	if err != nil {
		if cl == nil && token.IsNotRevocable(err) {
			return TokenRevoked{}, nil
		}
		return TokenRevoked{}, codeError(err)
	}
	if err := s.durable(ctx); err != nil {
		return TokenRevoked{}, codeError(err)
	}
	s.log.Info("access token revoked", "user_id", cl.Subject, "client_id", cl.ClientID, "sid", cl.SID, "jti", cl.ID)
	return TokenRevoked{}, nil
}

func (s *Service) revokeRefresh(ctx context.Context, raw string, check func(sid string) error) (TokenRevoked, error) {
	sub, err := s.o.Tokens.LookupRefresh(ctx, raw)
	if err != nil {
		if token.IsNotRevocable(err) {
			return TokenRevoked{}, nil
		}
		return TokenRevoked{}, refreshError(err)
	}
	if check != nil {
		if err := check(sub.SID); err != nil {
			return TokenRevoked{}, err
		}
	}
	if err := s.RevokeLogin(ctx, sub.SID); err != nil {
		return TokenRevoked{}, err
	}
	s.log.Info("refresh token revoked: login ended", "user_id", sub.UserID, "client_id", sub.ClientID, "sid", sub.SID)
	return TokenRevoked{Login: true}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// isNotFound reports a login or record that does not exist (any more).
func isNotFound(err error) bool { return errors.Is(err, auth.ErrNotFound) }
