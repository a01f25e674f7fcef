package logins

import (
	"context"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/token"
)

// VerifySession implements authn.SessionVerifier over the session registry
// and applies the per-user "not valid before" revocation (log out
// everywhere, password change, suspension) to sessions as well as tokens.
// The use is recorded (the idle deadline moved) only through the returned
// touch, which the middleware calls once the request is accepted; it is nil
// while no write is due, so most requests allocate nothing for it.
func (s *Service) VerifySession(ctx context.Context, cookie string) (*auth.Principal, authn.Touch, error) {
	m, rev := s.o.Sessions, s.o.Revoked
	sess, err := m.Verify(ctx, cookie)
	if err != nil {
		return nil, nil, err
	}
	if rev != nil {
		if nb := rev.UserNotBefore(sess.UserID); !nb.IsZero() && sess.CreatedAt.Before(nb) {
			return nil, nil, fmt.Errorf("session of user revoked: %w", auth.ErrRevoked)
		}
		if rev.SIDRevoked(sess.SID) {
			return nil, nil, fmt.Errorf("session revoked: %w", auth.ErrRevoked)
		}
	}
	var touch authn.Touch
	if m.TouchDue(sess) {
		touch = func(ctx context.Context) { m.Touch(ctx, sess) }
	}
	exp := sess.IdleExpiresAt
	if sess.AbsoluteExpiresAt.Before(exp) {
		exp = sess.AbsoluteExpiresAt
	}
	return &auth.Principal{
		UserID:    sess.UserID,
		Email:     sess.Email,
		ClientID:  sess.ClientID,
		Roles:     sess.Roles,
		SID:       sess.SID,
		ExpiresAt: exp,
	}, touch, nil
}

// TokenVerifier adapts the token service to authn.TokenVerifier and, with
// the client registry, to authn.CookieTokenVerifier: only clients registered
// with token_transport cookie have their access tokens accepted from the
// access cookie.
func (s *Service) TokenVerifier() authn.TokenVerifier {
	v := tokenVerifier{s: s.o.Tokens, cookieClients: map[string]bool{}}
	for _, c := range s.o.Clients {
		if c.TokenTransport == auth.TransportCookie {
			v.cookieClients[c.ID] = true
		}
	}
	return v
}

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
