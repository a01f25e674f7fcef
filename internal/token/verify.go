package token

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Verification failures. They are built once so a flood of bad tokens costs
// no allocation for the error; each wraps one of the auth sentinels.
var (
	errEmptyToken   = fmt.Errorf("token: %w: empty", auth.ErrInvalid)
	errTooLong      = fmt.Errorf("token: %w: longer than the maximum size", auth.ErrInvalid)
	errNoKID        = errors.New("no kid header")
	errUnknownKID   = errors.New("kid not in the key ring")
	errAlgMismatch  = errors.New("alg differs from the key's algorithm")
	errBadTyp       = errors.New("typ is not at+jwt")
	errCrit         = errors.New("crit header not understood")
	errMissingClaim = fmt.Errorf("token: %w: missing one of sub, client_id, sid, jti, iat", auth.ErrInvalid)
	errTooLongLived = fmt.Errorf("token: %w: lifetime (exp - iat) longer than the access token TTL", auth.ErrInvalid)
	errClient       = fmt.Errorf("token: %w: client_id is not a registered client", auth.ErrInvalid)
	errJTIRevoked   = fmt.Errorf("token: %w: token revoked", auth.ErrRevoked)
	errSIDRevoked   = fmt.Errorf("token: %w: login revoked", auth.ErrRevoked)
	errUserRevoked  = fmt.Errorf("token: %w: user's tokens revoked", auth.ErrRevoked)
)

func (s *Service) newRingState(ring *KeyRing) *ringState {
	rs := &ringState{ring: ring}
	rs.parser = jwt.NewParser(
		// The ring's algorithms; lookupKey then holds each token to its key's own.
		jwt.WithValidMethods(ring.Algorithms()),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(s.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(s.cfg.Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(s.cfg.Clock),
	)
	rs.keyfunc = rs.lookupKey
	return rs
}

// lookupKey runs on the decoded but unverified header. Only kid, alg, typ and
// crit are read: jku, x5u, jwk and x5c would let the token choose its own key.
func (rs *ringState) lookupKey(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errNoKID
	}
	k := rs.ring.keys[kid]
	if k == nil {
		return nil, errUnknownKID
	}
	if t.Method == nil || t.Method.Alg() != k.alg {
		return nil, errAlgMismatch
	}
	if typ, _ := t.Header["typ"].(string); !isAccessTyp(typ) {
		return nil, errBadTyp
	}
	// RFC 7515 §4.1.11: extensions listed in crit must be understood; we
	// understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	return k.verify, nil
}

// isAccessTyp accepts the RFC 9068 media type, with or without the
// "application/" prefix, in any case (RFC 7515 §4.1.9).
func isAccessTyp(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// VerifyAccess checks an access token and returns its claims. It does no I/O:
// the signature (or the cache of tokens already verified), the claims, and the
// in-memory revocation mirror. Every error wraps auth.ErrInvalid,
// auth.ErrExpired or auth.ErrRevoked. The returned Claims is the caller's to
// keep, but its Roles, Audience and dates are shared and must not be modified.
func (s *Service) VerifyAccess(raw string) (*Claims, error) {
	// Cached under the scheme most tokens arrive by.
	hit, c, err := s.verify(raw, auth.SchemeBearer)
	if err != nil {
		return nil, err
	}
	if hit != nil {
		c = hit.claims(s.cfg.Issuer)
	}
	return c, nil
}

// VerifyPrincipal is VerifyAccess for authenticating a request: the same
// checks, but only the principal is built, so a cache hit costs one
// allocation (the principal, which is the caller's; its Roles are shared).
func (s *Service) VerifyPrincipal(raw string, scheme auth.Scheme) (*auth.Principal, error) {
	hit, c, err := s.verify(raw, scheme)
	if err != nil {
		return nil, err
	}
	return newPrincipal(hit, c, scheme), nil
}

// newPrincipal is the caller's own principal of what verify answered: a
// copy of the cache entry's, or one built from the verified claims.
func newPrincipal(hit *cachedClaims, c *Claims, scheme auth.Scheme) *auth.Principal {
	var p auth.Principal
	if hit != nil {
		p = hit.p
		p.Scheme = scheme
	} else {
		p = c.Principal(scheme)
	}
	return &p
}

// VerifySharedPrincipal is VerifyPrincipal without the allocation on a cache
// hit: the principal is then the cache entry's, shared by every request
// that presents the same token, and nobody may modify it (its Scheme is
// already scheme). A miss, or a hit on a token cached under another scheme,
// answers a new principal, as VerifyPrincipal does.
func (s *Service) VerifySharedPrincipal(raw string, scheme auth.Scheme) (*auth.Principal, error) {
	hit, c, err := s.verify(raw, scheme)
	if err != nil {
		return nil, err
	}
	if hit != nil && hit.p.Scheme == scheme {
		return &hit.p, nil
	}
	return newPrincipal(hit, c, scheme), nil
}

// verify runs every check of VerifyAccess. A cache hit answers the entry
// (shared: the caller must not modify it or hand it out for modification),
// a verified miss its claims, which are the caller's; scheme is what a miss
// caches the principal with.
func (s *Service) verify(raw string, scheme auth.Scheme) (hit *cachedClaims, c *Claims, err error) {
	if raw == "" {
		return nil, nil, errEmptyToken
	}
	if len(raw) > s.cfg.MaxTokenBytes {
		return nil, nil, errTooLong
	}
	var gen uint64
	if s.cache != nil {
		// One clock reading per hit (it is not free on every machine): the
		// cache compares the token's time window with it, and the
		// revocation mirror is checked at the same instant.
		now := s.cfg.Clock()
		if e, ok := s.cache.get(raw, now.UnixNano()); ok {
			if err := s.rev.checkAt(e.p.TokenID, e.p.SID, e.p.UserID, time.Unix(0, e.revokeAt), now); err != nil {
				return nil, nil, err
			}
			return e, nil, nil
		}
		gen = s.cache.generation() // before the ring: see put
	}
	rs := s.state.Load()
	c = new(Claims)
	if _, err := rs.parser.ParseWithClaims(raw, c, rs.keyfunc); err != nil {
		return nil, nil, classify(err)
	}
	if c.Subject == "" || c.ClientID == "" || c.SID == "" || c.ID == "" || c.IssuedAt == nil {
		return nil, nil, errMissingClaim
	}
	// We never issue a longer-lived access token, so one is forged (a stolen
	// key) or a bug: a valid signature must not buy a ten-year token.
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > s.cfg.AccessTTL+s.cfg.Leeway {
		return nil, nil, errTooLongLived
	}
	if s.clients != nil && !s.clients[c.ClientID] {
		return nil, nil, errClient
	}
	now := s.cfg.Clock()
	if s.cache != nil {
		// Cached before the revocation check: revocation is checked on every
		// hit anyway, and a replayed revoked token then costs no signature
		// check. The cache keeps its own copy; c stays the caller's.
		s.cache.put(raw, c, scheme, s.cfg.Leeway, gen, now.UnixNano())
	}
	if err := s.rev.checkAt(c.ID, c.SID, c.Subject, c.revocationTime(), now); err != nil {
		return nil, nil, err
	}
	return nil, c, nil
}

// notOnlyExpired lists the parser failures that make a token invalid even
// when it is also expired: only a genuine token past its exp is "expired".
var notOnlyExpired = []error{
	jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
	jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer,
	jwt.ErrTokenInvalidSubject, jwt.ErrTokenNotValidYet, jwt.ErrTokenUsedBeforeIssued,
	jwt.ErrTokenInvalidId, jwt.ErrInvalidType,
}

func classify(err error) error {
	if errors.Is(err, jwt.ErrTokenExpired) {
		expiredOnly := true
		for _, other := range notOnlyExpired {
			if errors.Is(err, other) {
				expiredOnly = false
				break
			}
		}
		if expiredOnly {
			return fmt.Errorf("token: %w: %v", auth.ErrExpired, err)
		}
	}
	return fmt.Errorf("token: %w: %v", auth.ErrInvalid, err)
}
