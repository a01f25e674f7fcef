package token

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// UpstreamTyp is the JOSE typ of the tokens minted for upstream apps behind
// forward-auth or the reverse proxy. It is the generic "JWT", which the
// verifiers of common frameworks accept by default, and never at+jwt, which
// is all VerifyAccess accepts (RFC 8725 section 3.11, explicit typing).
const UpstreamTyp = "JWT"

// MaxUpstreamTTL bounds the life of an upstream token: nothing can revoke it
// once it has left, so it must die quickly.
const MaxUpstreamTTL = time.Hour

// ErrUpstreamAudience is returned when an upstream token would carry the
// audience of access tokens, which would let an upstream replay it to us.
var ErrUpstreamAudience = errors.New("token: the upstream audience must differ from the access token audience")

// UpstreamClaims are the claims of an upstream token: who the caller is, which
// client and login, and the scheme that authenticated the original request.
type UpstreamClaims struct {
	jwt.RegisteredClaims
	ClientID string   `json:"client_id"`
	SID      string   `json:"sid,omitempty"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// Scheme is session, bearer or jwt_cookie.
	Scheme string `json:"auth_scheme"`
}

// IssueUpstream signs a short-lived token telling an upstream app who made a
// request tokenshift authenticated. It is signed by the key ring like access
// tokens, so upstreams verify it with the published JWKS, but it has its own
// typ (UpstreamTyp) and its own audience, so it can never pass VerifyAccess:
// an upstream that leaks it cannot use it against tokenshift or as an access
// token elsewhere in the same audience.
func (s *Service) IssueUpstream(sub Subject, scheme string, ttl time.Duration, audience string) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxUpstreamTTL {
		return "", time.Time{}, fmt.Errorf("token: upstream ttl %s must be above 0 and at most %s", ttl, MaxUpstreamTTL)
	}
	if audience == "" || strings.EqualFold(audience, s.cfg.Audience) {
		return "", time.Time{}, ErrUpstreamAudience
	}
	if err := s.checkSubject(sub); err != nil {
		return "", time.Time{}, err
	}
	jti, err := s.randomString(16)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.cfg.Clock()
	exp := now.Add(ttl).Truncate(time.Second)
	claims := &UpstreamClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   sub.UserID,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: &jwt.NumericDate{Time: exp},
			IssuedAt:  &jwt.NumericDate{Time: now.Truncate(time.Second)},
			ID:        jti,
		},
		ClientID: sub.ClientID,
		SID:      sub.SID,
		Email:    sub.Email,
		Roles:    sub.Roles,
		Scheme:   scheme,
	}
	key := s.Ring().SigningKey()
	t := jwt.NewWithClaims(key.method, claims)
	t.Header["typ"] = UpstreamTyp
	t.Header["kid"] = key.kid
	signed, err := t.SignedString(key.signer)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return signed, exp, nil
}
