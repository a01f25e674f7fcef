package session

import (
	"context"
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tokenshift/tokenshift/internal/auth"
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

// cacheShards spreads the lock: every request of every session takes one.
const cacheShards = 16

// entryOverhead approximates what an entry costs beyond its strings: the
// entry, the login, the map slot, the hash's slice header and backing array,
// and the principal of its hits.
const entryOverhead = 320 + int(unsafe.Sizeof(auth.Principal{}))

type cacheEntry struct {
	l *login // never modified once cached: copy before changing
	// loadedAt is when the read that produced l was sent (unix ns): the
	// entry is trusted until loadedAt + CacheTTL.
	loadedAt int64
	// seen is the latest cookie use this instance knows of (unix ns): the
	// store's when read, moved by this instance's touches.
	seen atomic.Int64
	// principal is what Check answers on a hit, built from l on the first
	// one and again when seen moves its deadline: shared, read only.
	principal atomic.Pointer[auth.Principal]
	size      int64
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]*cacheEntry
	bytes   int64
}

// nearCache is bounded by an estimate of its memory, split evenly across
// shards; an insert into a full shard evicts entries in map order, which Go
// randomises, so no access pattern can pin the victims.
type nearCache struct {
	seed    maphash.Seed
	limit   int64 // per shard
	ttl     time.Duration
	shards  [cacheShards]cacheShard
	evicted atomic.Uint64
	hits    atomic.Uint64
	misses  atomic.Uint64
}

func newNearCache(maxBytes int64, ttl time.Duration) *nearCache {
	c := &nearCache{seed: maphash.MakeSeed(), limit: maxBytes / cacheShards, ttl: ttl}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]*cacheEntry)
	}
	return c
}

func (c *nearCache) shard(sid string) *cacheShard {
	return &c.shards[maphash.String(c.seed, sid)%cacheShards]
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
	sh := c.shard(sid)
	sh.mu.RLock()
	e := sh.entries[sid]
	sh.mu.RUnlock()
	if e == nil || now-e.loadedAt >= int64(c.ttl) {
		return nil
	}
	return e
}

// put caches l, read by a request sent at loadedAt, and returns the entry
// that now stands for it (nil if l is too big to cache). An entry loaded
// later is kept instead: it cannot be older than what this read saw.
func (c *nearCache) put(l *login, loadedAt int64) *cacheEntry {
	e := &cacheEntry{l: l, loadedAt: loadedAt, size: entrySize(l.sid, l)}
	e.seen.Store(l.seen.UnixNano())
	if e.size > c.limit {
		return nil
	}
	sh := c.shard(l.sid)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old := sh.entries[l.sid]; old != nil {
		if old.loadedAt > loadedAt {
			return old
		}
		// A touch this instance made after the new read was sent must not
		// be forgotten.
		if s := old.seen.Load(); s > e.seen.Load() {
			e.seen.Store(s)
		}
		sh.bytes -= old.size
		delete(sh.entries, l.sid)
	}
	for sid, victim := range sh.entries {
		if sh.bytes+e.size <= c.limit {
			break
		}
		sh.bytes -= victim.size
		delete(sh.entries, sid)
		c.evicted.Add(1)
	}
	sh.entries[l.sid] = e
	sh.bytes += e.size
	return e
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
func (c *nearCache) drop(sid string) {
	sh := c.shard(sid)
	sh.mu.Lock()
	if old := sh.entries[sid]; old != nil {
		sh.bytes -= old.size
		delete(sh.entries, sid)
	}
	sh.mu.Unlock()
}

// sweep removes the entries past their TTL at now, so that expired logins
// do not keep their memory (and their user's data) until evicted.
func (c *nearCache) sweep(now int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for sid, e := range sh.entries {
			if now-e.loadedAt >= int64(c.ttl) {
				sh.bytes -= e.size
				delete(sh.entries, sid)
			}
		}
		sh.mu.Unlock()
	}
}

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
		for i := range c.shards {
			sh := &c.shards[i]
			sh.mu.RLock()
			st.Entries += len(sh.entries)
			st.Bytes += sh.bytes
			sh.mu.RUnlock()
		}
		st.Hits, st.Misses, st.Evicted = c.hits.Load(), c.misses.Load(), c.evicted.Load()
	}
	m.touches.mu.Lock()
	st.PendingTouches = len(m.touches.pending)
	m.touches.mu.Unlock()
	st.FlushedTouches, st.InlineTouches = m.touches.flushed.Load(), m.touches.inline.Load()
	return st
}

// verifyCached answers Verify from the near cache when the entry is known
// alive (see the package comment above), with the entry's last-seen; ok
// false sends the caller to the store, which then decides, so a cached login
// never gets an answer the store would not give.
func (m *Manager) verifyCached(sid string, secret *[sha256.Size]byte, now time.Time) (e *cacheEntry, seen time.Time, ok bool) {
	c := m.cache
	nowNS := now.UnixNano()
	e = c.get(sid, nowNS)
	if e == nil {
		if ValidSID(sid) { // a malformed cookie is not a miss
			c.misses.Add(1)
		}
		return nil, time.Time{}, false
	}
	l := e.l
	if m.cfg.Revocations.SIDRevoked(sid) {
		c.drop(sid)
		c.misses.Add(1)
		return nil, time.Time{}, false
	}
	if nb := m.cfg.Revocations.UserNotBefore(l.rec.UserID); !nb.IsZero() && l.rec.CreatedAt.Before(nb) {
		c.drop(sid)
		c.misses.Add(1)
		return nil, time.Time{}, false
	}
	if !secretMatches(secret, l.secretHash) {
		c.misses.Add(1)
		return nil, time.Time{}, false
	}
	seenNS := e.seen.Load()
	// Near the idle deadline the store decides: another instance may have
	// moved last-seen since this entry was read.
	if nowNS >= seenNS+int64(m.cfg.IdleTimeout-m.cfg.TouchInterval) || !now.Before(l.absoluteEnd(&m.cfg)) {
		c.misses.Add(1)
		return nil, time.Time{}, false
	}
	c.hits.Add(1)
	return e, time.Unix(0, seenNS).UTC(), true
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
