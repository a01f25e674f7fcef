package usage

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// memoryBackend aggregates in process memory with the same bucket model as
// Redis, for the embedded default (one instance, nothing shared).
type memoryBackend struct {
	retention, minuteKeep time.Duration

	mu      sync.Mutex
	minutes map[int64]bucketCounts
	hours   map[int64]bucketCounts
	users   map[int64]*[auth.NumSchemes]hll // per hour bucket
	last    map[clientScheme]int64
	since   int64
	// srcUsers per hour bucket and source; lastSrc per source.
	srcUsers map[int64]map[string]*hll
	lastSrc  map[string]int64
}

func newMemoryBackend(retention, minuteKeep time.Duration) *memoryBackend {
	return &memoryBackend{
		retention:  retention,
		minuteKeep: minuteKeep,
		minutes:    make(map[int64]bucketCounts),
		hours:      make(map[int64]bucketCounts),
		users:      make(map[int64]*[auth.NumSchemes]hll),
		last:       make(map[clientScheme]int64),
		srcUsers:   make(map[int64]map[string]*hll),
		lastSrc:    make(map[string]int64),
	}
}

func (m *memoryBackend) apply(_ context.Context, now int64, batches []*batch) (int, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range batches {
		minute, hour := floorTo(b.at, minuteSeconds), floorTo(b.at, hourSeconds)
		for _, c := range b.counts {
			bucket(m.minutes, minute)[c.key] += c.n
			bucket(m.hours, hour)[c.key] += c.n
		}
		for _, cs := range b.seen() {
			if b.at > m.last[cs] {
				m.last[cs] = b.at
			}
		}
		if len(b.users) > 0 {
			sk := m.users[hour]
			if sk == nil {
				sk = new([auth.NumSchemes]hll)
				m.users[hour] = sk
			}
			for _, k := range b.users {
				sk[keyScheme(k)].add(keyMember(k))
			}
		}
		for _, s := range b.seenSources() {
			if b.at > m.lastSrc[s] {
				m.lastSrc[s] = b.at
			}
		}
		for s, members := range b.srcUsers {
			hs := m.srcUsers[hour]
			if hs == nil {
				hs = map[string]*hll{}
				m.srcUsers[hour] = hs
			}
			if hs[s] == nil {
				hs[s] = new(hll)
			}
			for _, mb := range members {
				hs[s].add(mb)
			}
		}
		if m.since == 0 || b.at < m.since {
			m.since = b.at
		}
	}
	m.prune(now)
	return len(batches), false, nil
}

func bucket(buckets map[int64]bucketCounts, start int64) bucketCounts {
	b := buckets[start]
	if b == nil {
		b = make(bucketCounts)
		buckets[start] = b
	}
	return b
}

// prune drops buckets past their retention, as Redis expiry would.
func (m *memoryBackend) prune(now int64) {
	minuteCut := now - int64(m.minuteKeep/time.Second) - minuteSeconds
	for start := range m.minutes {
		if start < minuteCut {
			delete(m.minutes, start)
		}
	}
	hourCut := now - int64(m.retention/time.Second) - hourSeconds
	for start := range m.hours {
		if start < hourCut {
			delete(m.hours, start)
		}
	}
	for start := range m.users {
		if start < hourCut {
			delete(m.users, start)
		}
	}
	for start := range m.srcUsers {
		if start < hourCut {
			delete(m.srcUsers, start)
		}
	}
	lastCut := lastSeenCut(now, m.retention)
	for cs, at := range m.last {
		if at < lastCut {
			delete(m.last, cs)
		}
	}
	for s, at := range m.lastSrc {
		if at < lastCut {
			delete(m.lastSrc, s)
		}
	}
}

func (m *memoryBackend) markSince(_ context.Context, at int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.since == 0 {
		m.since = at
	}
	return nil
}

func (m *memoryBackend) read(_ context.Context, q readQuery) (*rawData, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := &rawData{since: m.since}
	for _, start := range q.minutes {
		d.minutes = append(d.minutes, maps.Clone(m.minutes[start]))
	}
	for _, start := range q.hours {
		d.hours = append(d.hours, maps.Clone(m.hours[start]))
	}
	if q.userHours != nil {
		var union [auth.NumSchemes]hll
		var all hll
		for _, h := range q.userHours {
			sk := m.users[h]
			if sk == nil {
				continue
			}
			for s := range sk {
				union[s].merge(&sk[s])
				all.merge(&sk[s])
			}
		}
		for s := range union {
			d.users[s] = union[s].count()
		}
		d.usersAll = all.count()
		d.srcUsers = make(map[string]int64, len(q.sources))
		for _, s := range q.sources {
			var u hll
			for _, h := range q.userHours {
				if sk := m.srcUsers[h][s]; sk != nil {
					u.merge(sk)
				}
			}
			d.srcUsers[s] = u.count()
		}
	}
	if q.lastSeen {
		d.last = maps.Clone(m.last)
		d.lastSources = maps.Clone(m.lastSrc)
	}
	return d, nil
}
