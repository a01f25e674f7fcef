package token

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// cacheShards splits the verified-token cache so concurrent requests rarely
// wait on the same lock.
const cacheShards = 32

// verifiedCache remembers tokens whose signature and claims were verified,
// keyed by the exact token string, until their exp. It only saves the
// cryptography: callers still check revocation on every hit. Each shard is
// bounded and evicts its oldest entry when full, which costs no bookkeeping
// on reads.
type verifiedCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[string]*Claims
	ring    []string // insertion order; ring[next] is the oldest when full
	next    int
}

func newVerifiedCache(size int) *verifiedCache {
	per := (size + cacheShards - 1) / cacheShards
	c := &verifiedCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]*Claims, per)
		c.shards[i].ring = make([]string, per)
	}
	return c
}

func (c *verifiedCache) shard(raw string) *cacheShard {
	return &c.shards[maphash.String(c.seed, raw)%cacheShards]
}

// get returns the claims of raw if it was verified and is not past its exp.
func (c *verifiedCache) get(raw string, now time.Time) (*Claims, bool) {
	sh := c.shard(raw)
	sh.mu.RLock()
	claims, ok := sh.entries[raw]
	sh.mu.RUnlock()
	if !ok || !now.Before(claims.ExpiresAt.Time) {
		return nil, false
	}
	return claims, true
}

// put remembers verified claims, which must not be modified afterwards.
func (c *verifiedCache) put(raw string, claims *Claims) {
	// The caller's string may alias a request buffer that is reused later.
	key := strings.Clone(raw)
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.entries[key]; ok {
		sh.entries[key] = claims
		return
	}
	if old := sh.ring[sh.next]; old != "" {
		delete(sh.entries, old)
	}
	sh.ring[sh.next] = key
	sh.next = (sh.next + 1) % len(sh.ring)
	sh.entries[key] = claims
}

func (c *verifiedCache) purge() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.entries)
		clear(sh.ring)
		sh.next = 0
		sh.mu.Unlock()
	}
}

func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.entries)
		sh.mu.RUnlock()
	}
	return n
}
