package legacy

import (
	"crypto/subtle"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/nearcache"
)

// The legacy near cache keeps, per instance, the legacy sessions this
// instance has verified (decoded session and looked-up user), so that a
// legacy cookie seen less than cache_ttl ago costs no legacy-store read, no
// decode and no user lookup. It is safe only because every ending
// tokenshift makes is visible without the store (docs/security.md, "The
// legacy session near cache"):
//
//   - tokenshift's own endings of one session (logout, on_exchange end, and
//     every session of the seen index ended by a user revocation) revoke
//     its handle in the revocation mirror, on every instance within
//     milliseconds, and a hit runs the CheckLegacy hook, which refuses a
//     revoked handle;
//   - a user revocation (log out everywhere, password change, suspension)
//     is the mirror's per-user not-before, looked up once per hit: a hit
//     whose entry was read before it is dropped and the store decides, as
//     without the cache, and a session last saved before it is refused;
//   - a hit is used only before the session's own expiry (the key's TTL as
//     read, cookie.expires, expire_date; callout: its answer's cache_ttl);
//   - the legacy app's own endings (its logout deleting the key, a password
//     changed in the legacy app) are not announced: they are seen at the
//     next read, at most cache_ttl (<= 1s) later. That is the price.
//
// Forged cookies never reach it: the cookie is verified first, and only a
// session that passed every check of a store read is cached. A cookie
// value equal, in constant time, to the one an entry was filled from (and
// verified in full then) is not verified again (parseCached): any other
// value takes the full check, without I/O.

// DefaultCacheBytes bounds the near cache of one Set (every source
// together): about 40,000 sessions of the usual size.
const DefaultCacheBytes = 16 << 20

// legacyCacheShards is the shared near cache's shard count (the byte bound
// is split across them).
const legacyCacheShards = nearcache.Shards

// legacyEntryOverhead approximates what an entry costs beyond its strings:
// the entry, its Session, the map slot and key, the roles' slice header.
const legacyEntryOverhead = 384

// legacyPrincipalOverhead is the shared principal's struct.
const legacyPrincipalOverhead = 192

type cacheKey struct{ source, id string }

// cachedSession is one verified legacy session. Nothing in it but gone is
// modified once cached; a hit hands out its shared principal.
type cachedSession struct {
	sess   *Session // Handle set; read-only
	userID string   // tokenshift's user id (may differ in form from sess.UserID)
	// p is the principal every hit answers, shared by their requests
	// (authn.LegacyVerifier: nobody modifies it), built once at the fill:
	// Scheme session and Source set, as authn would set them.
	p *auth.Principal
	// raw is the cookie value the entry's id was verified from when the
	// entry was filled (a copy, never the request's buffer); empty when
	// unknown. A request whose cookie is byte for byte this value carries
	// a cookie already verified, so its signature is not computed again
	// (cachingSource.parseCached).
	raw string
	// src is the source the entry is of (set at the fill).
	src *cachingSource
	// gone is set when drop, forget or forgetUser removes the entry, so
	// that a request holding it from its parse (VerifyLegacy's hint) does
	// not answer from it once an ending dropped it.
	gone atomic.Bool
	// loadedAt is when the read that produced the entry was sent (unix ns):
	// a user revocation at or after it sends the next request to the store.
	loadedAt int64
	// until is when the entry stops answering (unix ns): loadedAt +
	// cache_ttl, or the session's own expiry if earlier.
	until int64
}

// nearCache is the legacy sessions' policy over the shared memory
// (internal/nearcache): sharded by session id, bounded by bytes; an insert
// into a full shard first drops the shard's expired entries, then evicts at
// random.
type nearCache struct {
	*nearcache.Cache[cacheKey, *cachedSession]
	// gen counts Forget and ForgetUser calls: an entry read across one is
	// not cached, so an ending during a store read still wins.
	gen atomic.Uint64
}

func newNearCache(maxBytes int64) *nearCache {
	return &nearCache{Cache: nearcache.New[cacheKey, *cachedSession](nearcache.Options[cacheKey]{
		MaxBytes:            maxBytes,
		Hash:                func(s maphash.Seed, k cacheKey) uint64 { return maphash.String(s, k.id) },
		DropExpiredWhenFull: true,
	})}
}

func legacyEntrySize(k cacheKey, e *cachedSession) int64 {
	s := e.sess
	n := legacyEntryOverhead + len(k.source) + len(k.id) + len(s.Source) + len(s.Client) + len(s.ID) +
		len(s.UserID) + len(s.Email) + len(s.AuthHash) + len(s.Handle) + len(e.userID) + len(e.raw)
	for _, r := range s.Roles {
		n += 16 + len(r)
	}
	if e.p != nil { // its other strings are the Session's
		n += legacyPrincipalOverhead + len(e.p.Email)
		for _, r := range e.p.Roles {
			n += 16 + len(r)
		}
	}
	return int64(n)
}

// get returns the entry of (source, id) while it answers at now.
func (c *nearCache) get(source, id string, now int64) *cachedSession {
	e, _ := c.Get(cacheKey{source, id}, now)
	return e
}

// put caches e unless a Forget or ForgetUser ran since gen was read, or e
// is too big. An entry read later is kept instead.
func (c *nearCache) put(k cacheKey, e *cachedSession, gen uint64) {
	// gen is compared under the shard's lock: a forget either finds the
	// entry there, or moved gen before this insert could land.
	c.Put(k, e, legacyEntrySize(k, e), e.loadedAt, e.until, func(*cachedSession, bool) bool {
		return c.gen.Load() == gen
	})
}

// drop forgets (source, id) if it is still e (or any entry, e nil).
func (c *nearCache) drop(source, id string, e *cachedSession) {
	c.DropIf(cacheKey{source, id}, func(old *cachedSession) bool {
		if e == nil || old == e {
			old.gone.Store(true)
			return true
		}
		return false
	})
}

// forget drops (source, id) and keeps a read in flight from caching it.
func (c *nearCache) forget(source, id string) {
	c.gen.Add(1)
	c.drop(source, id, nil)
}

// forgetUser drops every entry of the user (either form of its id), and
// keeps reads in flight from caching theirs.
func (c *nearCache) forgetUser(userID string) {
	c.gen.Add(1)
	c.DropWhere(func(_ cacheKey, e *cachedSession) bool {
		if e.userID == userID || e.sess.UserID == userID {
			e.gone.Store(true)
			return true
		}
		return false
	})
}

// CacheStats is the near cache's state, for tests and metrics.
type CacheStats struct {
	Entries               int
	Bytes                 int64
	Hits, Misses, Evicted uint64
}

// CacheStats reports the Set's near cache (zero without one).
func (s *Set) CacheStats() CacheStats {
	var st CacheStats
	c := s.cache
	if c == nil {
		return st
	}
	cs := c.Stats()
	st.Entries, st.Bytes, st.Hits, st.Misses, st.Evicted = cs.Entries, cs.Bytes, cs.Hits, cs.Misses, cs.Evicted
	return st
}

// cachingSource is a Source of a Set with a near cache: its Forget and
// ForgetUser also drop the cached sessions, so that logins' endings
// (src.Forget after End) reach the cache without knowing it. Load is the
// source's own: only the Verifier answers from the cache.
type cachingSource struct {
	Source
	cache *nearCache
	ttl   time.Duration // > 0
	clock func() time.Time
	// name and cookie are Source.Name() and Cookies()[0], kept so that a
	// request's parse neither calls through the interface nor allocates.
	name, cookie string
	// keyer is the Source's cacheKeyer, or nil (callout): parseCached then
	// never answers.
	keyer cacheKeyer
}

// cacheKeyer is implemented by the sources whose cookie value names one
// session id (express, django, php), so that a cookie already verified can
// be recognised in the near cache.
type cacheKeyer interface {
	// cacheID returns the id raw names, without verifying anything: only
	// a lookup key. ok false: no such cheap answer (verify in full).
	cacheID(raw string) (id string, ok bool)
}

func newCachingSource(src Source, c *nearCache, ttl time.Duration, clock func() time.Time) *cachingSource {
	cs := &cachingSource{Source: src, cache: c, ttl: ttl, clock: clock, name: src.Name(), cookie: src.Cookies()[0]}
	cs.keyer, _ = src.(cacheKeyer)
	return cs
}

// parseCached is the Parse of a cookie value raw that the near cache holds
// as verified: the entry filled from the same value (compared in constant
// time, as the signature would have been), whether it still answers or
// not: an entry past its TTL still proves its cookie verified, the caller
// checks the TTL. nil: verify raw in full (Parse).
//
// A forged value differs from every verified one, so it never matches: it
// takes the full verification, which refuses it without I/O.
func (s *cachingSource) parseCached(raw string) *cachedSession {
	if s.keyer == nil {
		return nil
	}
	id, ok := s.keyer.cacheID(raw)
	if !ok {
		return nil
	}
	// now 0: any entry, expired or not (until is always positive).
	e, _ := s.cache.Get(cacheKey{s.name, id}, 0)
	if e == nil || e.raw == "" || !constantTimeEqual(e.raw, raw) {
		return nil
	}
	return e
}

// constantTimeEqual is subtle.ConstantTimeCompare over strings, without
// converting them to byte slices (which would allocate): the time depends
// on the lengths only.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(d, 0) == 1
}

func (s *cachingSource) Forget(id string) {
	s.cache.forget(s.Name(), id)
	s.Source.Forget(id)
}

func (s *cachingSource) ForgetUser(userID string) {
	s.cache.forgetUser(userID)
	s.Source.ForgetUser(userID)
}

// cacheOf is the near cache, its TTL and clock for src, or nil.
func cacheOf(src Source) *cachingSource {
	cs, _ := src.(*cachingSource)
	return cs
}

// Forget drops any cached answer for the session id of the named source
// on this instance (the near cache and the source's own).
func (s *Set) Forget(source, id string) {
	if src := s.byName[source]; src != nil {
		src.Forget(id)
	}
}
