package featureflags

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// newClock is a settable clock for the Manager.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC))
}

// historyStart is when the fake usage data starts: long before the clocks
// of these tests, so the guard window is fully observed unless a test says
// otherwise.
var historyStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeGuard returns fixed figures and records what it was asked.
type fakeGuard struct {
	mu      sync.Mutex
	share   float64
	total   int64      // accepted requests; 0 = 10 000
	since   *time.Time // start of the data; nil = historyStart
	noData  bool       // no usage data at all (DataSince nil)
	lostAt  *time.Time
	retired int64
	err     error
	calls   int
	clients [][]string
}

func (g *fakeGuard) Func(_ context.Context, clients []string, window time.Duration) (GuardFigures, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	g.clients = append(g.clients, clients)
	if g.err != nil {
		return GuardFigures{}, g.err
	}
	total := g.total
	if total == 0 {
		total = 10_000
	}
	if total < 0 {
		total = 0
	}
	f := GuardFigures{SessionRequests: int64(g.share * float64(total)), TotalRequests: total, SessionShare: g.share, RetiredRequests: g.retired, DataLostAt: g.lostAt}
	if !g.noData {
		since := historyStart
		if g.since != nil {
			since = *g.since
		}
		f.DataSince = &since
	}
	return f, nil
}

type backendKind struct {
	name string
	new  func(t *testing.T) Backend
}

// backendKinds are the back ends every Manager test runs against. Each Redis
// test gets its own redis-server, so tests cannot see each other's keys.
func backendKinds() []backendKind {
	return []backendKind{
		{name: "memory", new: func(*testing.T) Backend { return NewMemoryBackend() }},
		{name: "redis", new: func(t *testing.T) Backend {
			return NewRedisBackend(newRedisClient(t, redistest.Start(t)), RedisOptions{})
		}},
	}
}

func newRedisClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 4,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func initialState() State {
	return State{Phase: PhaseDual, RolloutSeed: "seed-1", Clients: map[string]ClientRule{}, ExemptClients: []string{}}
}

func newTestManager(t *testing.T, b Backend, clock *fakeclock.Clock, guard Guard) *Manager {
	t.Helper()
	m, err := NewManager(context.Background(), Options{
		Backend: b, Initial: initialState(), KnownClients: known, Guard: guard, Clock: clock.Now,
		GuardMaxShare: DefaultGuardMaxShare,
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// change builds a Change from the Manager's current snapshot.
func change(m *Manager, actor, reason string, edit func(s *State)) Change {
	cur := m.Flags().Current()
	next := cur.Clone()
	edit(&next)
	return Change{Expect: cur.Version, Next: next, Actor: actor, Reason: reason}
}

// settingsDiff describes how a and b differ outside Version and Updated*.
func settingsDiff(a, b State) string {
	if a.EqualSettings(&b) {
		return ""
	}
	return fmt.Sprintf("\n got %+v\nwant %+v", a, b)
}
