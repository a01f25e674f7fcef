package session

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/nearcache"
)

// The near cache keeps the decoded logins this instance has verified, so a
// request with a cookie seen before costs no store round trip and no decode.
// It is safe only because every way a login ends is visible without the
// store (docs/security.md, "The session near cache"):
//
//   - an ended login (logout, DELETE /auth/sessions/{sid}, eviction by
//     max_per_user or by a replacing login, refresh-token reuse, an operator's
//     revocation) has its sid revoked in the revocation mirror by remove, on
//     this instance at once and on every other one through pub/sub; a user
//     revocation (log out everywhere, password change, suspension) is the
//     mirror's per-user not-before. A hit is used only while the mirror has
//     neither, so an entry cached anywhere dies with the announcement;
//   - the absolute deadline rests on the creation time, which never changes;
//   - the idle deadline rests on last-seen, which other instances move: an
//     entry whose cached seen is within TouchInterval of the idle deadline is
//     re-read from the store instead of being answered from the cache, so an
//     instance never expires a login that is being used elsewhere;
//   - every entry is re-read after CacheTTL whatever happens, which bounds
//     what a lost announcement (before the mirror's own re-sync) or a store
//     that lost its data can cost, and is how long a cached login is still
//     accepted while the store does not answer.
//
// The phase is decided per request by the caller, after Verify.

// Revocations is what the near cache needs of the revocation mirror
// (token.Revocations): the checks of a hit, and the revocation of a login's
// sid when it ends.
type Revocations interface {
	SIDRevoked(sid string) bool
	UserNotBefore(userID string) time.Time
	RevokeSID(ctx context.Context, sid string, until time.Time) error
}

// entryOverhead approximates what an entry costs beyond its strings: the
// entry, the login, the map slot, the hash's slice header and backing array,
// and the principal of its hits.
const entryOverhead = 320 + int(unsafe.Sizeof(auth.Principal{})+unsafe.Sizeof(hitAnswer{}))

type cacheEntry struct {
	l *login // never modified once cached: copy before changing
	// secret is the cookie secret, as the cookie spells it (canonical), that
	// matched l's stored hash when the entry was filled: a hit compares the
	// presented one with it in constant time (sameSecret), so a cookie with
	// the entry's sid and any other secret goes to the store path, which
	// refuses it. It is a credential in clear, in this process's memory
	// only (the store keeps the hash), and goes with the entry.
	secret string
	// seen is the latest cookie use this instance knows of (unix ns): the
	// store's when read, moved by this instance's touches.
	seen atomic.Int64
	// answer is what Check answers on a hit, built from l on the first one
	// and again when seen has moved (and with it the deadline): shared,
	// read only.
	answer atomic.Pointer[hitAnswer]
}

// hitAnswer is the principal of a cached login whose last-seen is seen
// (unix ns): its ExpiresAt follows from l and seen alone, so a hit with the
// same seen answers it without any time arithmetic.
type hitAnswer struct {
	seen int64
	p    *auth.Principal
}

// nearCache is the sessions' policy over the shared memory
// (internal/nearcache): entries keyed by sid, each trusted until its read
// time + CacheTTL, bounded by bytes with random eviction.
type nearCache struct {
	*nearcache.Cache[string, *cacheEntry]
	ttl time.Duration
}

func newNearCache(maxBytes int64, ttl time.Duration) *nearCache {
	return &nearCache{
		Cache: nearcache.New[string, *cacheEntry](nearcache.Options[string]{MaxBytes: maxBytes, Hash: maphash.String}),
		ttl:   ttl,
	}
}

func entrySize(sid string, l *login) int64 {
	n := entryOverhead + len(sid) + len(l.secretHash) + len(l.rec.UserID) + len(l.rec.Email) +
		len(l.rec.ClientID) + len(l.rec.IP) + len(l.rec.UserAgent)
	for _, r := range l.rec.Roles {
		n += 16 + len(r)
	}
	return int64(n)
}

// get returns the entry of sid if it is still within its TTL at now.
func (c *nearCache) get(sid string, now int64) *cacheEntry {
	e, _ := c.Get(sid, now)
	return e
}

// put caches l, read by a request sent at loadedAt whose cookie secret
// matched l's stored hash, and returns the entry that now stands for it (nil
// if l is too big to cache). An entry loaded later is kept instead: it
// cannot be older than what this read saw, and its secret matched the same
// stored hash.
func (c *nearCache) put(l *login, secret string, loadedAt int64) *cacheEntry {
	e := &cacheEntry{l: l, secret: secret}
	e.seen.Store(l.seen.UnixNano())
	stands, _ := c.Put(l.sid, e, entrySize(l.sid, l)+int64(len(secret)), loadedAt, loadedAt+int64(c.ttl), func(old *cacheEntry, replacing bool) bool {
		// A touch this instance made after the new read was sent must not
		// be forgotten.
		if replacing {
			if s := old.seen.Load(); s > e.seen.Load() {
				e.seen.Store(s)
			}
		}
		return true
	})
	return stands
}

// touch moves the entry's seen to at, never back.
func (e *cacheEntry) touch(at int64) {
	for {
		old := e.seen.Load()
		if old >= at || e.seen.CompareAndSwap(old, at) {
			return
		}
	}
}

// drop forgets sid (the login ended here, or a hit found it revoked).
func (c *nearCache) drop(sid string) { c.Drop(sid) }

// sweep removes the entries past their TTL at now, so that expired logins
// do not keep their memory (and their user's data) until evicted.
func (c *nearCache) sweep(now int64) { c.Sweep(now) }

// CacheStats is the near cache's state, for tests and metrics.
type CacheStats struct {
	Entries         int
	Bytes           int64
	Hits, Misses    uint64
	Evicted         uint64
	PendingTouches  int
	FlushedTouches  uint64
	InlineTouches   uint64
	CacheConfigured bool
}

// CacheStats reports the near cache and the touch queue.
func (m *Manager) CacheStats() CacheStats {
	var st CacheStats
	if c := m.cache; c != nil {
		st.CacheConfigured = true
		cs := c.Stats()
		st.Entries, st.Bytes, st.Hits, st.Misses, st.Evicted = cs.Entries, cs.Bytes, cs.Hits, cs.Misses, cs.Evicted
	}
	m.touches.mu.Lock()
	st.PendingTouches = len(m.touches.pending)
	m.touches.mu.Unlock()
	st.FlushedTouches, st.InlineTouches = m.touches.flushed.Load(), m.touches.inline.Load()
	return st
}

// verifyCached answers Verify from the near cache when the entry is known
// alive (see the package comment above) and the presented secret is the one
// the entry was filled with, with the entry's last-seen (unix ns); ok false sends the
// caller to the store, which then decides, so a cached login never gets an
// answer the store would not give. It neither decodes nor hashes the
// secret: sameSecret compares it with the verified one.
func (m *Manager) verifyCached(sid, secret string, now time.Time) (e *cacheEntry, seenNS int64, ok bool) {
	c := m.cache
	nowNS := now.UnixNano()
	e = c.get(sid, nowNS)
	if e == nil {
		if ValidSID(sid) { // a malformed cookie is not a miss
			c.Miss()
		}
		return nil, 0, false
	}
	l := e.l
	if m.cfg.Revocations.SIDRevoked(sid) {
		c.drop(sid)
		c.Miss()
		return nil, 0, false
	}
	if nb := m.cfg.Revocations.UserNotBefore(l.rec.UserID); !nb.IsZero() && l.rec.CreatedAt.Before(nb) {
		c.drop(sid)
		c.Miss()
		return nil, 0, false
	}
	// A mismatch keeps the entry: the sid is public, and dropping it would
	// let anyone who has seen it send its login to the store every time.
	if !sameSecret(secret, e.secret) {
		c.Miss()
		return nil, 0, false
	}
	seenNS = e.seen.Load()
	// Near the idle deadline the store decides: another instance may have
	// moved last-seen since this entry was read.
	if nowNS >= seenNS+int64(m.cfg.IdleTimeout-m.cfg.TouchInterval) || !now.Before(l.absoluteEnd(&m.cfg)) {
		c.Miss()
		return nil, 0, false
	}
	c.Hit()
	return e, seenNS, true
}

// touchQueue batches last-seen writes: the instance that serves a request
// records its use here and Run flushes them, coalesced per login (only the
// latest use is written) and bounded (a full queue writes inline, as if no
// loop ran).
type touchQueue struct {
	mu      sync.Mutex
	pending map[string]pendingTouch
	running atomic.Bool
	flushed atomic.Uint64
	inline  atomic.Uint64
}

type pendingTouch struct {
	at  time.Time
	ttl time.Duration
}

// maxPendingTouches bounds the queue: about 100 B an entry.
const maxPendingTouches = 1 << 16

// enqueue records a touch for the next flush; false when the queue is full
// or no loop runs, and the caller must write it itself.
func (q *touchQueue) enqueue(sid string, t pendingTouch) bool {
	if !q.running.Load() {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if old, ok := q.pending[sid]; ok {
		if t.at.After(old.at) {
			q.pending[sid] = t
		}
		return true
	}
	if len(q.pending) >= maxPendingTouches {
		return false
	}
	if q.pending == nil {
		q.pending = make(map[string]pendingTouch)
	}
	q.pending[sid] = t
	return true
}

func (q *touchQueue) take() map[string]pendingTouch {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = nil
	return p
}

// touchFlushTimeout bounds one flush's store calls.
const touchFlushTimeout = 5 * time.Second

// Run flushes batched last-seen touches every TouchFlushInterval and sweeps
// expired near-cache entries, until ctx is done; then it flushes what is
// left. Until Run is called (and after it returns) Touch writes inline.
func (m *Manager) Run(ctx context.Context) {
	m.touches.running.Store(true)
	t := time.NewTicker(m.cfg.TouchFlushInterval)
	defer t.Stop()
	lastSweep := m.cfg.Clock()
	for {
		select {
		case <-ctx.Done():
			m.touches.running.Store(false)
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), touchFlushTimeout)
			m.Flush(fctx)
			cancel()
			return
		case <-t.C:
		}
		fctx, cancel := context.WithTimeout(ctx, touchFlushTimeout)
		m.Flush(fctx)
		cancel()
		if now := m.cfg.Clock(); m.cache != nil && now.Sub(lastSweep) >= m.cfg.CacheTTL {
			m.cache.sweep(now.UnixNano())
			lastSweep = now
		}
	}
}

// Flush writes the pending touches now (Run does it periodically; shutdown
// calls it before closing the store). Best effort like every touch: a failed
// write only brings the login's idle deadline closer.
func (m *Manager) Flush(ctx context.Context) {
	for sid, t := range m.touches.take() {
		if ctx.Err() != nil {
			return
		}
		if err := m.st.HSet(ctx, sessionKey(sid), t.ttl, fieldSeen, encodeTime(t.at)); err == nil {
			m.touches.flushed.Add(1)
		}
	}
}
