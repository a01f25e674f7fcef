package nearcache

import (
	"hash/maphash"
	"strconv"
	"sync"
	"testing"
)

func newStrings(maxBytes int64, dropExpired bool) *Cache[string, *int] {
	return New[string, *int](Options[string]{MaxBytes: maxBytes, Hash: maphash.String, DropExpiredWhenFull: dropExpired})
}

func val(n int) *int { return &n }

// Inserting far past the bound evicts: no shard ever holds more than its
// part, and the total stays under MaxBytes.
func TestBoundedByBytes(t *testing.T) {
	const maxBytes = Shards * 1000
	c := newStrings(maxBytes, false)
	for i := range 5000 {
		c.Put("k"+strconv.Itoa(i), val(i), 100, 1, 1<<62, nil)
		if st := c.Stats(); st.MaxShardBytes > c.ShardLimit() {
			t.Fatalf("after %d puts a shard holds %d bytes, limit %d", i+1, st.MaxShardBytes, c.ShardLimit())
		}
	}
	st := c.Stats()
	if st.Bytes > maxBytes || st.Entries == 0 || st.Evicted == 0 || st.Bytes != int64(st.Entries)*100 {
		t.Fatalf("stats %+v: want at most %d bytes, 100 each, some evicted", st, maxBytes)
	}
	if _, ok := c.Put("big", val(0), c.ShardLimit()+1, 1, 1<<62, nil); ok {
		t.Fatal("an entry bigger than a shard was cached")
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name        string
		now         int64
		wantHit     bool
		wantEntries int // after Sweep(now)
	}{
		{name: "before until", now: 199, wantHit: true, wantEntries: 1},
		{name: "at until", now: 200, wantHit: false, wantEntries: 0},
		{name: "after until", now: 500, wantHit: false, wantEntries: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newStrings(1<<20, false)
			c.Put("a", val(1), 10, 100, 200, nil)
			if _, ok := c.Get("a", tc.now); ok != tc.wantHit {
				t.Fatalf("Get at %d: hit %v, want %v", tc.now, ok, tc.wantHit)
			}
			c.Sweep(tc.now)
			if st := c.Stats(); st.Entries != tc.wantEntries || st.Bytes != int64(tc.wantEntries)*10 {
				t.Fatalf("after Sweep(%d): %+v, want %d entries", tc.now, st, tc.wantEntries)
			}
		})
	}
}

// With DropExpiredWhenFull a full shard loses its expired entries (not
// counted as evicted) before any live one.
func TestDropExpiredWhenFull(t *testing.T) {
	c := New[int, *int](Options[int]{MaxBytes: Shards * 100, Hash: func(maphash.Seed, int) uint64 { return 0 }, DropExpiredWhenFull: true})
	c.Put(1, val(1), 50, 0, 10, nil)   // expired at 20
	c.Put(2, val(2), 50, 0, 1000, nil) // live
	c.Put(3, val(3), 50, 20, 1000, nil)
	if _, ok := c.Get(2, 20); !ok {
		t.Fatal("a live entry was evicted while an expired one could go")
	}
	if st := c.Stats(); st.Evicted != 0 || st.Entries != 2 || st.Bytes != 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPutKeepsLaterReadAndAdmit(t *testing.T) {
	c := newStrings(1<<20, false)
	first := val(1)
	c.Put("a", first, 10, 200, 1000, nil)
	if got, ok := c.Put("a", val(2), 10, 100, 1000, nil); !ok || got != first {
		t.Fatalf("an earlier read replaced a later one: %v %v", got, ok)
	}
	var sawOld *int
	if _, ok := c.Put("a", val(3), 10, 300, 1000, func(old *int, replacing bool) bool { sawOld = old; return false }); ok || sawOld != first {
		t.Fatalf("refused put: ok %v, admit saw %v", ok, sawOld)
	}
	if got, _ := c.Get("a", 300); got != first {
		t.Fatal("a refused put changed the cache")
	}
	c.DropIf("a", func(v *int) bool { return v != first })
	if _, ok := c.Get("a", 300); !ok {
		t.Fatal("DropIf dropped an entry that did not match")
	}
	c.Put("b", val(4), 10, 1, 1000, nil)
	c.DropWhere(func(k string, _ *int) bool { return k == "a" })
	if st := c.Stats(); st.Entries != 1 || st.Bytes != 10 {
		t.Fatalf("after DropWhere: %+v", st)
	}
	c.Drop("b")
	if st := c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after Drop: %+v", st)
	}
}

// Concurrent use (run with -race): the byte accounting stays exact.
func TestConcurrent(t *testing.T) {
	c := newStrings(Shards*2000, true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				k := strconv.Itoa((g*7 + i) % 500)
				now := int64(i)
				switch i % 5 {
				case 0, 1:
					c.Put(k, val(i), 40+int64(i%20), now, now+50, nil)
				case 2:
					if _, ok := c.Get(k, now); ok {
						c.Hit()
					} else {
						c.Miss()
					}
				case 3:
					c.DropIf(k, func(v *int) bool { return *v%2 == 0 })
				default:
					if i%100 == 4 {
						c.Sweep(now)
					}
					c.Drop(k)
				}
			}
		}()
	}
	wg.Wait()
	var bytes int64
	c.DropWhere(func(string, *int) bool { return false })
	for i := range c.shards {
		sh := &c.shards[i]
		var sum int64
		for _, e := range sh.entries {
			sum += e.size
		}
		if sum != sh.bytes || sh.bytes > c.limit {
			t.Fatalf("shard %d: bytes %d, entries sum %d, limit %d", i, sh.bytes, sum, c.limit)
		}
		bytes += sum
	}
	if st := c.Stats(); st.Bytes != bytes || st.Hits+st.Misses != 8*600 {
		t.Fatalf("stats %+v, bytes %d", st, bytes)
	}
}
