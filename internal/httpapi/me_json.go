package httpapi

import (
	"hash/maphash"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// GET /auth/me answers on every authenticated page load, so its JSON is
// appended into a buffer instead of going through encoding/json's
// reflection (a third of a cached bearer request, and two allocations).
// The bytes are the same as json.Marshal(meResponse) would write:
// TestMeJSONMatchesEncodingJSON and FuzzMeJSON hold the two together, and
// anything the fast path does not handle byte for byte (a string that needs
// escaping, a date outside 0000-9999) goes through the app's JSON encoder.
//
// The same login asks again and again with the same identity, so the body
// is rendered once and kept in a meCache (see there for why that is safe).

// writeMe answers p as GET /auth/me's JSON.
func (s *Server) writeMe(c *fiber.Ctx, p *auth.Principal) error {
	body, err := s.meBodies.body(c, p)
	if err != nil {
		return err
	}
	// A copy into the answer's own buffer: the cached bytes are shared by
	// every request of the login and must never be written through.
	c.Response().SetBody(body)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	return nil
}

func meResponseOf(p *auth.Principal) meResponse {
	r := meResponse{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: nonNil(p.Roles), Scheme: p.Scheme.String(), SID: p.SID, Source: p.Source}
	if !p.ExpiresAt.IsZero() {
		r.ExpiresAt = &p.ExpiresAt
	}
	return r
}

// meCacheSlots bounds the cache: at most this many rendered bodies (a few
// hundred bytes each) are kept. More logins than slots only means more
// renders, never a wrong answer.
const meCacheSlots = 4096

// meCache keeps the last /auth/me body rendered for a login, in a slot
// chosen by a hash of its sid. An entry holds the very values its body was
// rendered from, and is served only when every one of them equals the
// principal's: the body is a pure function of those values, so a hit is
// byte for byte what rendering would write, whoever the slot last served.
// The slot key only decides where to look, never whether an entry applies.
// Comparing is cheap: near-cache and token-cache principals share their
// strings with the entry, and Go compares equal pointers without reading
// the bytes. Entries are immutable once stored; slots are swapped
// atomically, so concurrent requests need no lock.
type meCache struct {
	seed  maphash.Seed
	slots [meCacheSlots]atomic.Pointer[meEntry]
}

type meEntry struct {
	// The rendered values of the principal (not its TokenID, nor its
	// LegacyID, a bearer secret that must not be kept here).
	userID, email, clientID, sid, source string
	roles                                []string // a copy: the entry never aliases a caller's slice
	scheme                               auth.Scheme
	expiresAt                            time.Time
	body                                 []byte
}

func newMeCache() *meCache { return &meCache{seed: maphash.MakeSeed()} }

// body is p's /auth/me JSON, from the cache or freshly rendered (and then
// cached). The caller must not modify it.
func (m *meCache) body(c *fiber.Ctx, p *auth.Principal) ([]byte, error) {
	key := p.SID
	if key == "" {
		key = p.UserID
	}
	slot := &m.slots[maphash.String(m.seed, key)%meCacheSlots]
	if e := slot.Load(); e != nil && e.renders(p) {
		return e.body, nil
	}
	body, err := renderMe(c, p)
	if err != nil {
		return nil, err
	}
	slot.Store(&meEntry{
		userID: p.UserID, email: p.Email, clientID: p.ClientID, sid: p.SID, source: p.Source,
		roles: slices.Clone(p.Roles), scheme: p.Scheme, expiresAt: p.ExpiresAt, body: body,
	})
	return body, nil
}

// renders reports whether e's body is p's: every value the body shows is
// the same. The time is compared as a value (instant and location), not
// with Equal: the same instant in another zone is written differently.
// Roles nil and empty both render [] (nonNil), so slices.Equal treating
// them alike is right.
func (e *meEntry) renders(p *auth.Principal) bool {
	return e.userID == p.UserID && e.email == p.Email && e.clientID == p.ClientID &&
		e.sid == p.SID && e.source == p.Source && e.scheme == p.Scheme &&
		e.expiresAt == p.ExpiresAt && slices.Equal(e.roles, p.Roles)
}

// renderMe renders p's body into a new slice.
func renderMe(c *fiber.Ctx, p *auth.Principal) ([]byte, error) {
	var buf [512]byte
	if b, ok := appendMe(buf[:0], p); ok {
		return slices.Clone(b), nil
	}
	// What c.JSON would write, with the app's encoder.
	return c.App().Config().JSONEncoder(meResponseOf(p))
}

// appendMe appends meResponseOf(p) as JSON, or reports false when a value
// needs what only encoding/json does (escapes, unusual dates).
func appendMe(b []byte, p *auth.Principal) ([]byte, bool) {
	ok := true
	str := func(key, s string) {
		b = append(b, key...)
		if !plainJSON(s) {
			ok = false
			return
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	str(`{"user_id":`, p.UserID)
	str(`,"email":`, p.Email)
	str(`,"client_id":`, p.ClientID)
	b = append(b, `,"roles":[`...)
	for i, r := range p.Roles {
		if i > 0 {
			b = append(b, ',')
		}
		str("", r)
	}
	b = append(b, ']')
	str(`,"scheme":`, p.Scheme.String())
	str(`,"sid":`, p.SID)
	if t := p.ExpiresAt; !t.IsZero() {
		// time.Time.MarshalJSON is RFC 3339 with nanoseconds, and refuses
		// years outside 0-9999 and offsets with seconds.
		_, off := t.Zone()
		if y := t.Year(); y < 0 || y > 9999 || off%60 != 0 {
			return b, false
		}
		b = append(b, `,"expires_at":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if p.Source != "" {
		str(`,"source":`, p.Source)
	}
	b = append(b, '}')
	return b, ok
}

// plainJSON reports whether encoding/json writes s as is between quotes:
// printable ASCII without the characters it escapes (quote, backslash and,
// for HTML safety, <, > and &).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainJSONByte[s[i]] {
			return false
		}
	}
	return true
}

// plainJSONByte[c] says whether encoding/json writes byte c as is.
var plainJSONByte = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
