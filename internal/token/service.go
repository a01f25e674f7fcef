package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// Options tune a Service. Zero fields take the defaults of DefaultOptions,
// except CacheBytes, where 0 disables the cache: start from DefaultOptions.
type Options struct {
	Issuer     string        // iss of the tokens we issue and accept; default "http://localhost:8080"
	Audience   string        // aud of access tokens; default "tokenshift"
	AccessTTL  time.Duration // default 15m
	RefreshTTL time.Duration // default 168h
	// RefreshAbsoluteTTL caps a token family: no refresh token of a login
	// expires later than this after the login, however often it is
	// refreshed. Default max(720h, RefreshTTL); never below RefreshTTL.
	RefreshAbsoluteTTL time.Duration
	// Leeway absorbs clock skew between instances on exp, nbf and iat;
	// default 5s, at most 1m.
	Leeway time.Duration
	// MaxTokenBytes: longer bearer strings are rejected before any parsing;
	// default 8192.
	MaxTokenBytes int
	// CacheBytes bounds the memory of the verified-token cache, which lets
	// a repeated token skip the signature check: each entry is accounted
	// its token, its claims and a fixed overhead (for the
	// tokens we issue, about 990 bytes an entry). 0 disables the cache.
	CacheBytes int64
	Clock      func() time.Time // default time.Now
	Rand       io.Reader        // jti, sid and refresh tokens; default crypto/rand; must be safe for concurrent use

	// Clients are the registered client ids: an access token naming another
	// client_id is refused. Empty: client_id is not checked (tests, tools).
	Clients []string
}

// Defaults.
const (
	DefaultIssuer     = "http://localhost:8080"
	DefaultAudience   = "tokenshift"
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 168 * time.Hour
	// DefaultRefreshAbsoluteTTL is 30 days.
	DefaultRefreshAbsoluteTTL = 720 * time.Hour
	DefaultLeeway             = 5 * time.Second
	MaxLeeway                 = time.Minute
	DefaultMaxTokenBytes      = 8192
	// DefaultCacheBytes holds about 136,000 tokens of the size we issue
	// (EdDSA, one role): room for 100,000 live clients.
	DefaultCacheBytes = 128 << 20
)

// DefaultOptions is the configuration with every default filled in.
var DefaultOptions = Options{
	Issuer:             DefaultIssuer,
	Audience:           DefaultAudience,
	AccessTTL:          DefaultAccessTTL,
	RefreshTTL:         DefaultRefreshTTL,
	RefreshAbsoluteTTL: DefaultRefreshAbsoluteTTL,
	Leeway:             DefaultLeeway,
	MaxTokenBytes:      DefaultMaxTokenBytes,
	CacheBytes:         DefaultCacheBytes,
	Clock:              time.Now,
	Rand:               rand.Reader,
}

// ErrConfig is wrapped by NewService's errors.
var ErrConfig = errors.New("token: invalid config")

func (c Options) withDefaults() (Options, error) {
	d := DefaultOptions
	if c.Issuer == "" {
		c.Issuer = d.Issuer
	}
	if c.Audience == "" {
		c.Audience = d.Audience
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = d.AccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = d.RefreshTTL
	}
	if c.RefreshAbsoluteTTL == 0 {
		c.RefreshAbsoluteTTL = max(d.RefreshAbsoluteTTL, c.RefreshTTL)
	}
	if c.Leeway == 0 {
		c.Leeway = d.Leeway
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = d.MaxTokenBytes
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Rand == nil {
		c.Rand = d.Rand
	}
	switch {
	case c.AccessTTL < 0 || c.RefreshTTL < 0:
		return c, fmt.Errorf("%w: AccessTTL and RefreshTTL must be positive", ErrConfig)
	case c.RefreshAbsoluteTTL < c.RefreshTTL:
		return c, fmt.Errorf("%w: RefreshAbsoluteTTL %s must be at least RefreshTTL %s", ErrConfig, c.RefreshAbsoluteTTL, c.RefreshTTL)
	case c.Leeway < 0 || c.Leeway > MaxLeeway:
		return c, fmt.Errorf("%w: Leeway %s must be between 0 and %s", ErrConfig, c.Leeway, MaxLeeway)
	case c.MaxTokenBytes < 0:
		return c, fmt.Errorf("%w: MaxTokenBytes must be positive", ErrConfig)
	case c.CacheBytes < 0:
		return c, fmt.Errorf("%w: CacheBytes must not be negative (0 disables the cache)", ErrConfig)
	}
	return c, nil
}

// Subject is who a token pair is issued to.
type Subject struct {
	UserID, Email, ClientID, SID string
	Roles                        []string
	// AuthTime is when the account state a login rests on was read (before
	// its password was checked); zero means now. Issue dates the pair by it
	// (iat, the refresh record's issue time), so a per-user revocation taken
	// after it ends the pair even when the pair is minted after the
	// revocation. It only moves the date earlier.
	AuthTime time.Time
	// LoginCreated is the creation of the login record the pair belongs to
	// (session.Session.CreatedAt), zero when there is none. When the family
	// starts then (a login's AuthTime is its record's creation), its refresh
	// state refers to the record's creation (store.LoginCreated) instead of
	// storing the same instant again.
	LoginCreated time.Time
}

// Pair is what a login or a refresh hands to an app.
type Pair struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// Service issues and verifies access and refresh tokens.
type Service struct {
	cfg    Options
	st     store.Store
	rev    *Revocations
	cache  *verifiedCache // nil when disabled
	state  atomic.Pointer[ringState]
	maxTTL time.Duration // longest lifetime of anything we issue
	// clients is Config.Clients as a set; nil accepts any client_id.
	clients map[string]bool
}

// ringState ties a ring to the parser that accepts exactly its algorithms, so
// a ring swap can never pair a parser with another ring's keys.
type ringState struct {
	ring    *KeyRing
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
}

// NewService checks cfg and builds a Service. rev must be started (Start) by
// the caller before tokens are verified, so revocations of other instances
// are known.
func NewService(cfg Options, ring *KeyRing, st store.Store, rev *Revocations) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if ring == nil || st == nil || rev == nil {
		return nil, fmt.Errorf("%w: ring, store and revocations are required", ErrConfig)
	}
	s := &Service{cfg: cfg, st: st, rev: rev, maxTTL: max(cfg.AccessTTL, cfg.RefreshTTL)}
	if len(cfg.Clients) > 0 {
		s.clients = make(map[string]bool, len(cfg.Clients))
		for _, id := range cfg.Clients {
			s.clients[id] = true
		}
	}
	if cfg.CacheBytes > 0 {
		s.cache = newVerifiedCache(cfg.CacheBytes)
	}
	s.state.Store(s.newRingState(ring))
	return s, nil
}

// Ring is the key ring in use.
func (s *Service) Ring() *KeyRing { return s.state.Load().ring }

// SetRing switches to another ring (key rotation). Tokens verified under the
// old ring are forgotten, so a key dropped from the ring stops verifying at once.
func (s *Service) SetRing(ring *KeyRing) {
	if ring == nil {
		return
	}
	s.state.Store(s.newRingState(ring))
	if s.cache != nil {
		s.cache.purge()
	}
}

// Options are the effective options, defaults filled in.
func (s *Service) Options() Options { return s.cfg }

// Revocations is the revocation mirror the service checks.
func (s *Service) Revocations() *Revocations { return s.rev }

var (
	errNoUser   = errors.New("token: subject has no user id")
	errNoClient = errors.New("token: subject has no client id")
)

// Issue creates an access token and a refresh token for sub, bound to sub.SID
// (a new sid is generated when it is empty).
// The pair starts a token family: its refresh tokens expire at the latest
// RefreshAbsoluteTTL from now.
func (s *Service) Issue(ctx context.Context, sub Subject) (Pair, error) {
	if sub.SID == "" {
		sid, err := s.randomString(16)
		if err != nil {
			return Pair{}, err
		}
		sub.SID = sid
	}
	now := s.cfg.Clock()
	// A login is dated by the read of its account state (AuthTime), so a
	// revocation taken while it was being checked still reaches its tokens.
	if !sub.AuthTime.IsZero() && sub.AuthTime.Before(now) {
		now = sub.AuthTime
	}
	famIsLogin := !sub.LoginCreated.IsZero() && now.Equal(sub.LoginCreated)
	return s.issue(ctx, sub, now, now, famIsLogin, s.rev.SIDEpoch(), true)
}

// issue mints a pair of the family that started at famStart, refused if sid
// was revoked by epoch (see Revocations.SIDRevokedBy). withIdentity stores
// sub's identity in the login's hash with the refresh token; a rotation of a
// token that was read from that hash leaves it as it is.
func (s *Service) issue(ctx context.Context, sub Subject, now, famStart time.Time, famIsLogin bool, epoch uint64, withIdentity bool) (Pair, error) {
	if err := s.checkSubjectBy(sub, epoch); err != nil {
		return Pair{}, err
	}
	access, accessExp, err := s.signAccess(sub, now, s.cfg.AccessTTL, s.cfg.Audience)
	if err != nil {
		return Pair{}, err
	}
	refresh, refreshExp, err := s.storeRefresh(ctx, sub, now, famStart, famIsLogin, withIdentity)
	if err != nil {
		return Pair{}, err
	}
	return Pair{AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: refresh, RefreshExpiresAt: refreshExp}, nil
}

// IssueAccess signs a lone access token, e.g. for an upstream service:
// ttl 0 means AccessTTL, audience "" the configured audience. VerifyAccess
// only accepts the configured audience.
func (s *Service) IssueAccess(sub Subject, ttl time.Duration, audience string) (string, time.Time, error) {
	if ttl == 0 {
		ttl = s.cfg.AccessTTL
	}
	if audience == "" {
		audience = s.cfg.Audience
	}
	// Revoking a sid or user lasts maxTTL, so nothing may outlive it; and a
	// token for our own audience longer than AccessTTL would be refused by
	// VerifyAccess (lifetime cap), so it is not minted either.
	limit := s.maxTTL
	if audience == s.cfg.Audience {
		limit = s.cfg.AccessTTL
	}
	if ttl < 0 || ttl > limit {
		return "", time.Time{}, fmt.Errorf("token: access ttl %s must be between 0 and %s", ttl, limit)
	}
	if err := s.checkSubject(sub); err != nil {
		return "", time.Time{}, err
	}
	return s.signAccess(sub, s.cfg.Clock(), ttl, audience)
}

func (s *Service) checkSubject(sub Subject) error { return s.checkSubjectBy(sub, s.rev.SIDEpoch()) }

// checkSubjectBy counts only the sid revocations known by epoch.
func (s *Service) checkSubjectBy(sub Subject, epoch uint64) error {
	switch {
	case sub.UserID == "":
		return errNoUser
	case sub.ClientID == "":
		return errNoClient
	case sub.SID != "" && s.rev.SIDRevokedBy(sub.SID, epoch):
		return fmt.Errorf("token: issue for sid: %w", auth.ErrRevoked)
	}
	return nil
}

func (s *Service) signAccess(sub Subject, now time.Time, ttl time.Duration, audience string) (string, time.Time, error) {
	jti, err := s.randomString(16)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(ttl).Truncate(time.Second)
	claims := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   sub.UserID,
			Audience:  jwt.ClaimStrings{audience},
			ExpiresAt: &jwt.NumericDate{Time: exp},
			IssuedAt:  &jwt.NumericDate{Time: s.issuedAt(sub.UserID, now)},
			ID:        jti,
		},
		ClientID:   sub.ClientID,
		SID:        sub.SID,
		Email:      sub.Email,
		Roles:      sub.Roles,
		IssuedAtNS: now.UnixNano(),
	}
	key := s.Ring().SigningKey()
	t := jwt.NewWithClaims(key.method, claims)
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = key.kid
	signed, err := t.SignedString(key.signer)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return signed, exp, nil
}

// issuedAt is the iat for a token issued now. iat has whole seconds, and a
// token is revoked when iat < the user's not-before; a user revoked at 12.3s
// and logging in again at 12.8s would get iat 12s and a dead token, so such a
// token is dated to the next second instead (well inside the verifiers' leeway).
// That date would also survive a second revocation at 12.9s, so revocation
// judges by iat_ns instead (Claims.revocationTime); the rounding up is kept
// for verifiers of earlier versions, which read iat only.
func (s *Service) issuedAt(userID string, now time.Time) time.Time {
	iat := now.Truncate(time.Second)
	if nb := s.rev.UserNotBefore(userID); iat.Before(nb) && !now.Before(nb) {
		iat = iat.Add(time.Second)
	}
	return iat
}

func (s *Service) randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("token: random source: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// RevokeFamily revokes every access and refresh token of sid, on every instance.
func (s *Service) RevokeFamily(ctx context.Context, sid string) error {
	if sid == "" {
		return fmt.Errorf("token: revoke family: empty sid")
	}
	return s.rev.RevokeSID(ctx, sid, s.revocationUntil())
}

// RevokeUser revokes every access and refresh token of userID issued until
// now, on every instance (log out everywhere, password change, suspension).
func (s *Service) RevokeUser(ctx context.Context, userID string) error {
	if userID == "" {
		return fmt.Errorf("token: revoke user: empty user id")
	}
	return s.rev.RevokeUser(ctx, userID, s.cfg.Clock(), s.revocationUntil())
}

// revocationUntil is when nothing issued before now can still be valid, so a
// revocation entry can be forgotten.
func (s *Service) revocationUntil() time.Time {
	return s.cfg.Clock().Add(s.maxTTL + s.cfg.Leeway)
}
