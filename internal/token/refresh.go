package token

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
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
// glance, the sid of their login, a dot and 32 random bytes (base64url):
// rt_<sid>.<secret>. Only a hash of them is stored, in the login's own hash
// (store.LoginKey, field store.FieldRefresh), so a login costs one Redis key
// however many refresh tokens it goes through. The sid is public (it is in
// every access token); the secret is what proves possession.
//
// Tokens issued before (rt_<secret>, refreshLegacyLen characters) are stored
// under ts:rt:<hex SHA-256> with used markers in their own keys; they are
// still consumed as they are, and their successors are of the new kind.
const (
	refreshPrefix     = "rt_"
	refreshRandBytes  = 32
	refreshSecretLen  = 43 // base64url of 32 bytes, unpadded
	refreshLegacyLen  = len(refreshPrefix) + refreshSecretLen
	refreshMaxSIDLen  = 64
	refreshKeyPrefix  = "ts:rt:"
	refreshUsedPrefix = "ts:rtu:"
	// refreshKeep is how many consumed refresh tokens of a login are
	// recognised as reuse (8-byte fingerprints, newest first: 64 bytes, the
	// longest value a packed Redis hash keeps). An older one is refused as
	// unknown, without revoking the family.
	refreshKeep = store.ChunkLen / store.FingerprintLen
	// The version of a refresh state follows the token's hash in
	// store.FieldRefresh (encodeRefreshState).
	refreshStateV1       = 1 // exp, iat, fam: 8 bytes each; only read
	refreshStateLoginFam = 2 // the family started with the login (its record's creation)
	refreshStateOwnFam   = 3 // the family start follows, 8 bytes
	refreshStateV1Len    = refreshStoredHashLen + 1 + 3*8
	refreshStateMaxLen   = refreshStoredHashLen + 1 + 8 + 2*binary.MaxVarintLen64
	// refreshStoredHashLen is how much of a token's SHA-256 its login keeps:
	// 128 bits of a hash of 256 random bits leave nothing to guess.
	refreshStoredHashLen = 16
)

// Key names of a refresh token of the old kind stored under its hash. The
// used marker is written by the same atomic step that consumes the record
// (store.Consume), which Redis Cluster allows only when both keys hash to one
// slot: the marker's name carries the record's whole key as its {hash tag},
// which puts it in the record's slot (a key without braces hashes whole).
// Markers written before that under ts:rtu:<hash> are only read, as a
// fallback, until they expire (at most jwt.refresh_ttl).
func refreshKey(hash string) string { return refreshKeyPrefix + hash }

func usedKey(hash string) string { return refreshUsedPrefix + "{" + refreshKeyPrefix + hash + "}" }

func legacyUsedKey(hash string) string { return refreshUsedPrefix + hash }

// storedID is what the login keeps of the token: the start of its hash.
func (p *presentedRefresh) storedID() []byte { return p.sum[:refreshStoredHashLen] }

// presentedRefresh is a refresh token that has the right shape.
type presentedRefresh struct {
	sid  string   // empty for a token of the old kind
	sum  [32]byte // SHA-256 of the whole token
	hash string   // hex of sum: the old kind's key
}

var (
	errRefreshMalformed = fmt.Errorf("token: %w: not a refresh token", auth.ErrInvalid)
	errRefreshUnknown   = fmt.Errorf("token: %w: unknown or expired refresh token", auth.ErrInvalid)
	errRefreshCorrupt   = fmt.Errorf("token: %w: unreadable refresh record", auth.ErrInvalid)
	errRefreshExpired   = fmt.Errorf("token: %w: refresh token expired", auth.ErrExpired)
	// errRefreshLoginGone: the state refers to its login's record, which is
	// gone (a refresh racing a logout leaves such a fragment). The family is
	// revoked (goneLogin), as package logins does for any family whose
	// login is gone, since nothing can list or revoke it any more.
	errRefreshLoginGone = fmt.Errorf("token: %w: the login of this refresh token has ended", auth.ErrInvalid)
)

// refreshRecord is what a refresh token stands for: decoded from the login
// hash (state field and identity), or for the old kind the JSON the store
// keeps under ts:rt:<hash>.
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
	// famIsLogin: Fam is the creation of the login's record, which the
	// state refers to instead of repeating it.
	famIsLogin bool
}

// encodeRefreshState is the value of store.FieldRefresh: the token's
// storedID first (what store.TakeField matches), a version byte, for
// refreshStateOwnFam the family start (unix ns, 8 bytes big-endian), then
// iat as nanoseconds after the family start (zigzag varint: exact, for
// RevokeUser's not-before) and exp as whole seconds after iat (uvarint;
// storeRefresh makes it whole). A login's first state is 21 bytes.
func encodeRefreshState(id []byte, rec *refreshRecord) []byte {
	b := make([]byte, 0, refreshStateMaxLen)
	b = append(b, id...)
	if rec.famIsLogin {
		b = append(b, refreshStateLoginFam)
	} else {
		b = append(b, refreshStateOwnFam)
		b = binary.BigEndian.AppendUint64(b, uint64(rec.Fam))
	}
	b = binary.AppendVarint(b, rec.Iat-rec.Fam)
	return binary.AppendUvarint(b, uint64((rec.Exp-rec.Iat)/int64(time.Second)))
}

// decodeRefreshState reads the login hash h of sid as the record of the
// token whose hash the state begins with; it reads every version.
func decodeRefreshState(sid string, h map[string][]byte) (*refreshRecord, error) {
	b := h[store.FieldRefresh]
	id, ok, err := store.ParseIdentity(h)
	if err != nil || !ok || len(b) <= refreshStoredHashLen {
		return nil, errRefreshCorrupt
	}
	rec := &refreshRecord{SID: sid, User: id.UserID, Email: id.Email, Client: id.ClientID, Roles: id.Roles}
	v := b[refreshStoredHashLen+1:]
	switch b[refreshStoredHashLen] {
	case refreshStateV1:
		if len(b) != refreshStateV1Len {
			return nil, errRefreshCorrupt
		}
		rec.Exp, rec.Iat, rec.Fam = int64(binary.BigEndian.Uint64(v[0:8])), int64(binary.BigEndian.Uint64(v[8:16])), int64(binary.BigEndian.Uint64(v[16:24]))
		return rec, nil
	case refreshStateLoginFam:
		created, ok := store.LoginCreated(h)
		if !ok {
			return nil, errRefreshLoginGone
		}
		rec.Fam, rec.famIsLogin = created.UnixNano(), true
	case refreshStateOwnFam:
		if len(v) < 8 {
			return nil, errRefreshCorrupt
		}
		rec.Fam, v = int64(binary.BigEndian.Uint64(v[:8])), v[8:]
	default:
		return nil, errRefreshCorrupt
	}
	iat, n := binary.Varint(v)
	if n <= 0 {
		return nil, errRefreshCorrupt
	}
	ttl, k := binary.Uvarint(v[n:])
	if k <= 0 || n+k != len(v) || ttl > uint64(maxStoredTTL/time.Second) {
		return nil, errRefreshCorrupt
	}
	rec.Iat = rec.Fam + iat
	rec.Exp = rec.Iat + int64(ttl)*int64(time.Second)
	return rec, nil
}

// maxStoredTTL bounds the lifetime a refresh state may claim (a year is the
// longest refresh_absolute_ttl): more is corrupt, not a token.
const maxStoredTTL = 8784 * time.Hour

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

// parseRefresh checks the shape of a presented refresh token and returns
// what it is stored under. A JWT, or anything not exactly shaped like our
// tokens, fails before any store access.
func parseRefresh(raw string) (presentedRefresh, error) {
	rest, ok := strings.CutPrefix(raw, refreshPrefix)
	if !ok || len(raw) > refreshLegacyLen+1+refreshMaxSIDLen {
		return presentedRefresh{}, errRefreshMalformed
	}
	var p presentedRefresh
	secret := rest
	if len(raw) != refreshLegacyLen {
		i := strings.LastIndexByte(rest, '.')
		if i < 0 || !validRefreshSID(rest[:i]) {
			return presentedRefresh{}, errRefreshMalformed
		}
		p.sid, secret = rest[:i], rest[i+1:]
	}
	var buf [refreshRandBytes]byte
	if len(secret) != refreshSecretLen {
		return presentedRefresh{}, errRefreshMalformed
	}
	n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(secret))
	if err != nil || n != refreshRandBytes {
		return presentedRefresh{}, errRefreshMalformed
	}
	p.sum = sha256.Sum256([]byte(raw))
	p.hash = hex.EncodeToString(p.sum[:])
	return p, nil
}

// validRefreshSID: a sid a refresh token can carry (base64url characters,
// as every sid tokenshift makes).
func validRefreshSID(sid string) bool {
	if sid == "" || len(sid) > refreshMaxSIDLen {
		return false
	}
	for i := range len(sid) {
		c := sid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func newRefreshToken(rand io.Reader, sid string) (string, error) {
	if !validRefreshSID(sid) {
		return "", fmt.Errorf("token: sid %q cannot be carried by a refresh token", sid)
	}
	var b [refreshRandBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("token: random source: %w", err)
	}
	return refreshPrefix + sid + "." + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// storeRefresh stores a new refresh token of the family that started at
// famStart, with the identity it is for, in the login's hash; the login
// keeps at least until the token expires. Its expiry is never past the
// family's deadline.
//
// famIsLogin says that famStart is the creation of the login's record
// (store.LoginCreated), so the state refers to it instead of storing it. The
// expiry is in whole seconds after now, as the state keeps it.
func (s *Service) storeRefresh(ctx context.Context, sub Subject, now, famStart time.Time, famIsLogin, withIdentity bool) (string, time.Time, error) {
	ttl := s.cfg.RefreshTTL
	if left := famStart.Add(s.cfg.RefreshAbsoluteTTL).Sub(now); left < ttl {
		ttl = left
	}
	ttl = ttl.Truncate(time.Second)
	exp := now.Add(ttl)
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("token: %w", ErrFamilyExpired)
	}
	raw, err := newRefreshToken(s.cfg.Rand, sub.SID)
	if err != nil {
		return "", time.Time{}, err
	}
	p, err := parseRefresh(raw)
	if err != nil {
		return "", time.Time{}, err
	}
	rec := refreshRecord{Exp: exp.UnixNano(), Iat: now.UnixNano(), Fam: famStart.UnixNano(), famIsLogin: famIsLogin}
	var fields []store.Field
	if withIdentity {
		fields = store.IdentityFields(store.Identity{UserID: sub.UserID, Email: sub.Email, ClientID: sub.ClientID, Roles: sub.Roles})
	}
	fields = append(fields, store.Field{Name: store.FieldRefresh, Value: encodeRefreshState(p.storedID(), &rec)})
	if err := s.st.HSetFields(ctx, store.LoginKey(sub.SID), ttl, fields...); err != nil {
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
	p, err := parseRefresh(raw)
	if err != nil {
		return Pair{}, Subject{}, err
	}
	// Revocations this refresh could have known of before it consumed the
	// token are what refuses it; see the end of this function.
	epoch := s.rev.SIDEpoch()
	if p.sid == "" {
		return s.refreshLegacy(ctx, p.hash, epoch)
	}
	// TakeField is the single atomic step that decides which of racing
	// refreshes wins and, in the same step, leaves the token's fingerprint
	// among the login's used ones, so a loser always finds it. It is there
	// before anything can fail, so that even a refused token is recognised
	// as reused if it comes back.
	h, taken, used, err := s.st.TakeField(ctx, store.LoginKey(p.sid), store.FieldRefresh, store.FieldRefreshUsed, p.storedID(), refreshKeep)
	if err != nil {
		return Pair{}, Subject{}, fmt.Errorf("token: refresh: %w", err)
	}
	if !taken {
		if !used {
			return Pair{}, Subject{}, errRefreshUnknown
		}
		id, _, _ := store.ParseIdentity(h)
		sub, err := s.reusedBy(ctx, Subject{SID: p.sid, UserID: id.UserID, ClientID: id.ClientID})
		return Pair{}, sub, err
	}
	rec, err := decodeRefreshState(p.sid, h)
	if err != nil {
		return Pair{}, Subject{}, s.goneLogin(ctx, p.sid, err)
	}
	return s.rotate(ctx, rec, epoch, false)
}

// goneLogin revokes the family of sid when err is errRefreshLoginGone, and
// returns err.
func (s *Service) goneLogin(ctx context.Context, sid string, err error) error {
	if !errors.Is(err, errRefreshLoginGone) {
		return err
	}
	if rerr := s.RevokeFamily(ctx, sid); rerr != nil {
		return fmt.Errorf("%w (revoking the family failed: %w)", err, rerr)
	}
	return err
}

// refreshLegacy consumes a refresh token of the old kind, stored under
// ts:rt:<hash>; its successor is of the new kind.
func (s *Service) refreshLegacy(ctx context.Context, hash string, epoch uint64) (Pair, Subject, error) {
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
	var rec refreshRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.SID == "" || rec.User == "" {
		return Pair{}, Subject{}, errRefreshCorrupt
	}
	return s.rotate(ctx, &rec, epoch, true)
}

// rotate issues the successor of the consumed token rec; withIdentity as
// for issue (a token of the old kind may be the first in its login's hash).
func (s *Service) rotate(ctx context.Context, rec *refreshRecord, epoch uint64, withIdentity bool) (Pair, Subject, error) {
	now := s.cfg.Clock()
	if err := s.checkRecord(rec, now, epoch); err != nil {
		return Pair{}, Subject{}, err
	}
	sub := rec.subject()
	pair, err := s.issue(ctx, sub, now, rec.familyStart(), rec.famIsLogin, epoch, withIdentity)
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
	return s.reusedBy(ctx, Subject{SID: m.SID, UserID: m.User, ClientID: m.Client})
}

// reusedBy kills the family of a consumed refresh token that came back.
func (s *Service) reusedBy(ctx context.Context, sub Subject) (Subject, error) {
	if err := s.RevokeFamily(ctx, sub.SID); err != nil {
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
	p, err := parseRefresh(raw)
	if err != nil {
		return Subject{}, err
	}
	rec, err := s.lookup(ctx, p)
	if err != nil {
		return Subject{}, err
	}
	if err := s.checkRecord(rec, s.cfg.Clock(), s.rev.SIDEpoch()); err != nil {
		return Subject{}, err
	}
	return rec.subject(), nil
}

// lookup reads the record of a token that was issued and not consumed.
func (s *Service) lookup(ctx context.Context, p presentedRefresh) (*refreshRecord, error) {
	if p.sid != "" {
		h, err := s.st.HGetAll(ctx, store.LoginKey(p.sid))
		if err != nil {
			return nil, fmt.Errorf("token: lookup refresh: %w", err)
		}
		if !bytes.HasPrefix(h[store.FieldRefresh], p.storedID()) {
			return nil, errRefreshUnknown
		}
		rec, err := decodeRefreshState(p.sid, h)
		return rec, s.goneLogin(ctx, p.sid, err)
	}
	data, err := s.st.GetCtx(ctx, refreshKey(p.hash))
	if err != nil {
		return nil, fmt.Errorf("token: lookup refresh: %w", err)
	}
	if data == nil {
		return nil, errRefreshUnknown
	}
	var rec refreshRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.SID == "" || rec.User == "" {
		return nil, errRefreshCorrupt
	}
	return &rec, nil
}
