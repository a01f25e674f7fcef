package session

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// One login is one store hash under ts:sess:<sid>. Its fields are written
// independently so that concurrent writers never overwrite each other and a
// writer racing a logout cannot bring the login back:
//
//	rec   JSON of what never changes (user, client, roles, creation, IP, UA);
//	      written last at creation, so a hash without it is not a login
//	ck    SHA-256 of the cookie secret; present only while the cookie part lives
//	seen  last cookie activity, unix nanoseconds (throttled by TouchInterval)
//	fam   last token activity (issue or refresh), unix nanoseconds; present
//	      only when tokens were issued for this sid
//
// Deadlines are derived from these times and the current Config rather than
// stored, and liveness is always decided from them, never from the store TTL,
// which only collects garbage.
const (
	fieldRecord = "rec"
	fieldCookie = "ck"
	fieldSeen   = "seen"
	fieldFamily = "fam"
)

func sessionKey(sid string) string { return "ts:sess:" + sid }
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

// decodeLogin returns nil, nil when the hash holds no login (absent, or a
// fragment left by a write that raced a delete).
func decodeLogin(sid string, h map[string][]byte) (*login, error) {
	raw, ok := h[fieldRecord]
	if !ok {
		return nil, nil
	}
	l := &login{sid: sid}
	if err := json.Unmarshal(raw, &l.rec); err != nil || l.rec.UserID == "" {
		return nil, errCorrupt
	}
	l.seen = l.rec.CreatedAt
	if ck, ok := h[fieldCookie]; ok {
		l.secretHash = ck
	}
	if s, ok := h[fieldSeen]; ok {
		t, err := decodeTime(s)
		if err != nil {
			return nil, errCorrupt
		}
		if t.After(l.seen) {
			l.seen = t
		}
	}
	if s, ok := h[fieldFamily]; ok {
		t, err := decodeTime(s)
		if err != nil {
			return nil, errCorrupt
		}
		l.famTouched = t
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
