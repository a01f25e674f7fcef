// Package session is the login registry: every login gets a public session
// id (sid) that tokens carry as their sid claim, and may carry a server-side
// cookie session, whose cookie value is "<sid>.<secret>". The store keeps only
// a SHA-256 of the secret. The package never logs; callers must log the sid
// only, never a cookie value.
package session

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// ErrLimitReached: Create with LimitRefuse and the user at MaxPerUser.
var ErrLimitReached = errors.New("session: per-user session limit reached")

// Session is one login as callers see it.
type Session struct {
	SID        string    `json:"sid"`
	UserID     string    `json:"user_id"`
	Email      string    `json:"email,omitempty"`
	ClientID   string    `json:"client_id,omitempty"`
	Roles      []string  `json:"roles,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// Zero when HasCookie is false.
	IdleExpiresAt     time.Time `json:"idle_expires_at,omitzero"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at,omitzero"`
	HasCookie         bool      `json:"has_cookie"`
	HasTokens         bool      `json:"has_tokens"`
	IP                string    `json:"ip,omitempty"`
	UserAgent         string    `json:"user_agent,omitempty"`

	// Evicted is set only on the Session Create returns: the sids of other
	// logins Create ended (the one named by NewSession.Replace, and those
	// evicted by the per-user limit). Their tokens must be revoked too.
	Evicted []string `json:"-"`

	// verified is the login as Verify read it, for a later Touch; with the
	// near cache it is shared and never modified, and entry holds its
	// moving last-seen.
	verified *login
	entry    *cacheEntry
}

// NewSession describes a login to register.
type NewSession struct {
	UserID, Email, ClientID string
	Roles                   []string
	IP, UserAgent           string
	// Cookie creates a cookie session; without it the login is token-only.
	Cookie bool
	// Tokens: tokens will be issued for this sid, which starts its family life.
	Tokens bool
	// AuthAt is when the account state this login rests on was read (before
	// its password was checked); zero means now. The login is dated by it
	// (CreatedAt), so a per-user revocation taken after it (password change,
	// suspension, log out everywhere) ends this login even when the login is
	// written after the revocation. It only moves CreatedAt earlier.
	AuthAt time.Time
	// Replace is the cookie value the client presented at login, if any. Its
	// login is destroyed so that a planted session id cannot survive login
	// (fixation). Only a cookie whose secret matches is honoured: the sid
	// alone is public.
	Replace string
}

// Manager creates, checks and ends logins in a store.Store.
type Manager struct {
	st      store.Store
	cfg     Options
	cache   *nearCache // nil: every Verify reads the store
	touches touchQueue
}

// New validates cfg and fills its defaults.
func New(st store.Store, cfg Options) (*Manager, error) {
	if st == nil {
		return nil, errors.New("session: nil store")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{st: st, cfg: c}
	if c.Revocations != nil && c.CacheBytes > 0 {
		m.cache = newNearCache(c.CacheBytes, c.CacheTTL)
	}
	return m, nil
}

// Create registers a login. cookieValue is "" unless ns.Cookie. With
// LimitRefuse and the user at MaxPerUser it fails with ErrLimitReached.
func (m *Manager) Create(ctx context.Context, ns NewSession) (s *Session, cookieValue string, err error) {
	if ns.UserID == "" {
		return nil, "", errors.New("session: NewSession.UserID is empty")
	}
	if !ns.Cookie && !ns.Tokens {
		return nil, "", errors.New("session: NewSession needs Cookie or Tokens")
	}
	var evicted []string
	if ns.Replace != "" {
		sid, err := m.destroyPresented(ctx, ns.Replace)
		if err != nil {
			return nil, "", err
		}
		if sid != "" {
			evicted = append(evicted, sid)
		}
	}
	if m.cfg.MaxPerUser > 0 {
		out, err := m.makeRoom(ctx, ns.UserID)
		if err != nil {
			return nil, "", err
		}
		evicted = append(evicted, out...)
	}

	sid, err := newSID(m.cfg.Rand)
	if err != nil {
		return nil, "", err
	}
	now := m.cfg.Clock()
	created := now
	if !ns.AuthAt.IsZero() && ns.AuthAt.Before(now) {
		created = ns.AuthAt
	}
	l := &login{
		sid: sid,
		rec: record{
			UserID: ns.UserID, Email: ns.Email, ClientID: ns.ClientID,
			Roles: slices.Clone(ns.Roles), CreatedAt: created,
			IP: ns.IP, UserAgent: ns.UserAgent,
		},
		seen: created,
	}
	var secretEnc string
	if ns.Cookie {
		enc, secret, err := randomToken(m.cfg.Rand, secretBytes)
		if err != nil {
			return nil, "", err
		}
		secretEnc, l.secretHash = enc, storedHash(secret)
	}
	if ns.Tokens {
		l.famTouched = created // so the record need not store it (record.go)
	}
	if err := m.write(ctx, l, now); err != nil {
		return nil, "", err
	}
	m.pruneIndex(ctx, ns.UserID, sid, now)
	s = l.view(&m.cfg, now)
	s.Evicted = evicted
	if ns.Cookie {
		cookieValue = sid + "." + secretEnc
	}
	return s, cookieValue, nil
}

// write stores a new login in one step (identity, record with the cookie
// hash, and family together, so no reader sees a login without them); then the user index,
// whose expiry covers the longest the login can live without another index
// write (cookie touches never pass the absolute deadline; TouchFamily
// refreshes the index itself).
func (m *Manager) write(ctx context.Context, l *login, now time.Time) error {
	key, ttl := sessionKey(l.sid), l.ttl(&m.cfg, now)
	if err := m.st.HSetFields(ctx, key, ttl, loginFields(l)...); err != nil {
		return fmt.Errorf("session: create: %w", err)
	}
	indexTTL := ttl
	if l.hasCookie() {
		indexTTL = max(indexTTL, m.cfg.AbsoluteTimeout)
	}
	if err := m.st.SAdd(ctx, userKey(l.rec.UserID), indexTTL, l.sid); err != nil {
		return fmt.Errorf("session: create: %w", err)
	}
	return nil
}

// pruneBatch bounds the records one login reads to prune its user's index.
// A login adds one entry and removes up to pruneBatch dead ones, so the index
// stays within about live + live/pruneBatch entries however many logins are
// abandoned.
const pruneBatch = 32

// pruneIndex drops from the user's index the entries whose login is gone or
// dead, reading at most pruneBatch records from a random place in the index
// (the store gives no order, so a fixed place could keep reading the same
// live ones). Without it, abandoned logins stayed in the index until an admin
// listing pruned it, since every login extends the index's expiry. Best
// effort: a failure leaves entries that the next login or listing prunes.
func (m *Manager) pruneIndex(ctx context.Context, userID, newSID string, now time.Time) {
	sids, err := m.st.SMembers(ctx, userKey(userID))
	if err != nil || len(sids) <= 1 {
		return
	}
	n := min(len(sids), pruneBatch)
	start := mathrand.IntN(len(sids))
	var dead []string
	for i := range n {
		sid := sids[(start+i)%len(sids)]
		if sid == newSID {
			continue
		}
		l, err := m.load(ctx, sid)
		if err != nil && !errors.Is(err, errCorrupt) {
			return
		}
		if l == nil || l.rec.UserID != userID || !l.live(&m.cfg, now) {
			dead = append(dead, sid)
		}
	}
	if len(dead) > 0 {
		_ = m.st.SRem(ctx, userKey(userID), dead...)
	}
}

// destroyPresented ends the login of a cookie presented at login, if its
// secret matches, and returns its sid.
func (m *Manager) destroyPresented(ctx context.Context, value string) (string, error) {
	sid, secret, ok := parseCookie(value)
	if !ok {
		return "", nil
	}
	l, err := m.load(ctx, sid)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			return "", nil
		}
		return "", err
	}
	if l == nil || !l.hasCookie() || !secretMatches(&secret, l.secretHash) {
		return "", nil
	}
	if err := m.remove(ctx, l.sid, l.rec.UserID); err != nil {
		return "", err
	}
	return sid, nil
}

// makeRoom applies the per-user limit before a new login is added.
func (m *Manager) makeRoom(ctx context.Context, userID string) ([]string, error) {
	live, err := m.ListByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	excess := len(live) - m.cfg.MaxPerUser + 1
	if excess <= 0 {
		return nil, nil
	}
	if m.cfg.OnLimit == LimitRefuse {
		return nil, ErrLimitReached
	}
	var evicted []string
	for _, s := range live[:excess] { // oldest first
		if err := m.remove(ctx, s.SID, userID); err != nil {
			return evicted, err
		}
		evicted = append(evicted, s.SID)
	}
	return evicted, nil
}

// Authenticate checks a cookie value and records the use (Verify then Touch),
// for callers that accept every verified session. A request that may still be
// refused after the check (by the migration phase, by CSRF) must use Verify
// and Touch only once it is accepted, so a refused request never extends the
// session's idle deadline.
func (m *Manager) Authenticate(ctx context.Context, cookieValue string) (*Session, error) {
	s, err := m.Verify(ctx, cookieValue)
	if err != nil {
		return nil, err
	}
	m.Touch(ctx, s)
	return s, nil
}

// Verify checks a cookie value and returns its login without recording the
// use. Garbage, unknown sids and wrong secrets wrap auth.ErrInvalid; a cookie
// past its idle or absolute deadline wraps auth.ErrExpired, every time, for as
// long as the record exists (expiredGrace): dropping the cookie part at the
// first refusal made the next request with the same cookie "invalid", so one
// expiry was counted as an expired and then as invalid requests. A store
// failure wraps auth.ErrUnavailable. The secret is checked before the
// deadlines, so someone holding only the public sid can neither learn nor
// change anything.
func (m *Manager) Verify(ctx context.Context, cookieValue string) (*Session, error) {
	r, err := m.verify(ctx, cookieValue)
	if err != nil {
		return nil, err
	}
	l := r.l
	if r.hit {
		// The cached login is shared: the view gets the entry's moving
		// last-seen on a copy.
		v := *l
		v.seen = time.Unix(0, r.seenNS).UTC()
		l = &v
	}
	s := l.view(&m.cfg, r.now)
	s.verified = r.l
	s.entry = r.e
	return s, nil
}

// verified is one successful verify: the login (shared with the near cache
// when e is set: never modified), its last-seen as this instance knows it
// (seen from the store, seenNS on a hit), and the time the deadlines were
// checked at.
type verified struct {
	l      *login
	e      *cacheEntry
	seen   time.Time
	seenNS int64
	now    time.Time
	hit    bool // answered from the near cache, mirror checks included
}

// verify is Verify without the caller-facing view, so that Check can answer
// a near-cache hit without allocating.
func (m *Manager) verify(ctx context.Context, cookieValue string) (verified, error) {
	sid, secretEnc, ok := cookieParts(cookieValue)
	if !ok {
		return verified{}, fmt.Errorf("session: malformed cookie: %w", auth.ErrInvalid)
	}
	loadedAt := m.cfg.Clock()
	if m.cache != nil {
		if e, seenNS, ok := m.verifyCached(sid, secretEnc, loadedAt); ok {
			return verified{l: e.l, e: e, seenNS: seenNS, now: loadedAt, hit: true}, nil
		}
	}
	// Not answered by the near cache: nothing about the cookie is known.
	secret, ok := hashPresented(secretEnc)
	if !ok || !ValidSID(sid) {
		return verified{}, fmt.Errorf("session: malformed cookie: %w", auth.ErrInvalid)
	}
	// The cookie's bytes are the request's (Fiber's c.Cookies is a view of
	// a buffer the server reuses): the login, and through it the near
	// cache's key and shared principal, get a copy of the sid.
	sid = strings.Clone(sid)
	l, err := m.load(ctx, sid)
	if errors.Is(err, errCorrupt) {
		return verified{}, fmt.Errorf("session %s: %w: %w", sid, err, auth.ErrInvalid)
	}
	if err != nil {
		return verified{}, err
	}
	if l == nil || !l.hasCookie() {
		return verified{}, fmt.Errorf("session %s: no such cookie session: %w", sid, auth.ErrInvalid)
	}
	if !secretMatches(&secret, l.secretHash) {
		return verified{}, fmt.Errorf("session %s: secret mismatch: %w", sid, auth.ErrInvalid)
	}
	now := m.cfg.Clock()
	if !l.cookieLive(&m.cfg, now) {
		// Nothing is deleted: liveness is decided from the times, and the
		// store expiry collects the record after expiredGrace.
		return verified{}, fmt.Errorf("session %s: %w", sid, auth.ErrExpired)
	}
	r := verified{l: l, seen: l.seen, now: now}
	if m.cache != nil && !m.revokedInMirror(l) {
		// From here on l is shared with later hits: Touch leaves it alone.
		// The entry keeps the secret just proven against the stored hash
		// (a copy, for the same reason as the sid), which is what a hit
		// compares instead of decoding and hashing the cookie again.
		r.e = m.cache.put(l, strings.Clone(secretEnc), loadedAt.UnixNano())
	}
	return r, nil
}

// Checked is a verified cookie session as one request needs it, by value,
// so that a near-cache hit costs no allocation (Verify builds a Session and
// a copy of the roles on every request).
type Checked struct {
	// Principal is the caller, with Scheme session and ExpiresAt the earlier
	// of the idle and absolute deadlines. On a near-cache hit it is the
	// entry's own, shared by every request of the login (and rebuilt when
	// a touch moves its deadline): read only, like its Roles.
	Principal *auth.Principal
	CreatedAt time.Time
	// MirrorChecked: the answer came from the near cache, which checked
	// the sid and the user's not-before in the manager's revocation mirror
	// (see UsesMirror) on this call.
	MirrorChecked bool
	// TouchDue is TouchDue of this use, at the time of the check.
	TouchDue bool

	l *login
	e *cacheEntry
}

// Check is Verify for the request path: the same checks, the same errors,
// the answer as a Checked. Touch it with TouchChecked once the request is
// accepted.
func (m *Manager) Check(ctx context.Context, cookieValue string) (Checked, error) {
	r, err := m.verify(ctx, cookieValue)
	if err != nil {
		return Checked{}, err
	}
	l := r.l
	c := Checked{CreatedAt: l.rec.CreatedAt, MirrorChecked: r.hit, l: l, e: r.e}
	if r.hit {
		// In unix ns, as TouchDue does: no time.Time to build on a hit.
		c.TouchDue = r.now.UnixNano()-r.e.seen.Load() >= int64(m.cfg.TouchInterval)
		a := r.e.answer.Load()
		if a == nil || a.seen != r.seenNS {
			// First hit, or a touch moved last-seen and the idle deadline:
			// concurrent requests may each build one, all equal.
			a = &hitAnswer{seen: r.seenNS, p: l.principal(m.cookieDeadline(l, time.Unix(0, r.seenNS).UTC()))}
			r.e.answer.Store(a)
		}
		c.Principal = a.p
		return c, nil
	}
	if r.e != nil {
		c.TouchDue = r.now.UnixNano()-r.e.seen.Load() >= int64(m.cfg.TouchInterval)
	} else {
		c.TouchDue = r.now.Sub(r.seen) >= m.cfg.TouchInterval
	}
	c.Principal = l.principal(m.cookieDeadline(l, r.seen))
	return c, nil
}

// cookieDeadline is when l's cookie dies if its last use is seen: the
// earlier of the idle and absolute deadlines.
func (m *Manager) cookieDeadline(l *login, seen time.Time) time.Time {
	exp := seen.Add(m.cfg.IdleTimeout)
	if abs := l.absoluteEnd(&m.cfg); abs.Before(exp) {
		exp = abs
	}
	return exp
}

func (l *login) principal(exp time.Time) *auth.Principal {
	return &auth.Principal{
		UserID: l.rec.UserID, Email: l.rec.Email, ClientID: l.rec.ClientID, Roles: l.rec.Roles,
		Scheme: auth.SchemeSession, SID: l.sid, ExpiresAt: exp,
	}
}

// TouchChecked is Touch for a Checked.
func (m *Manager) TouchChecked(ctx context.Context, c *Checked) {
	m.Touch(ctx, &Session{verified: c.l, entry: c.e})
}

// UsesMirror reports whether r is the revocation mirror the near cache
// checks, so that a caller holding a Checked with MirrorChecked need not
// check the same mirror again.
func (m *Manager) UsesMirror(r Revocations) bool {
	return m.cfg.Revocations != nil && r != nil && m.cfg.Revocations == r
}

// revokedInMirror reports whether the mirror has ended l already (its sid,
// or its user since before l was created): such a login is not cached.
func (m *Manager) revokedInMirror(l *login) bool {
	r := m.cfg.Revocations
	if r.SIDRevoked(l.sid) {
		return true
	}
	nb := r.UserNotBefore(l.rec.UserID)
	return !nb.IsZero() && l.rec.CreatedAt.Before(nb)
}

// TouchDue reports whether Touch would write: last-seen writes are throttled
// to one per TouchInterval, so most requests need none. It does no I/O.
func (m *Manager) TouchDue(s *Session) bool {
	if s == nil || s.verified == nil {
		return false
	}
	now := m.cfg.Clock()
	if s.entry != nil {
		return now.UnixNano()-s.entry.seen.Load() >= int64(m.cfg.TouchInterval)
	}
	return now.Sub(s.verified.seen) >= m.cfg.TouchInterval
}

// Touch records a use of a session returned by Verify: it moves the idle
// deadline when the last recorded use is at least TouchInterval old, and does
// nothing otherwise (nor for a Session that did not come from Verify). It is
// best effort: the credential was proven by the read, a lost touch only brings
// the idle deadline closer, and the write cannot revive a login deleted
// meanwhile (a hash without rec is not a login).
func (m *Manager) Touch(ctx context.Context, s *Session) {
	if !m.TouchDue(s) {
		return
	}
	now := m.cfg.Clock()
	l := s.verified
	if e := s.entry; e != nil {
		// The cached login is shared: the use moves the entry's seen, and
		// the store learns it from the next flush (Run), or at once when
		// no loop runs or its queue is full.
		e.touch(now.UnixNano())
		v := *l
		v.seen = now
		l = &v
		if !m.touches.enqueue(l.sid, pendingTouch{at: now, ttl: l.ttl(&m.cfg, now)}) {
			m.touches.inline.Add(1)
			_ = m.st.HSet(ctx, sessionKey(l.sid), l.ttl(&m.cfg, now), fieldSeen, encodeTime(now))
		}
	} else {
		l.seen = now
		_ = m.st.HSet(ctx, sessionKey(l.sid), l.ttl(&m.cfg, now), fieldSeen, encodeTime(now))
	}
	s.LastSeenAt = now
	if l.famTouched.After(now) {
		s.LastSeenAt = l.famTouched
	}
	s.IdleExpiresAt = l.idleEnd(&m.cfg)
}

// Get returns a live login by sid, whatever its parts; auth.ErrNotFound when
// it is gone or was never there.
func (m *Manager) Get(ctx context.Context, sid string) (*Session, error) {
	l, now, err := m.loadLive(ctx, sid)
	if err != nil {
		return nil, err
	}
	return l.view(&m.cfg, now), nil
}

// loadLive returns a login that is live now, or an error wrapping
// auth.ErrNotFound.
func (m *Manager) loadLive(ctx context.Context, sid string) (*login, time.Time, error) {
	if !ValidSID(sid) {
		return nil, time.Time{}, fmt.Errorf("session: malformed sid: %w", auth.ErrNotFound)
	}
	l, err := m.load(ctx, sid)
	if err != nil && !errors.Is(err, errCorrupt) {
		return nil, time.Time{}, err
	}
	now := m.cfg.Clock()
	if l == nil || !l.live(&m.cfg, now) {
		return nil, time.Time{}, fmt.Errorf("session %s: %w", sid, auth.ErrNotFound)
	}
	return l, now, nil
}

// TouchFamily records token activity (issue, refresh, exchange) on a live
// login: it extends the login's family life to FamilyTTL from now, and gives
// a cookie-only login a token family (session→JWT exchange).
func (m *Manager) TouchFamily(ctx context.Context, sid string) error {
	l, now, err := m.loadLive(ctx, sid)
	if err != nil {
		return err
	}
	l.famTouched = now
	if m.cache != nil {
		m.cache.drop(sid) // its cached family time is stale now
	}
	ttl := l.ttl(&m.cfg, now)
	if err := m.st.HSet(ctx, sessionKey(sid), ttl, fieldFamily, encodeTime(now)); err != nil {
		return fmt.Errorf("session %s: touch family: %w", sid, err)
	}
	if err := m.st.SAdd(ctx, userKey(l.rec.UserID), ttl, sid); err != nil {
		return fmt.Errorf("session %s: touch family: %w", sid, err)
	}
	return nil
}

// Delete ends a login (logout, operator revocation). Deleting one that is
// gone is not an error.
func (m *Manager) Delete(ctx context.Context, sid string) error {
	if !ValidSID(sid) {
		return nil
	}
	l, err := m.load(ctx, sid)
	if err != nil && !errors.Is(err, errCorrupt) {
		return err
	}
	userID := ""
	if l != nil {
		userID = l.rec.UserID
	}
	return m.remove(ctx, sid, userID)
}

// remove ends a login: it revokes the sid in the revocation mirror (so the
// near cache of every instance drops it, see cache.go), deletes the login,
// then its index entry: in that order a failure leaves at worst a revoked
// login or a dead index entry, which ListByUser prunes. Every way a login is
// ended goes through here, which is what makes the near cache safe. The sid
// is revoked whenever a mirror is configured, even with this instance's
// cache off, since other instances may have theirs on.
func (m *Manager) remove(ctx context.Context, sid, userID string) error {
	if r := m.cfg.Revocations; r != nil {
		// A cached cookie login is never used past its absolute deadline,
		// which is at most AbsoluteTimeout from now.
		if err := r.RevokeSID(ctx, sid, m.cfg.Clock().Add(m.cfg.AbsoluteTimeout)); err != nil {
			return fmt.Errorf("session %s: revoke: %w", sid, err)
		}
	}
	if m.cache != nil {
		m.cache.drop(sid)
	}
	if err := m.st.DeleteCtx(ctx, sessionKey(sid)); err != nil {
		return fmt.Errorf("session %s: delete: %w", sid, err)
	}
	if userID == "" {
		return nil
	}
	if err := m.st.SRem(ctx, userKey(userID), sid); err != nil {
		return fmt.Errorf("session %s: delete: %w", sid, err)
	}
	return nil
}

// ListByUser returns the user's live logins, oldest first, and prunes index
// entries whose login is gone or dead.
func (m *Manager) ListByUser(ctx context.Context, userID string) ([]*Session, error) {
	sids, err := m.st.SMembers(ctx, userKey(userID))
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	now := m.cfg.Clock()
	var out []*Session
	var dead []string
	for _, sid := range sids {
		l, err := m.load(ctx, sid)
		if err != nil && !errors.Is(err, errCorrupt) {
			return nil, fmt.Errorf("session: list: %w", err)
		}
		if l == nil || l.rec.UserID != userID {
			dead = append(dead, sid)
			continue
		}
		if !l.live(&m.cfg, now) {
			// Out of the index, but the record stays for expiredGrace so
			// that its cookie is still answered (and counted) "expired".
			dead = append(dead, sid)
			continue
		}
		out = append(out, l.view(&m.cfg, now))
	}
	if len(dead) > 0 {
		_ = m.st.SRem(ctx, userKey(userID), dead...) // best effort: the answer is already right
	}
	slices.SortFunc(out, func(a, b *Session) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.SID, b.SID)
	})
	return out, nil
}

// DeleteByUser ends every login of the user ("log out everywhere", password
// change, suspension) and returns the sids it deleted, sorted, so that their
// tokens can be revoked too. Index entries are removed one by one rather than
// deleting the index, which would orphan a login created meanwhile.
func (m *Manager) DeleteByUser(ctx context.Context, userID string) ([]string, error) {
	sids, err := m.st.SMembers(ctx, userKey(userID))
	if err != nil {
		return nil, fmt.Errorf("session: delete by user: %w", err)
	}
	slices.Sort(sids)
	deleted := make([]string, 0, len(sids))
	for _, sid := range sids {
		if err := m.remove(ctx, sid, userID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, sid)
	}
	return deleted, nil
}

// load reads a login; nil, nil when there is none.
func (m *Manager) load(ctx context.Context, sid string) (*login, error) {
	h, err := m.st.HGetAll(ctx, sessionKey(sid))
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", sid, err)
	}
	return decodeLogin(sid, h)
}
