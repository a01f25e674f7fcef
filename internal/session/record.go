package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/netip"
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
//	r, r1...  what else never changes (creation, whether the login had
//	      tokens from its start, SHA-256 of the cookie secret when there is
//	      a cookie part, IP, User-Agent), encodeRecord; a and r are written
//	      in one step at creation, and a hash without r is not a login (a
//	      refresh racing a logout can leave a fragment). The token package
//	      reads the creation from r (store.LoginCreated) as its family start
//	s     last cookie activity, unix nanoseconds (throttled by TouchInterval)
//	f     last token activity (refresh, exchange) after the creation, unix
//	      nanoseconds; a login with tokens from its start has none until
//	      then, its creation is its last token activity
//
// Why so terse: Redis keeps a hash whose every value is at most 64 bytes
// (hash-max-listpack-value) as one packed allocation, and switches it to a
// real hash table costing about 500 bytes per login otherwise; a JSON record
// with a browser User-Agent always crossed that line. Short field names,
// integers as decimal (packed as integers) and binary strings cut into
// store.ChunkLen pieces keep a login packed whatever it holds, and every
// byte less can move the listpack a jemalloc size class down
// (docs/architecture.md, "Store layout"; BenchmarkLoginMemory in
// internal/httpapi measures it).
//
// Logins written before are read as they are: version 2 of r (creation, then
// cookie hash, IP as text and User-Agent as length-prefixed strings; f
// written at creation), and before that the fields rec = JSON, ck, seen,
// fam. Writes always use the new names, so such a login may carry both seen
// and s, and the later one counts.
//
// Deadlines are derived from these times and the current Options rather than
// stored, and liveness is always decided from them, never from the store TTL,
// which only collects garbage.
const (
	fieldRecord = store.FieldRecord
	fieldSeen   = "s"
	fieldFamily = "f"

	// The layout before issue 13, read only.
	fieldRecordJSON = "rec"
	fieldCookieV1   = "ck"
	fieldSeenV1     = "seen"
	fieldFamilyV1   = "fam"
)

// Versions of r, its first byte: recordVersion is written, recordVersion2
// only read.
const (
	recordVersion  = 3
	recordVersion2 = 2
)

// Flags of a version 3 record, the byte after the creation.
const (
	recCookie   = 1 << 0 // storedHashLen bytes of cookie hash follow
	recTokens   = 1 << 1 // the login had tokens from its creation
	recIPShift  = 2      // 2 bits: ipNone, ipV4, ipV6, ipText
	recIPMask   = 3 << recIPShift
	recKnownSet = recCookie | recTokens | recIPMask
)

// How a version 3 record holds the IP.
const (
	ipNone = iota
	ipV4   // 4 raw bytes
	ipV6   // 16 raw bytes
	ipText // what does not read back the same from raw bytes (a zone, a
	// non-canonical spelling, not an IP), as a uvarint length and its bytes
)

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
// creation (unix ns, 8 bytes big-endian, where store.LoginCreated finds it),
// a flags byte, the cookie hash when there is one, the IP (4 or 16 raw
// bytes, or text), then the User-Agent (packUserAgent) as a uvarint length
// and its bytes.
func encodeRecord(l *login) []byte {
	ua := packUserAgent(l.rec.UserAgent)
	b := make([]byte, 0, 1+8+1+len(l.secretHash)+binary.MaxVarintLen16+len(l.rec.IP)+len(ua))
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(l.rec.CreatedAt.UnixNano()))
	flags := byte(0)
	if l.hasCookie() {
		flags |= recCookie
	}
	if l.hasTokens() && l.famTouched.Equal(l.rec.CreatedAt) {
		flags |= recTokens
	}
	ipKind, ip := packIP(l.rec.IP)
	flags |= ipKind << recIPShift
	b = append(b, flags)
	b = append(b, l.secretHash...)
	b = append(b, ip...)
	return store.AppendBytes(b, ua)
}

// packIP is the kind and stored bytes of ip.
func packIP(ip string) (kind byte, b []byte) {
	if ip == "" {
		return ipNone, nil
	}
	if a, err := netip.ParseAddr(ip); err == nil && a.String() == ip {
		if a.Is4() {
			v := a.As4()
			return ipV4, v[:]
		}
		if a.Zone() == "" {
			v := a.As16()
			return ipV6, v[:]
		}
	}
	return ipText, store.AppendString(nil, ip)
}

func (l *login) identity() store.Identity {
	return store.Identity{UserID: l.rec.UserID, Email: l.rec.Email, ClientID: l.rec.ClientID, Roles: l.rec.Roles}
}

// loginFields are the fields Create writes.
func loginFields(l *login) []store.Field {
	fields := append(store.IdentityFields(l.identity()), store.Chunks(fieldRecord, encodeRecord(l))...)
	if l.hasTokens() && !l.famTouched.Equal(l.rec.CreatedAt) {
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
	if len(enc) < 9 {
		return errCorrupt
	}
	l.rec.CreatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(enc[1:9]))).UTC()
	switch enc[0] {
	case recordVersion:
		return decodeRecord3(l, enc[9:])
	case recordVersion2:
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
	return errCorrupt
}

// decodeRecord3 reads a version 3 record after its creation.
func decodeRecord3(l *login, b []byte) error {
	if len(b) < 1 || b[0]&^recKnownSet != 0 {
		return errCorrupt
	}
	flags := b[0]
	b = b[1:]
	if flags&recCookie != 0 {
		if len(b) < storedHashLen {
			return errCorrupt
		}
		l.secretHash = slices.Clone(b[:storedHashLen])
		b = b[storedHashLen:]
	}
	if flags&recTokens != 0 {
		l.famTouched = l.rec.CreatedAt
	}
	switch (flags & recIPMask) >> recIPShift {
	case ipV4:
		if len(b) < 4 {
			return errCorrupt
		}
		l.rec.IP = netip.AddrFrom4([4]byte(b[:4])).String()
		b = b[4:]
	case ipV6:
		if len(b) < 16 {
			return errCorrupt
		}
		l.rec.IP = netip.AddrFrom16([16]byte(b[:16])).String()
		b = b[16:]
	}
	r := store.Reader{B: b}
	if (flags&recIPMask)>>recIPShift == ipText {
		if l.rec.IP = r.String(); l.rec.IP == "" {
			return errCorrupt
		}
	}
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
