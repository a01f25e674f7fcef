package token

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// ErrRefreshReused: a refresh token that was already exchanged came back, so
// it was stolen or the client is broken (RFC 9700 §4.14.2); its whole family
// was revoked. It wraps auth.ErrRevoked.
var ErrRefreshReused = fmt.Errorf("refresh token reused: %w", auth.ErrRevoked)

// Refresh tokens are opaque: a prefix that tells them apart from JWTs at a
// glance, then 32 random bytes. Only a hash of them is stored.
const (
	refreshPrefix     = "rt_"
	refreshRandBytes  = 32
	refreshTokenLen   = len(refreshPrefix) + 43 // base64url of 32 bytes, unpadded
	refreshKeyPrefix  = "ts:rt:"
	refreshUsedPrefix = "ts:rtu:"
)

var (
	errRefreshMalformed = fmt.Errorf("token: %w: not a refresh token", auth.ErrInvalid)
	errRefreshUnknown   = fmt.Errorf("token: %w: unknown or expired refresh token", auth.ErrInvalid)
	errRefreshCorrupt   = fmt.Errorf("token: %w: unreadable refresh record", auth.ErrInvalid)
	errRefreshExpired   = fmt.Errorf("token: %w: refresh token expired", auth.ErrExpired)
)

// refreshRecord is what the store keeps under ts:rt:<hash>.
type refreshRecord struct {
	SID    string   `json:"sid"`
	User   string   `json:"user"`
	Email  string   `json:"email,omitempty"`
	Client string   `json:"client"`
	Roles  []string `json:"roles,omitempty"`
	Exp    int64    `json:"exp"` // unix ns
	// Iat is kept to the nanosecond so that RevokeUser's not-before is exact
	// for refresh tokens.
	Iat int64 `json:"iat"`
}

func (r *refreshRecord) subject() Subject {
	return Subject{UserID: r.User, Email: r.Email, ClientID: r.Client, SID: r.SID, Roles: r.Roles}
}

// parseRefresh checks the shape of a presented refresh token and returns the
// hex SHA-256 it is stored under. A JWT, or anything not exactly shaped like
// our tokens, fails before any store access.
func parseRefresh(raw string) (string, error) {
	if len(raw) != refreshTokenLen || raw[:len(refreshPrefix)] != refreshPrefix {
		return "", errRefreshMalformed
	}
	var buf [refreshRandBytes]byte
	n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(raw[len(refreshPrefix):]))
	if err != nil || n != refreshRandBytes {
		return "", errRefreshMalformed
	}
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:]), nil
}

func newRefreshToken(rand io.Reader) (string, error) {
	var b [refreshRandBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("token: random source: %w", err)
	}
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func (s *Service) storeRefresh(ctx context.Context, sub Subject, now time.Time) (string, time.Time, error) {
	raw, err := newRefreshToken(s.cfg.Rand)
	if err != nil {
		return "", time.Time{}, err
	}
	hash, err := parseRefresh(raw)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(s.cfg.RefreshTTL)
	rec, err := json.Marshal(refreshRecord{
		SID: sub.SID, User: sub.UserID, Email: sub.Email, Client: sub.ClientID, Roles: sub.Roles,
		Exp: exp.UnixNano(), Iat: now.UnixNano(),
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: encode refresh record: %w", err)
	}
	if err := s.st.SetCtx(ctx, refreshKeyPrefix+hash, rec, s.cfg.RefreshTTL); err != nil {
		return "", time.Time{}, fmt.Errorf("token: store refresh token: %w", err)
	}
	return raw, exp, nil
}

// Refresh exchanges a refresh token for a new pair of the same sid; the
// presented token is consumed. Presenting a consumed token again revokes the
// whole family and returns ErrRefreshReused with the Subject of the login
// (SID, UserID, ClientID) so the caller can end its session too.
func (s *Service) Refresh(ctx context.Context, raw string) (Pair, Subject, error) {
	hash, err := parseRefresh(raw)
	if err != nil {
		return Pair{}, Subject{}, err
	}
	// GetDel is the single atomic step that decides which of two racing
	// refreshes wins: the other finds nothing.
	data, err := s.st.GetDel(ctx, refreshKeyPrefix+hash)
	if err != nil {
		return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
	}
	if data == nil {
		sub, err := s.refreshMissing(ctx, hash)
		return Pair{}, sub, err
	}
	now := s.cfg.Clock()
	var rec refreshRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.SID == "" || rec.User == "" {
		return Pair{}, Subject{}, errRefreshCorrupt
	}
	// The marker goes in before anything can fail, so that even a refused
	// token is recognised as reused if it comes back. It names the login and
	// its user so that a reuse can end the session too, not only the tokens.
	if left := time.Duration(rec.Exp - now.UnixNano()); left > 0 {
		marker, err := json.Marshal(usedMarker{SID: rec.SID, User: rec.User, Client: rec.Client})
		if err != nil {
			return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
		}
		if err := s.st.SetCtx(ctx, refreshUsedPrefix+hash, marker, left); err != nil {
			return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
		}
	}
	if err := s.checkRecord(&rec, now); err != nil {
		return Pair{}, Subject{}, err
	}
	sub := rec.subject()
	pair, err := s.Issue(ctx, sub)
	if err != nil {
		return Pair{}, Subject{}, err
	}
	return pair, sub, nil
}

// usedMarker is what the store keeps under ts:rtu:<hash> once a refresh token
// was consumed. Markers written before it existed hold the bare sid.
type usedMarker struct {
	SID    string `json:"sid"`
	User   string `json:"user,omitempty"`
	Client string `json:"client,omitempty"`
}

func parseUsedMarker(b []byte) usedMarker {
	var m usedMarker
	if len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &m) == nil {
		return m
	}
	return usedMarker{SID: string(b)}
}

// refreshMissing explains a refresh token with no record: consumed before
// (reuse: kill the family, and return whose login it was so the caller can
// end the session as well) or never issued / long expired.
func (s *Service) refreshMissing(ctx context.Context, hash string) (Subject, error) {
	raw, err := s.st.GetCtx(ctx, refreshUsedPrefix+hash)
	if err != nil {
		return Subject{}, fmt.Errorf("token: refresh: %w", err)
	}
	if raw == nil {
		return Subject{}, errRefreshUnknown
	}
	m := parseUsedMarker(raw)
	if m.SID == "" {
		return Subject{}, errRefreshCorrupt
	}
	sub := Subject{SID: m.SID, UserID: m.User, ClientID: m.Client}
	if err := s.RevokeFamily(ctx, m.SID); err != nil {
		// Applied locally already; the store failing only delays the others.
		return sub, fmt.Errorf("token: %w (revoking the family failed: %w)", ErrRefreshReused, err)
	}
	return sub, fmt.Errorf("token: %w", ErrRefreshReused)
}

func (s *Service) checkRecord(rec *refreshRecord, now time.Time) error {
	switch {
	case now.UnixNano() >= rec.Exp:
		return errRefreshExpired
	case s.rev.SIDRevoked(rec.SID):
		return errSIDRevoked
	}
	if nb := s.rev.UserNotBefore(rec.User); !nb.IsZero() && rec.Iat < nb.UnixNano() {
		return errUserRevoked
	}
	return nil
}

// LookupRefresh returns the subject of a live refresh token without consuming
// it (logout with a refresh token).
func (s *Service) LookupRefresh(ctx context.Context, raw string) (Subject, error) {
	hash, err := parseRefresh(raw)
	if err != nil {
		return Subject{}, err
	}
	data, err := s.st.GetCtx(ctx, refreshKeyPrefix+hash)
	if err != nil {
		return Subject{}, fmt.Errorf("token: lookup refresh: %w", err)
	}
	if data == nil {
		return Subject{}, errRefreshUnknown
	}
	var rec refreshRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.SID == "" || rec.User == "" {
		return Subject{}, errRefreshCorrupt
	}
	if err := s.checkRecord(&rec, s.cfg.Clock()); err != nil {
		return Subject{}, err
	}
	return rec.subject(), nil
}
