package logins

import (
	"context"
	"errors"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/token"
)

// exchangeLegacy makes, for the holder of a legacy session, a new login in
// tokenshift's registry for the same user and client: a token pair, plus a
// session cookie where the phase issues sessions. The login is listable and
// revocable like a password login and passes the durability barrier; with
// on_exchange end the legacy session is then deleted from its store.
//
// The login is dated when the exchange starts, and the legacy session is
// read again once the login exists: a revocation of the user that landed
// after authn accepted the legacy cookie either dates after the login (its
// not-before ends it), or ended the legacy session before that read (the
// exchange is refused), or deletes the user's logins after the login was
// written (RevokeAllOf ends the seen legacy sessions before it deletes the
// logins), so none outlives it.
func (s *Service) exchangeLegacy(ctx context.Context, r ExchangeRequest, dec featureflags.Decision, client auth.Client) (Exchanged, error) {
	p := r.Principal
	src, err := s.legacyOf(p)
	if err != nil {
		return Exchanged{}, auth.Wrap(err, auth.CodeInvalidSession, "the legacy session cannot be exchanged; log in again")
	}
	authAt := s.o.Clock()
	sess, cookie, err := s.o.Sessions.Create(ctx, session.NewSession{
		UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: p.Roles,
		IP: r.IP, UserAgent: r.UserAgent,
		Cookie: dec.IssueSession, Tokens: true, AuthAt: authAt,
	})
	if err != nil {
		return Exchanged{}, codeError(err)
	}
	for _, old := range sess.Evicted {
		if err := s.o.Tokens.RevokeFamily(ctx, old); err != nil {
			return Exchanged{}, s.abandon(ctx, sess.SID, codeError(err))
		}
	}
	pair, err := s.issue(ctx, token.Subject{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, SID: sess.SID, Roles: p.Roles, AuthTime: authAt, LoginCreated: sess.CreatedAt})
	if err != nil {
		return Exchanged{}, s.abandon(ctx, sess.SID, err)
	}
	if err := s.legacyStillLive(ctx, src, p); err != nil {
		return Exchanged{}, s.abandon(ctx, sess.SID, err)
	}
	if s.revokedSince(p.UserID, authAt) {
		return Exchanged{}, s.abandon(ctx, sess.SID, codeError(ErrOvertaken))
	}
	x := Exchanged{Pair: pair, Phase: dec.Phase, AcceptSession: dec.AcceptSession, Client: client, SID: sess.SID}
	if dec.IssueSession {
		x.Cookie, x.CookieExpiresAt = cookie, sess.AbsoluteExpiresAt
		s.o.Usage.Issued("session")
	}
	handle := LegacyHandle(p.Source, p.LegacyID)
	if s.o.LegacyOnExchange[p.Source] == OnExchangeEnd {
		// After the login exists, so a failure leaves the user logged in
		// one way or the other, never neither; a legacy session that
		// could not be ended fails the exchange (on_exchange end promises
		// it is gone), and the new login goes with it.
		if err := s.endLegacy(ctx, src, p.LegacyID, handle); err != nil {
			return Exchanged{}, s.abandon(ctx, sess.SID, codeError(err))
		}
		if err := s.o.Store.HDel(ctx, seenKey(p.UserID), handle); err != nil {
			s.log.Warn("exchange: dropping the ended legacy session from the seen index failed", "source", p.Source, "sid", handle, "error", err)
		}
		x.LegacyEnded = true
	}
	if err := s.durable(ctx); err != nil {
		return Exchanged{}, codeError(err)
	}
	s.log.Info("legacy session exchanged for a login", "user_id", p.UserID, "client_id", p.ClientID, "source", p.Source, "legacy_sid", handle, "sid", sess.SID, "session", x.Cookie != "", "legacy_ended", x.LegacyEnded)
	return x, nil
}

// legacyStillLive reads the legacy session again: still in its store, of
// the same user, and not revoked (its handle, and its user since its last
// save: checkLegacy).
func (s *Service) legacyStillLive(ctx context.Context, src legacy.Source, p *auth.Principal) error {
	ls, err := src.Load(ctx, p.LegacyID)
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return codeError(err)
	case err != nil:
		return auth.Wrap(err, auth.CodeInvalidSession, "the legacy session has ended; log in again")
	case ls.UserID != p.UserID:
		return auth.Errorf(auth.CodeInvalidSession, "the legacy session has ended; log in again")
	}
	if err := s.checkLegacy(ls, p.UserID); err != nil {
		return auth.Wrap(err, auth.CodeInvalidSession, "the legacy session has ended; log in again")
	}
	return nil
}

// abandon ends a login that an exchange made but will not hand out, and
// returns why.
func (s *Service) abandon(ctx context.Context, sid string, why error) error {
	if err := s.RevokeLogin(ctx, sid); err != nil {
		s.log.Warn("ending the login of a failed legacy exchange failed", "sid", sid, "error", err)
	}
	return why
}
