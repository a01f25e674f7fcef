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

// One login is one store hash under ts:sess:<sid>. Its fields are written
// independently so that concurrent writers never overwrite each other and a
// writer racing a logout cannot bring the login back:
//
//	r, r1, r2...  what never changes (user, email, client, roles, creation,
//	      IP, UA, SHA-256 of the cookie secret when there is a cookie part) in
//	      the compact binary form of encodeRecord, cut into pieces of at most
//	      recordChunk bytes; written in one step at creation, so a hash
//	      without r is not a login
//	s     last cookie activity, unix nanoseconds (throttled by TouchInterval)
//	f     last token activity (issue or refresh), unix nanoseconds; present
//	      only when tokens were issued for this sid
//
// Why so terse: Redis keeps a hash whose every value is at most 64 bytes
// (hash-max-listpack-value) as one packed allocation, and switches it to a
// real hash table costing about 500 bytes per login otherwise; a JSON record
// with a browser User-Agent always crossed that line. Short field names,
// integers as decimal (packed as integers) and binary strings keep a login in
// the packed form whatever its User-Agent (docs/architecture.md, "Store
// layout"; BenchmarkLoginMemory in internal/httpapi measures it).
//
// Logins written before this layout (fields rec = JSON, ck, seen, fam) are
// read as they are; writes always use the new names, so such a login may
// carry both seen and s, and the later one counts.
//
// Deadlines are derived from these times and the current Config rather than
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

// recordChunk is Redis's default hash-max-listpack-value: no field value
// longer than it, so the hash stays packed.
const recordChunk = 64

// recordVersion is the first byte of an encoded record.
const recordVersion = 2

func sessionKey(sid string) string { return "ts:sess:" + sid }
func userKey(userID string) string { return "ts:usess:" + userID }

// recordField is the name of the i-th piece of the record.
func recordField(i int) string {
	if i == 0 {
		return fieldRecord
	}
	return fieldRecord + strconv.Itoa(i)
}

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

// encodeRecord is the immutable part of l: version, creation (unix ns, 8
// bytes big-endian), then the cookie hash, user, email, client, roles (count,
// then each), IP and User-Agent, each as a uvarint length and its bytes.
func encodeRecord(l *login) []byte {
	r := &l.rec
	n := 1 + 8 + 8*binary.MaxVarintLen16 + len(l.secretHash) + len(r.UserID) + len(r.Email) +
		len(r.ClientID) + len(r.IP) + len(r.UserAgent)
	for _, role := range r.Roles {
		n += binary.MaxVarintLen16 + len(role)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(r.CreatedAt.UnixNano()))
	b = appendBytes(b, l.secretHash)
	for _, s := range []string{r.UserID, r.Email, r.ClientID} {
		b = appendBytes(b, []byte(s))
	}
	b = binary.AppendUvarint(b, uint64(len(r.Roles)))
	for _, role := range r.Roles {
		b = appendBytes(b, []byte(role))
	}
	b = appendBytes(b, []byte(r.IP))
	return appendBytes(b, []byte(r.UserAgent))
}

func appendBytes(b, s []byte) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }

// recordFields cuts an encoded record into its hash fields.
func recordFields(enc []byte) []store.Field {
	fields := make([]store.Field, 0, (len(enc)+recordChunk-1)/recordChunk)
	for i := 0; len(enc) > 0; i++ {
		n := min(len(enc), recordChunk)
		fields = append(fields, store.Field{Name: recordField(i), Value: enc[:n]})
		enc = enc[n:]
	}
	return fields
}

// recordReader reads what encodeRecord wrote; the first error sticks.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) bytes() []byte {
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k) {
		r.bad = true
		return nil
	}
	s := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return s
}

func (r *recordReader) string() string { return string(r.bytes()) }

// decodeRecord fills l from the pieces r, r1, ... of h.
func decodeRecord(l *login, h map[string][]byte) error {
	enc := h[fieldRecord]
	if len(h) > 1 {
		enc = slices.Clone(enc)
		for i := 1; ; i++ {
			part, ok := h[recordField(i)]
			if !ok {
				break
			}
			enc = append(enc, part...)
		}
	}
	if len(enc) < 9 || enc[0] != recordVersion {
		return errCorrupt
	}
	r := recordReader{b: enc[9:]}
	l.rec.CreatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(enc[1:9]))).UTC()
	if ck := r.bytes(); len(ck) > 0 {
		l.secretHash = slices.Clone(ck)
	}
	l.rec.UserID, l.rec.Email, l.rec.ClientID = r.string(), r.string(), r.string()
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)) {
		return errCorrupt
	}
	r.b = r.b[k:]
	for range n {
		l.rec.Roles = append(l.rec.Roles, r.string())
	}
	l.rec.IP, l.rec.UserAgent = r.string(), r.string()
	if r.bad || len(r.b) != 0 || l.rec.UserID == "" {
		return errCorrupt
	}
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

func (l *login) idleEnd(c *Config) time.Time { return l.seen.Add(c.IdleTimeout) }
func (l *login) absoluteEnd(c *Config) time.Time {
	return l.rec.CreatedAt.Add(c.AbsoluteTimeout)
}

// cookieEnd is when the cookie part dies (zero without one).
func (l *login) cookieEnd(c *Config) time.Time {
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
func (l *login) familyEnd(c *Config) time.Time {
	if !l.hasTokens() {
		return time.Time{}
	}
	return l.famTouched.Add(c.FamilyTTL)
}

func (l *login) cookieLive(c *Config, now time.Time) bool {
	return l.hasCookie() && now.Before(l.cookieEnd(c))
}

func (l *login) familyLive(c *Config, now time.Time) bool {
	return l.hasTokens() && now.Before(l.familyEnd(c))
}

func (l *login) live(c *Config, now time.Time) bool {
	return l.cookieLive(c, now) || l.familyLive(c, now)
}

// expiredGrace keeps a dead login's record this long after its last
// deadline, so that a client returning with its old cookie is told "expired"
// (and counted so) rather than "invalid". The record holds no usable secret.
const expiredGrace = 24 * time.Hour

// ttl is the store expiry that keeps the login while either part lives, plus
// expiredGrace.
func (l *login) ttl(c *Config, now time.Time) time.Duration {
	end := l.cookieEnd(c)
	if f := l.familyEnd(c); f.After(end) {
		end = f
	}
	return max(end.Sub(now), 0) + expiredGrace
}

// view is the caller-facing picture at now. A dead cookie part is reported
// as absent even before anyone has dropped it from the store.
func (l *login) view(c *Config, now time.Time) *Session {
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
