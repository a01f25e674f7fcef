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

// ErrFamilyExpired: the login the refresh token belongs to is older than
// Config.RefreshAbsoluteTTL; however often it was refreshed, the user must log
// in again. It wraps auth.ErrExpired.
var ErrFamilyExpired = fmt.Errorf("refresh token family reached its absolute lifetime: %w", auth.ErrExpired)

// Refresh tokens are opaque: a prefix that tells them apart from JWTs at a
// glance, then 32 random bytes. Only a hash of them is stored.
const (
	refreshPrefix     = "rt_"
	refreshRandBytes  = 32
	refreshTokenLen   = len(refreshPrefix) + 43 // base64url of 32 bytes, unpadded
	refreshKeyPrefix  = "ts:rt:"
	refreshUsedPrefix = "ts:rtu:"
)

// Key names of a refresh token stored under its hash. The record keeps the
// name it always had, so records written before the upgrade are consumed as
// they are. The used marker is written by the same atomic step that consumes
// the record (store.Consume), which Redis Cluster allows only when both keys
// hash to one slot: the marker's name carries the record's whole key as its
// {hash tag}, which puts it in the record's slot (a key without braces hashes
// whole). Markers written before the upgrade under ts:rtu:<hash> are only
// read, as a fallback, until they expire (at most jwt.refresh_ttl).
func refreshKey(hash string) string { return refreshKeyPrefix + hash }

func usedKey(hash string) string { return refreshUsedPrefix + "{" + refreshKeyPrefix + hash + "}" }

func legacyUsedKey(hash string) string { return refreshUsedPrefix + hash }

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
	// Fam is when the family started (the login), unix ns; it is carried
	// from record to record so that refreshing never extends the family past
	// Fam + RefreshAbsoluteTTL. Records written before families had an
	// absolute lifetime lack it: see familyStart.
	Fam int64 `json:"fam,omitempty"`
}

// familyStart is Fam, or for a record written before Fam existed its own
// iat: such a family is treated as starting at its latest refresh before
// the upgrade, so it keeps working and is capped from then on.
func (r *refreshRecord) familyStart() time.Time {
	if r.Fam != 0 {
		return time.Unix(0, r.Fam)
	}
	return time.Unix(0, r.Iat)
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

// storeRefresh stores a new refresh token of the family that started at
// famStart. Its expiry is never past the family's deadline.
func (s *Service) storeRefresh(ctx context.Context, sub Subject, now, famStart time.Time) (string, time.Time, error) {
	exp := now.Add(s.cfg.RefreshTTL)
	if deadline := famStart.Add(s.cfg.RefreshAbsoluteTTL); deadline.Before(exp) {
		exp = deadline
	}
	ttl := exp.Sub(now)
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("token: %w", ErrFamilyExpired)
	}
	raw, err := newRefreshToken(s.cfg.Rand)
	if err != nil {
		return "", time.Time{}, err
	}
	hash, err := parseRefresh(raw)
	if err != nil {
		return "", time.Time{}, err
	}
	rec, err := json.Marshal(refreshRecord{
		SID: sub.SID, User: sub.UserID, Email: sub.Email, Client: sub.ClientID, Roles: sub.Roles,
		Exp: exp.UnixNano(), Iat: now.UnixNano(), Fam: famStart.UnixNano(),
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: encode refresh record: %w", err)
	}
	if err := s.st.SetCtx(ctx, refreshKey(hash), rec, ttl); err != nil {
		return "", time.Time{}, fmt.Errorf("token: store refresh token: %w", err)
	}
	return raw, exp, nil
}

// Refresh exchanges a refresh token for a new pair of the same sid; the
// presented token is consumed. Presenting a consumed token again revokes the
// whole family and returns ErrRefreshReused with the Subject of the login
// (SID, UserID, ClientID) so the caller can end its session too. Of several
// racing refreshes of one token exactly one wins and every other one is
// reuse (RFC 9700 §4.14.2).
func (s *Service) Refresh(ctx context.Context, raw string) (Pair, Subject, error) {
	hash, err := parseRefresh(raw)
	if err != nil {
		return Pair{}, Subject{}, err
	}
	// Revocations this refresh could have known of before it consumed the
	// token are what refuses it; see the end of this function.
	epoch := s.rev.SIDEpoch()
	// Consume is the single atomic step that decides which of racing
	// refreshes wins and, in the same step, leaves the used marker (the
	// record itself, which names the login), so a loser always finds it. It
	// is there before anything can fail, so that even a refused token is
	// recognised as reused if it comes back.
	data, marker, err := s.st.Consume(ctx, refreshKey(hash), usedKey(hash))
	if err != nil {
		return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
	}
	if data == nil {
		if marker == nil {
			if marker, err = s.st.GetCtx(ctx, legacyUsedKey(hash)); err != nil {
				return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
			}
		}
		sub, err := s.reused(ctx, marker)
		return Pair{}, sub, err
	}
	now := s.cfg.Clock()
	var rec refreshRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.SID == "" || rec.User == "" {
		return Pair{}, Subject{}, errRefreshCorrupt
	}
	if err := s.checkRecord(&rec, now, epoch); err != nil {
		return Pair{}, Subject{}, err
	}
	sub := rec.subject()
	pair, err := s.issue(ctx, sub, now, rec.familyStart(), epoch)
	if err != nil {
		return Pair{}, Subject{}, err
	}
	// This refresh won, but its family was revoked while it ran (most often
	// by the loser of a race for this very token, as reuse): the new pair is
	// already dead by its sid. The revocation is renewed so that it outlasts
	// the tokens just issued, whatever the leeway.
	if s.rev.SIDRevoked(sub.SID) {
		if err := s.RevokeFamily(ctx, sub.SID); err != nil {
			return Pair{}, Subject{}, fmt.Errorf("token: refresh: renew the revocation of a family revoked meanwhile: %w", err)
		}
	}
	return pair, sub, nil
}

// usedMarker is what identifies the login of a consumed refresh token: the
// consumed record itself (a superset of these fields), or, in markers written
// before consuming was atomic, just these fields or the bare sid.
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

// reused explains a refresh token with no record from its used marker:
// consumed before (reuse: kill the family, and return whose login it was so
// the caller can end the session as well) or, without a marker, never issued
// or long expired.
func (s *Service) reused(ctx context.Context, marker []byte) (Subject, error) {
	if marker == nil {
		return Subject{}, errRefreshUnknown
	}
	m := parseUsedMarker(marker)
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

// checkRecord refuses a record that expired, whose family is past its
// absolute lifetime, or whose login or user was revoked; for the sid, only
// revocations known by epoch (Revocations.SIDEpoch) count.
func (s *Service) checkRecord(rec *refreshRecord, now time.Time, epoch uint64) error {
	switch {
	case now.UnixNano() >= rec.Exp:
		return errRefreshExpired
	case !now.Before(rec.familyStart().Add(s.cfg.RefreshAbsoluteTTL)):
		return fmt.Errorf("token: %w", ErrFamilyExpired)
	case s.rev.SIDRevokedBy(rec.SID, epoch):
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
	data, err := s.st.GetCtx(ctx, refreshKey(hash))
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
	if err := s.checkRecord(&rec, s.cfg.Clock(), s.rev.SIDEpoch()); err != nil {
		return Subject{}, err
	}
	return rec.subject(), nil
}
