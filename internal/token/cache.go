package token

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// The verified-token cache is bounded by memory, not by a count of entries:
// a count sized for a few thousand clients made every request of a larger
// fleet pay the signature check (50-110 µs) once live tokens outnumbered it,
// while a byte budget holds as many tokens as their size allows.
const (
	// maxCacheShards splits the cache so concurrent requests rarely wait on
	// the same lock; small budgets get fewer shards, so that each shard
	// still holds a useful number of tokens.
	maxCacheShards = 32
	minShardBytes  = 64 << 10
	// entryOverhead is what an entry costs besides its text: the slot, the
	// claims with their dates, and the index's share (a map slot, with
	// the map's slack).
	entryOverhead = int64(unsafe.Sizeof(cacheEntry{})+unsafe.Sizeof(cachedClaims{})) + 32
	// maxHeaders bounds the interned header segments. Only verified tokens
	// are put, so their headers name our own keys: a handful.
	maxHeaders = 64
)

// verifiedCache remembers tokens whose signature and claims were verified,
// until their exp. It only saves the cryptography and the decoding: a hit
// still checks the token's time window against the caller's clock, and
// callers check revocation on every hit. A purge (a new key ring) also
// drops what verifications still running under the old ring would put.
//
// An entry is found by a keyed 64-bit hash of the token's end and then compared
// with the whole token, so a hit is always the exact token that was
// verified; the compare takes the same time wherever the bytes differ. The
// header segment, the same for every token of one key, is stored once.
// Eviction is CLOCK (second chance): a hit sets the entry's reference bit
// with one atomic store under the read lock, and the hand spares referenced
// entries once, so tokens in use stay while one-off tokens go first.
type verifiedCache struct {
	seed   maphash.Seed
	shards []cacheShard

	hmu     sync.Mutex
	headers map[string]string // interned header segments

	gen atomic.Uint64 // bumped by purge
}

type cacheShard struct {
	mu     sync.RWMutex
	index  map[uint64]int32 // token hash → slot
	slots  []cacheEntry
	free   []int32 // emptied slots, reused before slots grows
	hand   int
	used   int64 // bytes accounted to live entries
	budget int64
}

type cacheEntry struct {
	hash   uint64
	header string // interned: shared by every token of its key
	rest   string // "payload.signature", the entry's own copy
	claims *cachedClaims
	size   int64
	ref    atomic.Uint32 // CLOCK reference bit, set by hits
	live   bool
}

// cachedClaims is what a hit needs, worked out once when the token was
// verified: the principal (shared by every request presenting the token),
// the instants a hit compares with its clock, and the rest of the claims
// for VerifyAccess. The strings point into one arena string, so an entry
// costs two allocations.
type cachedClaims struct {
	p auth.Principal
	// validFrom and exp bound the unix-ns instants at which a hit is
	// accepted: from max(iat, nbf) - leeway, as the parser allows, until
	// exp (the parser allows exp + leeway: past exp a request takes the
	// uncached path).
	validFrom, exp int64
	// revokeAt is Claims.revocationTime (unix ns), which a per-user
	// revocation judges the token by.
	revokeAt int64
	audience jwt.ClaimStrings
	dates    [3]jwt.NumericDate // exp, iat, nbf (zero: none)
	iatNS    int64
}

// claims rebuilds the token's claims, the caller's to keep; Audience, Roles
// and the dates are shared with the cache. issuer is the configured one,
// the only one a cached token can have.
func (cc *cachedClaims) claims(issuer string) *Claims {
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   cc.p.UserID,
			Audience:  cc.audience,
			ExpiresAt: &cc.dates[0],
			IssuedAt:  &cc.dates[1],
			ID:        cc.p.TokenID,
		},
		ClientID:   cc.p.ClientID,
		SID:        cc.p.SID,
		Email:      cc.p.Email,
		Roles:      cc.p.Roles,
		IssuedAtNS: cc.iatNS,
	}
	if !cc.dates[2].IsZero() {
		c.NotBefore = &cc.dates[2]
	}
	return c
}

// newVerifiedCache returns a cache holding at most about budget bytes.
func newVerifiedCache(budget int64) *verifiedCache {
	n := maxCacheShards
	for n > 1 && budget/int64(n) < minShardBytes {
		n /= 2
	}
	c := &verifiedCache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n), headers: map[string]string{}}
	for i := range c.shards {
		c.shards[i].index = map[uint64]int32{}
		c.shards[i].budget = budget / int64(n)
	}
	return c
}

// hashTail is how much of a token's end the index hashes. A token's end is
// its signature, which differs between any two tokens we signed, so the
// hash needs no more; hashing every byte of a 500-byte token cost more
// than the rest of the lookup. Tokens that share their end (a forgery
// reusing a signature) only share a slot: a hit still compares the whole
// token.
const hashTail = 32

func (c *verifiedCache) hash(raw string) uint64 {
	return maphash.String(c.seed, raw[len(raw)-min(len(raw), hashTail):])
}

func (c *verifiedCache) shard(h uint64) *cacheShard {
	// The low bits pick the map bucket inside the shard; use the high ones.
	return &c.shards[(h>>32)%uint64(len(c.shards))]
}

// generation changes with every purge. A verification reads it before the
// key ring and hands it to put, which drops an entry verified under a ring
// that a purge has since retired.
func (c *verifiedCache) generation() uint64 { return c.gen.Load() }

// get returns what was cached for raw if exactly raw was verified and now
// (unix ns) is inside the window the parser would accept it in, with exp
// as its end. The result is shared: the caller must not modify it.
func (c *verifiedCache) get(raw string, now int64) (*cachedClaims, bool) {
	h := c.hash(raw)
	sh := c.shard(h)
	sh.mu.RLock()
	i, ok := sh.index[h]
	var cl *cachedClaims
	if ok {
		e := &sh.slots[i]
		if len(raw) == len(e.header)+len(e.rest) && equalConstantTime(raw[:len(e.header)], e.header) && equalConstantTime(raw[len(e.header):], e.rest) {
			cl = e.claims
			if e.ref.Load() == 0 {
				e.ref.Store(1) // only when clear: a hot entry's line is not written on every hit
			}
		}
	}
	sh.mu.RUnlock()
	if cl == nil || now >= cl.exp || now < cl.validFrom {
		return nil, false
	}
	return cl, true
}

// put remembers the verified claims of raw, whose principal gets scheme
// (the scheme of the verification: the token's next ones are likely to use
// the same), and leeway is the parser's. gen is generation() as read before
// the key ring the token was verified with. It copies what it keeps, so
// neither raw (which may alias a request buffer) nor claims are retained.
func (c *verifiedCache) put(raw string, claims *Claims, scheme auth.Scheme, leeway time.Duration, gen uint64, now int64) {
	dot := strings.IndexByte(raw, '.')
	if dot < 0 || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		return
	}
	header, keep := c.intern(raw[:dot]), raw[dot:]
	if header == "" {
		keep = raw // too many distinct headers: the entry keeps the whole token
	}
	cl, rest, size := compactClaims(keep, claims, scheme, leeway)
	h := c.hash(raw)
	sh := c.shard(h)
	if size > sh.budget {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c.gen.Load() != gen {
		// The ring changed while the token was being verified, and the
		// purge may have passed this shard already.
		return
	}
	if i, ok := sh.index[h]; ok {
		// The same token (or another with the same end, or once in 2^64
		// the same hash: then the newer replaces the older).
		sh.remove(i)
	}
	for sh.used+size > sh.budget && sh.evictOne(now) {
	}
	var i int32
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		sh.slots = append(sh.slots, cacheEntry{})
		i = int32(len(sh.slots) - 1)
	}
	e := &sh.slots[i]
	e.hash, e.header, e.rest, e.claims, e.size, e.live = h, header, rest, cl, size, true
	e.ref.Store(0)
	sh.index[h] = i
	sh.used += size
}

// intern returns the stored copy of a header segment, or "" when the set is
// full.
func (c *verifiedCache) intern(header string) string {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if h, ok := c.headers[header]; ok {
		return h
	}
	if len(c.headers) >= maxHeaders {
		return ""
	}
	h := strings.Clone(header)
	c.headers[h] = h
	return h
}

// compactClaims copies rest (the part of the token the entry keeps) and the
// claims' strings into one arena, and returns the copy and its accounted size.
// The issuer is not kept: the parser accepts only the configured one.
func compactClaims(rest string, c *Claims, scheme auth.Scheme, leeway time.Duration) (*cachedClaims, string, int64) {
	var b strings.Builder
	n := len(rest) + len(c.Subject) + len(c.ID) + len(c.ClientID) + len(c.SID) + len(c.Email)
	for _, a := range c.Audience {
		n += len(a)
	}
	for _, r := range c.Roles {
		n += len(r)
	}
	b.Grow(n)
	offsets := make([]int, 0, 8+len(c.Audience)+len(c.Roles))
	add := func(s string) {
		b.WriteString(s)
		offsets = append(offsets, b.Len())
	}
	add(rest)
	add(c.Subject)
	add(c.ID)
	add(c.ClientID)
	add(c.SID)
	add(c.Email)
	for _, a := range c.Audience {
		add(a)
	}
	for _, r := range c.Roles {
		add(r)
	}
	arena := b.String()
	next, start := 0, 0
	take := func() string {
		s := arena[start:offsets[next]]
		start = offsets[next]
		next++
		return s
	}
	cc := &cachedClaims{}
	restCopy := take()
	p := &cc.p
	p.UserID, p.TokenID, p.ClientID, p.SID, p.Email = take(), take(), take(), take(), take()
	strs := make([]string, len(c.Audience)+len(c.Roles))
	for i := range strs {
		strs[i] = take()
	}
	if len(c.Audience) > 0 {
		cc.audience = jwt.ClaimStrings(strs[:len(c.Audience):len(c.Audience)])
	}
	if len(c.Roles) > 0 {
		p.Roles = strs[len(c.Audience):]
	}
	p.Scheme = scheme
	p.ExpiresAt = c.ExpiresAt.Time
	cc.iatNS = c.IssuedAtNS
	cc.revokeAt = c.revocationTime().UnixNano()
	cc.dates[0] = *c.ExpiresAt
	cc.dates[1] = *c.IssuedAt
	from := c.IssuedAt.Time
	if c.NotBefore != nil {
		cc.dates[2] = *c.NotBefore
		if c.NotBefore.After(from) {
			from = c.NotBefore.Time
		}
	}
	cc.validFrom = from.Add(-leeway).UnixNano()
	cc.exp = c.ExpiresAt.UnixNano()
	size := entryOverhead + int64(len(arena)) + int64(len(strs))*int64(unsafe.Sizeof(""))
	return cc, restCopy, size
}

// evictOne advances the hand to the next entry that is expired or was not
// used since the hand last passed, and removes it. It reports false when the
// shard is empty.
func (sh *cacheShard) evictOne(now int64) bool {
	if len(sh.index) == 0 {
		return false
	}
	for {
		if sh.hand >= len(sh.slots) {
			sh.hand = 0
		}
		e := &sh.slots[sh.hand]
		i := int32(sh.hand)
		sh.hand++
		if !e.live {
			continue
		}
		if e.ref.Load() != 0 && now < e.claims.exp {
			e.ref.Store(0) // second chance
			continue
		}
		sh.remove(i)
		return true
	}
}

func (sh *cacheShard) remove(i int32) {
	e := &sh.slots[i]
	delete(sh.index, e.hash)
	sh.used -= e.size
	e.hash, e.header, e.rest, e.claims, e.size, e.live = 0, "", "", nil, 0, false
	sh.free = append(sh.free, i)
}

func (c *verifiedCache) purge() {
	c.gen.Add(1)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.index = map[uint64]int32{}
		sh.slots, sh.free, sh.hand, sh.used = nil, nil, 0, 0
		sh.mu.Unlock()
	}
	c.hmu.Lock()
	c.headers = map[string]string{}
	c.hmu.Unlock()
}

func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.index)
		sh.mu.RUnlock()
	}
	return n
}

// bytes is what the live entries are accounted.
func (c *verifiedCache) bytes() int64 {
	var n int64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += sh.used
		sh.mu.RUnlock()
	}
	return n
}

// equalConstantTime compares two strings of equal length in time that
// depends only on the length. It reads eight bytes at a time (the compiler
// merges the byte loads of le64 into one) into four accumulators, so a
// 500-byte token costs about 20 ns instead of the 60 of one accumulator.
func equalConstantTime(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v0, v1, v2, v3 uint64
	for len(a) >= 32 && len(b) >= 32 {
		v0 |= le64(a[0:8]) ^ le64(b[0:8])
		v1 |= le64(a[8:16]) ^ le64(b[8:16])
		v2 |= le64(a[16:24]) ^ le64(b[16:24])
		v3 |= le64(a[24:32]) ^ le64(b[24:32])
		a, b = a[32:], b[32:]
	}
	for len(a) >= 8 && len(b) >= 8 {
		v0 |= le64(a[:8]) ^ le64(b[:8])
		a, b = a[8:], b[8:]
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		v1 |= uint64(a[i] ^ b[i])
	}
	return v0|v1|v2|v3 == 0
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}
