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
// while no write is due, so most requests allocate nothing for it. A
// near-cache hit allocates nothing: Check answers by value with the cache
// entry's shared principal (read only, see authn.Principal), and the mirror
// checks it made on this call (the same mirror) are not repeated.
func (s *Service) VerifySession(ctx context.Context, cookie string) (*auth.Principal, authn.Touch, error) {
	m, rev := s.o.Sessions, s.o.Revoked
	sess, err := m.Check(ctx, cookie)
	if err != nil {
		return nil, nil, err
	}
	p := sess.Principal
	if rev != nil && !(sess.MirrorChecked && m.UsesMirror(rev)) {
		if nb := rev.UserNotBefore(p.UserID); !nb.IsZero() && sess.CreatedAt.Before(nb) {
			return nil, nil, fmt.Errorf("session of user revoked: %w", auth.ErrRevoked)
		}
		if rev.SIDRevoked(p.SID) {
			return nil, nil, fmt.Errorf("session revoked: %w", auth.ErrRevoked)
		}
	}
	var touch authn.Touch
	if sess.TouchDue {
		// A copy declared here, so that only a request with a write due
		// moves the Checked to the heap.
		due := sess
		touch = func(ctx context.Context) { m.TouchChecked(ctx, &due) }
	}
	return p, touch, nil
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
	p, err := v.s.VerifySharedPrincipal(raw, auth.SchemeJWTCookie)
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
	return v.s.VerifySharedPrincipal(raw, auth.SchemeBearer)
}
