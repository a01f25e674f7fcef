package token

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// RevokeAccess revokes one access token (its jti, on every instance, until
// the token would have expired anyway) and returns its claims. A token that
// does not verify is not ours to revoke: the error wraps auth.ErrInvalid,
// auth.ErrExpired or auth.ErrRevoked, which RFC 7009 callers answer with 200
// all the same. Only verified tokens reach the revocation list, so nobody can
// fill it with made-up ids.
func (s *Service) RevokeAccess(ctx context.Context, raw string) (*Claims, error) {
	c, err := s.VerifyAccess(raw)
	if err != nil {
		return nil, err
	}
	// The jti is refused until exp plus the leeway a verifier grants.
	until := c.ExpiresAt.Time.Add(s.cfg.Leeway)
	if err := s.rev.RevokeJTI(ctx, c.ID, until); err != nil {
		return c, fmt.Errorf("token: revoke access token: %w", err)
	}
	return c, nil
}

// IsNotRevocable reports whether err from RevokeAccess or LookupRefresh means
// "no live token": invalid, expired or already revoked. RFC 7009 §2.2 answers
// those with 200 too.
func IsNotRevocable(err error) bool {
	return errors.Is(err, auth.ErrInvalid) || errors.Is(err, auth.ErrExpired) || errors.Is(err, auth.ErrRevoked)
}

// LooksLikeRefresh reports whether raw has the shape of our refresh tokens,
// which is how a revocation request is routed whatever its token_type_hint
// says (RFC 7009 §2.1 lets the server ignore the hint).
func LooksLikeRefresh(raw string) bool {
	_, err := parseRefresh(raw)
	return err == nil
}
