package httpapi

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// ListLogins implements the admin API's SessionControl.
func (s *Server) ListLogins(ctx context.Context, userID string) ([]auth.LoginInfo, error) {
	list, err := s.opts.Sessions.ListByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]auth.LoginInfo, 0, len(list))
	for _, l := range list {
		if s.opts.Revoked != nil && s.opts.Revoked.SIDRevoked(l.SID) {
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

// RevokeLoginOf implements the admin API's SessionControl.
func (s *Server) RevokeLoginOf(ctx context.Context, userID, sid string) error {
	l, err := s.opts.Sessions.Get(ctx, sid)
	if err != nil {
		return err
	}
	if l.UserID != userID {
		// Do not reveal that the sid exists for someone else.
		return fmt.Errorf("login of another user: %w", auth.ErrNotFound)
	}
	return s.revokeLogin(ctx, sid)
}

// RevokeAllOf implements the admin API's SessionControl.
func (s *Server) RevokeAllOf(ctx context.Context, userID, why string) error {
	return s.revokeUser(ctx, userID, why)
}

func (s *Server) revokeLogin(ctx context.Context, sid string) error {
	if err := s.opts.Tokens.RevokeFamily(ctx, sid); err != nil {
		return err
	}
	if err := s.opts.Sessions.Delete(ctx, sid); err != nil {
		return err
	}
	return s.durable(ctx)
}

func (s *Server) revokeUser(ctx context.Context, userID, why string) error {
	now := s.opts.Clock()
	if s.opts.Revoked != nil {
		if err := s.opts.Revoked.RevokeUser(ctx, userID, now, now.Add(s.maxCredentialLife())); err != nil {
			return err
		}
	}
	sids, err := s.opts.Sessions.DeleteByUser(ctx, userID)
	if err != nil {
		return err
	}
	for _, sid := range sids {
		if err := s.opts.Tokens.RevokeFamily(ctx, sid); err != nil {
			return err
		}
	}
	if err := s.durable(ctx); err != nil {
		return err
	}
	s.log.Info("revoked every login of a user", "user_id", userID, "logins", len(sids), "why", why)
	return nil
}

// revokedSince reports whether userID's credentials dated at are dead by a
// per-user revocation (log out everywhere, password change, suspension), as
// far as this instance knows yet.
func (s *Server) revokedSince(userID string, at time.Time) bool {
	if s.opts.Revoked == nil {
		return false
	}
	nb := s.opts.Revoked.UserNotBefore(userID)
	return !nb.IsZero() && at.Before(nb)
}

// mySessions lists the caller's own live logins.
func (s *Server) mySessions(c *fiber.Ctx) error {
	p := authn.Principal(c)
	list, err := s.ListLogins(c.UserContext(), p.UserID)
	if err != nil {
		return s.storeError(err)
	}
	for i := range list {
		list[i].Current = list[i].SID == p.SID
	}
	return c.JSON(fiber.Map{"user_id": p.UserID, "sessions": list})
}

// revokeMySession ends one of the caller's own logins.
func (s *Server) revokeMySession(c *fiber.Ctx) error {
	p := authn.Principal(c)
	sid := c.Params("sid")
	if err := s.RevokeLoginOf(c.UserContext(), p.UserID, sid); err != nil {
		if isNotFound(err) {
			return auth.Errorf(auth.CodeNotFound, "no live login %q of yours", truncate(sid, 64))
		}
		return s.storeError(err)
	}
	if sid == p.SID {
		s.opts.Cookies.clear(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
