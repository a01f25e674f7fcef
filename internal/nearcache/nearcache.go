// Package nearcache is the memory of an instance's near caches (the
// session near cache, the legacy session near cache): a sharded map bounded
// by an estimate of its bytes, whose entries each answer until their own
// expiry, with random eviction when a shard is full.
//
// It holds no policy: what may be cached, when a hit may be trusted and
// what ends an entry early are the caller's (internal/session/cache.go,
// internal/legacy/cache.go). The caller passes each entry's size and the
// time it was read at (an entry read later is never replaced by one read
// earlier) and may refuse an insert under the shard's lock (Put's admit),
// which is how an ending that lands during a store read still wins.
package nearcache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Shards spreads the lock: every request of every cached credential takes
// one shard's read lock.
const Shards = 16

// Options configures a Cache.
type Options[K comparable] struct {
	// MaxBytes bounds the estimate of the whole cache, split evenly across
	// the shards (an entry bigger than a shard's part is never cached).
	MaxBytes int64
	// Hash picks a key's shard. It must be cheap: every Get calls it.
	Hash func(maphash.Seed, K) uint64
	// DropExpiredWhenFull: an insert into a full shard first drops the
	// shard's entries expired at the new entry's read time (not counted as
	// evicted), and only then evicts live ones.
	DropExpiredWhenFull bool
}

type item[V any] struct {
	v        V
	size     int64
	loadedAt int64 // unix ns
	until    int64 // unix ns: the entry answers while now < until
}

type shard[K comparable, V any] struct {
	mu      sync.RWMutex
	entries map[K]item[V]
	bytes   int64
}

// Cache is safe for concurrent use. An insert into a full shard evicts
// entries in map order, which Go randomises, so no access pattern can pin
// the victims.
type Cache[K comparable, V any] struct {
	seed                  maphash.Seed
	hash                  func(maphash.Seed, K) uint64
	limit                 int64 // per shard
	dropExpired           bool
	shards                [Shards]shard[K, V]
	hits, misses, evicted atomic.Uint64
}

// New makes an empty cache. o.Hash must be set.
func New[K comparable, V any](o Options[K]) *Cache[K, V] {
	c := &Cache[K, V]{seed: maphash.MakeSeed(), hash: o.Hash, limit: o.MaxBytes / Shards, dropExpired: o.DropExpiredWhenFull}
	for i := range c.shards {
		c.shards[i].entries = make(map[K]item[V])
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	return &c.shards[c.hash(c.seed, k)%Shards]
}

// ShardLimit is the byte bound of one shard.
func (c *Cache[K, V]) ShardLimit() int64 { return c.limit }

// Get returns the entry of k while it answers at now (unix ns).
func (c *Cache[K, V]) Get(k K, now int64) (v V, ok bool) {
	sh := c.shard(k)
	sh.mu.RLock()
	it, ok := sh.entries[k]
	sh.mu.RUnlock()
	if !ok || now >= it.until {
		return v, false
	}
	return it.v, true
}

// Put caches v under k, read at loadedAt and answering until until (unix
// ns), and returns the value that now stands for k:
//
//   - none (ok false) if v is bigger than a shard's part, or admit refused;
//   - the entry already there if it was read after loadedAt (it cannot be
//     older than what this read saw; admit is not called);
//   - v otherwise, replacing any entry read earlier.
//
// admit, if not nil, runs under the shard's lock before anything changes,
// with the entry v would replace (replacing false: none); false leaves the
// cache as it was.
func (c *Cache[K, V]) Put(k K, v V, size, loadedAt, until int64, admit func(old V, replacing bool) bool) (stands V, ok bool) {
	if size > c.limit {
		return stands, false
	}
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, replacing := sh.entries[k]
	if replacing && old.loadedAt > loadedAt {
		return old.v, true
	}
	if admit != nil && !admit(old.v, replacing) {
		return stands, false
	}
	if replacing {
		sh.bytes -= old.size
		delete(sh.entries, k)
	}
	if c.dropExpired && sh.bytes+size > c.limit {
		for key, e := range sh.entries {
			if e.until <= loadedAt {
				sh.bytes -= e.size
				delete(sh.entries, key)
			}
		}
	}
	for key, victim := range sh.entries {
		if sh.bytes+size <= c.limit {
			break
		}
		sh.bytes -= victim.size
		delete(sh.entries, key)
		c.evicted.Add(1)
	}
	sh.entries[k] = item[V]{v: v, size: size, loadedAt: loadedAt, until: until}
	sh.bytes += size
	return v, true
}

// Drop forgets k.
func (c *Cache[K, V]) Drop(k K) { c.DropIf(k, nil) }

// DropIf forgets k if its entry satisfies is (any entry, is nil); is runs
// under the shard's lock.
func (c *Cache[K, V]) DropIf(k K, is func(V) bool) {
	sh := c.shard(k)
	sh.mu.Lock()
	if old, ok := sh.entries[k]; ok && (is == nil || is(old.v)) {
		sh.bytes -= old.size
		delete(sh.entries, k)
	}
	sh.mu.Unlock()
}

// DropWhere forgets every entry that satisfies is, one shard at a time
// (is runs under the shard's lock).
func (c *Cache[K, V]) DropWhere(is func(K, V) bool) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.entries {
			if is(k, e.v) {
				sh.bytes -= e.size
				delete(sh.entries, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Sweep removes the entries expired at now (unix ns), so that they do not
// keep their memory (and what they hold of their user) until evicted.
func (c *Cache[K, V]) Sweep(now int64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, e := range sh.entries {
			if now >= e.until {
				sh.bytes -= e.size
				delete(sh.entries, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Hit and Miss count the caller's answers: a Get that found an entry is a
// hit only if the caller's own checks trusted it.
func (c *Cache[K, V]) Hit()  { c.hits.Add(1) }
func (c *Cache[K, V]) Miss() { c.misses.Add(1) }

// Stats is a cache's state, for tests and metrics.
type Stats struct {
	Entries int
	Bytes   int64
	// MaxShardBytes is the fullest shard's bytes (at most ShardLimit).
	MaxShardBytes         int64
	Hits, Misses, Evicted uint64
}

// Stats reads every shard, one at a time.
func (c *Cache[K, V]) Stats() Stats {
	var st Stats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.entries)
		st.Bytes += sh.bytes
		st.MaxShardBytes = max(st.MaxShardBytes, sh.bytes)
		sh.mu.RUnlock()
	}
	st.Hits, st.Misses, st.Evicted = c.hits.Load(), c.misses.Load(), c.evicted.Load()
	return st
}
