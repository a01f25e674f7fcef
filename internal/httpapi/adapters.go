package httpapi

import (
	"context"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/token"
)

// sessionVerifier adapts session.Manager to authn.SessionVerifier and applies
// the per-user "not valid before" revocation (log out everywhere, password
// change, suspension) to sessions as well as tokens.
type sessionVerifier struct {
	m   *session.Manager
	rev *token.Revocations
}

// The use is recorded (the idle deadline moved) only through the returned
// touch, which the middleware calls once the request is accepted; it is nil
// while no write is due, so most requests allocate nothing for it.
func (v sessionVerifier) VerifySession(ctx context.Context, cookie string) (*auth.Principal, authn.Touch, error) {
	s, err := v.m.Verify(ctx, cookie)
	if err != nil {
		return nil, nil, err
	}
	if v.rev != nil {
		if nb := v.rev.UserNotBefore(s.UserID); !nb.IsZero() && s.CreatedAt.Before(nb) {
			return nil, nil, fmt.Errorf("session of user revoked: %w", auth.ErrRevoked)
		}
		if v.rev.SIDRevoked(s.SID) {
			return nil, nil, fmt.Errorf("session revoked: %w", auth.ErrRevoked)
		}
	}
	var touch authn.Touch
	if v.m.TouchDue(s) {
		touch = func(ctx context.Context) { v.m.Touch(ctx, s) }
	}
	exp := s.IdleExpiresAt
	if s.AbsoluteExpiresAt.Before(exp) {
		exp = s.AbsoluteExpiresAt
	}
	return &auth.Principal{
		UserID:    s.UserID,
		Email:     s.Email,
		ClientID:  s.ClientID,
		Roles:     s.Roles,
		SID:       s.SID,
		ExpiresAt: exp,
	}, touch, nil
}

// tokenVerifier adapts token.Service to authn.TokenVerifier and, with the
// client registry, to authn.CookieTokenVerifier: only clients registered
// with token_transport cookie have their access tokens accepted from the
// access cookie.
type tokenVerifier struct {
	s             *token.Service
	cookieClients map[string]bool
}

func (v tokenVerifier) VerifyCookieToken(raw string) (*auth.Principal, error) {
	p, err := v.VerifyToken(raw)
	if err != nil {
		return nil, err
	}
	if !v.cookieClients[p.ClientID] {
		return nil, fmt.Errorf("access token of client %q (token transport body) sent in the access cookie: %w", p.ClientID, auth.ErrInvalid)
	}
	return p, nil
}

// VerifyToken builds only the principal: a cached token then costs one
// allocation, not a copy of its claims as well.
func (v tokenVerifier) VerifyToken(raw string) (*auth.Principal, error) {
	return v.s.VerifyPrincipal(raw, auth.SchemeBearer)
}
