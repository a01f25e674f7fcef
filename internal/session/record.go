package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

// One login is one store hash under store.LoginKey(sid) (ts:sess:<sid>),
// shared with package token, which keeps the login's current refresh token
// in it (store/login.go). Its fields are written independently so that
// concurrent writers never overwrite each other and a writer racing a logout
// cannot bring the login back:
//
//	a, a1...  who: user, email, client, roles (store.EncodeIdentity); the
//	      token package reads it to refresh, so it is stored once
//	r, r1...  what else never changes (creation, SHA-256 of the cookie
//	      secret when there is a cookie part, IP, User-Agent), encodeRecord;
//	      a, r and f are written in one step at creation, and a hash without
//	      r is not a login (a refresh racing a logout can leave a fragment)
//	s     last cookie activity, unix nanoseconds (throttled by TouchInterval)
//	f     last token activity (issue or refresh), unix nanoseconds; present
//	      only when tokens were issued for this sid
//
// Why so terse: Redis keeps a hash whose every value is at most 64 bytes
// (hash-max-listpack-value) as one packed allocation, and switches it to a
// real hash table costing about 500 bytes per login otherwise; a JSON record
// with a browser User-Agent always crossed that line. Short field names,
// integers as decimal (packed as integers) and binary strings cut into
// store.ChunkLen pieces keep a login packed whatever it holds
// (docs/architecture.md, "Store layout"; BenchmarkLoginMemory in
// internal/httpapi measures it).
//
// Logins written before this layout (fields rec = JSON, ck, seen, fam) are
// read as they are; writes always use the new names, so such a login may
// carry both seen and s, and the later one counts.
//
// Deadlines are derived from these times and the current Options rather than
// stored, and liveness is always decided from them, never from the store TTL,
// which only collects garbage.
const (
	fieldRecord = "r"
	fieldSeen   = "s"
	fieldFamily = "f"

	// The layout before issue 13, read only.
	fieldRecordJSON = "rec"
	fieldCookieV1   = "ck"
	fieldSeenV1     = "seen"
	fieldFamilyV1   = "fam"
)

// recordVersion is the first byte of an encoded record.
const recordVersion = 2

func sessionKey(sid string) string { return store.LoginKey(sid) }
func userKey(userID string) string { return "ts:usess:" + userID }

type record struct {
	UserID    string    `json:"uid"`
	Email     string    `json:"email,omitempty"`
	ClientID  string    `json:"cid,omitempty"`
	Roles     []string  `json:"roles,omitempty"`
	CreatedAt time.Time `json:"created"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"ua,omitempty"`
}

type login struct {
	sid        string
	rec        record
	secretHash []byte    // nil: no cookie part
	seen       time.Time // last cookie activity; CreatedAt until touched
	famTouched time.Time // zero: no tokens
}

var errCorrupt = errors.New("session: corrupt record")

// encodeRecord is what never changes of l but its identity: version,
// creation (unix ns, 8 bytes big-endian), then the cookie hash, IP and
// User-Agent (packUserAgent), each as a uvarint length and its bytes.
func encodeRecord(l *login) []byte {
	b := make([]byte, 0, 1+8+3*binary.MaxVarintLen16+len(l.secretHash)+len(l.rec.IP)+len(l.rec.UserAgent))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(l.rec.CreatedAt.UnixNano()))
	b = store.AppendBytes(b, l.secretHash)
	b = store.AppendString(b, l.rec.IP)
	return store.AppendBytes(b, packUserAgent(l.rec.UserAgent))
}

func (l *login) identity() store.Identity {
	return store.Identity{UserID: l.rec.UserID, Email: l.rec.Email, ClientID: l.rec.ClientID, Roles: l.rec.Roles}
}

// loginFields are the fields Create writes.
func loginFields(l *login) []store.Field {
	fields := append(store.IdentityFields(l.identity()), store.Chunks(fieldRecord, encodeRecord(l))...)
	if l.hasTokens() {
		fields = append(fields, store.Field{Name: fieldFamily, Value: encodeTime(l.famTouched)})
	}
	return fields
}

// decodeRecord fills l from the identity and record fields of h.
func decodeRecord(l *login, h map[string][]byte) error {
	id, ok, err := store.ParseIdentity(h)
	if err != nil || !ok {
		return errCorrupt
	}
	l.rec.UserID, l.rec.Email, l.rec.ClientID, l.rec.Roles = id.UserID, id.Email, id.ClientID, id.Roles
	enc := store.Joined(h, fieldRecord)
	if len(enc) < 9 || enc[0] != recordVersion {
		return errCorrupt
	}
	l.rec.CreatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(enc[1:9]))).UTC()
	r := store.Reader{B: enc[9:]}
	if ck := r.Bytes(); len(ck) > 0 {
		l.secretHash = slices.Clone(ck)
	}
	l.rec.IP = r.String()
	ua, ok := unpackUserAgent(r.Bytes())
	if !ok || !r.Done() {
		return errCorrupt
	}
	l.rec.UserAgent = ua
	return nil
}

// decodeLogin returns nil, nil when the hash holds no login (absent, or a
// fragment left by a write that raced a delete). It reads both layouts.
func decodeLogin(sid string, h map[string][]byte) (*login, error) {
	l := &login{sid: sid}
	if _, ok := h[fieldRecord]; ok {
		if err := decodeRecord(l, h); err != nil {
			return nil, err
		}
	} else if raw, ok := h[fieldRecordJSON]; ok {
		if err := json.Unmarshal(raw, &l.rec); err != nil || l.rec.UserID == "" {
			return nil, errCorrupt
		}
		if ck, ok := h[fieldCookieV1]; ok {
			l.secretHash = ck
		}
	} else {
		return nil, nil
	}
	l.seen = l.rec.CreatedAt
	for _, f := range []string{fieldSeen, fieldSeenV1} {
		if s, ok := h[f]; ok {
			t, err := decodeTime(s)
			if err != nil {
				return nil, errCorrupt
			}
			if t.After(l.seen) {
				l.seen = t
			}
		}
	}
	for _, f := range []string{fieldFamily, fieldFamilyV1} {
		if s, ok := h[f]; ok {
			t, err := decodeTime(s)
			if err != nil {
				return nil, errCorrupt
			}
			if t.After(l.famTouched) {
				l.famTouched = t
			}
		}
	}
	return l, nil
}

func encodeTime(t time.Time) []byte { return strconv.AppendInt(nil, t.UnixNano(), 10) }

func decodeTime(b []byte) (time.Time, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n).UTC(), nil
}

func (l *login) hasCookie() bool { return l.secretHash != nil }
func (l *login) hasTokens() bool { return !l.famTouched.IsZero() }

func (l *login) idleEnd(c *Options) time.Time { return l.seen.Add(c.IdleTimeout) }
func (l *login) absoluteEnd(c *Options) time.Time {
	return l.rec.CreatedAt.Add(c.AbsoluteTimeout)
}

// cookieEnd is when the cookie part dies (zero without one).
func (l *login) cookieEnd(c *Options) time.Time {
	if !l.hasCookie() {
		return time.Time{}
	}
	end := l.idleEnd(c)
	if abs := l.absoluteEnd(c); abs.Before(end) {
		end = abs
	}
	return end
}

// familyEnd is when the login dies for its tokens (zero without tokens).
func (l *login) familyEnd(c *Options) time.Time {
	if !l.hasTokens() {
		return time.Time{}
	}
	return l.famTouched.Add(c.FamilyTTL)
}

func (l *login) cookieLive(c *Options, now time.Time) bool {
	return l.hasCookie() && now.Before(l.cookieEnd(c))
}

func (l *login) familyLive(c *Options, now time.Time) bool {
	return l.hasTokens() && now.Before(l.familyEnd(c))
}

func (l *login) live(c *Options, now time.Time) bool {
	return l.cookieLive(c, now) || l.familyLive(c, now)
}

// expiredGrace keeps a dead login's record this long after its last
// deadline, so that a client returning with its old cookie is told "expired"
// (and counted so) rather than "invalid". The record holds no usable secret.
const expiredGrace = 24 * time.Hour

// ttl is the store expiry that keeps the login while either part lives, plus
// expiredGrace.
func (l *login) ttl(c *Options, now time.Time) time.Duration {
	end := l.cookieEnd(c)
	if f := l.familyEnd(c); f.After(end) {
		end = f
	}
	return max(end.Sub(now), 0) + expiredGrace
}

// view is the caller-facing picture at now. A dead cookie part is reported
// as absent even before anyone has dropped it from the store.
func (l *login) view(c *Options, now time.Time) *Session {
	s := &Session{
		SID:        l.sid,
		UserID:     l.rec.UserID,
		Email:      l.rec.Email,
		ClientID:   l.rec.ClientID,
		Roles:      append([]string(nil), l.rec.Roles...),
		CreatedAt:  l.rec.CreatedAt,
		LastSeenAt: l.seen,
		HasTokens:  l.familyLive(c, now),
		IP:         l.rec.IP,
		UserAgent:  l.rec.UserAgent,
	}
	if l.famTouched.After(s.LastSeenAt) {
		s.LastSeenAt = l.famTouched
	}
	if l.cookieLive(c, now) {
		s.HasCookie = true
		s.IdleExpiresAt = l.idleEnd(c)
		s.AbsoluteExpiresAt = l.absoluteEnd(c)
	}
	return s
}
