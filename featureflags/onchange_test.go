package featureflags

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// changeLog records what an OnChange hook was called with.
type changeLog struct {
	mu  sync.Mutex
	got []string // "old->new phase@version"
}

func (l *changeLog) hook(old, new State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, fmt.Sprintf("%d->%d %s", old.Version, new.Version, new.Phase))
}

func (l *changeLog) calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// settle waits until the log holds want entries, then a little longer so
// that a duplicate call would show, and returns the entries.
func (l *changeLog) settle(t *testing.T, want int) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for len(l.calls()) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return l.calls()
}

// TestOnChangeOncePerChange: every change a Manager installs, from whatever
// source, reaches its hooks exactly once with the replaced and the new
// state; failed and refused changes reach them not at all.
func TestOnChangeOncePerChange(t *testing.T) {
	ctx := context.Background()
	toPreferJWT := func(s *State) { s.Phase = PhasePreferJWT }
	tests := []struct {
		name string
		// run makes the change(s) on a Manager whose hooks are logged
		// (watched), possibly through another one (peer), and returns the
		// calls the log must hold.
		run func(t *testing.T, watched *Manager, peer func(RedisOptions) *Manager) []string
		// redis: the Managers share a redis-server and run (Run); opts
		// are the watched one's.
		redis bool
		opts  RedisOptions
	}{
		{name: "apply", run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			mustApply(t, m, change(m, "ops", "", toPreferJWT))
			return []string{"1->2 prefer-jwt"}
		}},
		{name: "rollback", run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			mustApply(t, m, change(m, "ops", "", toPreferJWT))
			if _, err := m.Rollback(ctx, "ops", "back"); err != nil {
				t.Fatal(err)
			}
			return []string{"1->2 prefer-jwt", "2->3 dual"}
		}},
		{name: "reload static", run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			s := initialState()
			s.Phase = PhaseRetiring
			for range 2 { // the second read has the same settings: no change
				if err := m.ReloadStatic(s); err != nil {
					t.Fatal(err)
				}
			}
			return []string{"1->2 retiring"}
		}},
		{name: "refused and conflicting changes", run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			c := change(m, "ops", "", func(s *State) { s.Phase = PhaseJWTOnly })
			if _, err := m.Apply(ctx, c); !errors.Is(err, ErrGuardRefused) {
				t.Fatalf("guarded change = %v, want ErrGuardRefused", err)
			}
			c = change(m, "ops", "", toPreferJWT)
			c.Expect = 7
			if _, err := m.Apply(ctx, c); !errors.Is(err, ErrVersionConflict) {
				t.Fatalf("stale change = %v, want ErrVersionConflict", err)
			}
			return nil
		}},
		{name: "own change announced back over pub/sub", redis: true, run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			mustApply(t, m, change(m, "ops", "", toPreferJWT))
			return []string{"1->2 prefer-jwt"}
		}},
		{name: "another instance's change over pub/sub", redis: true, run: func(t *testing.T, _ *Manager, peer func(RedisOptions) *Manager) []string {
			other := peer(RedisOptions{})
			mustApply(t, other, change(other, "ops", "", toPreferJWT))
			return []string{"1->2 prefer-jwt"}
		}},
		{name: "another instance's change found by the periodic re-read", redis: true,
			opts: RedisOptions{PollInterval: 100 * time.Millisecond},
			run: func(t *testing.T, _ *Manager, peer func(RedisOptions) *Manager) []string {
				other := peer(RedisOptions{DisablePublish: true})
				mustApply(t, other, change(other, "ops", "", toPreferJWT))
				return []string{"1->2 prefer-jwt"}
			}},
		{name: "state restored after the backend lost it", redis: true, run: func(t *testing.T, m *Manager, _ func(RedisOptions) *Manager) []string {
			if err := m.backend.(*redisBackend).client.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			m.refresh(ctx)
			return []string{"1->2 dual"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			guard := &fakeGuard{share: 0.5}
			var watched *Manager
			var peer func(RedisOptions) *Manager
			if tc.redis {
				srv := redistest.Start(t)
				running := func(o RedisOptions) *Manager {
					m := newTestManager(t, NewRedisBackend(newRedisClient(t, srv), o), clock, guard.Func)
					runCtx, cancel := context.WithCancel(ctx)
					done := make(chan struct{})
					go func() { defer close(done); m.Run(runCtx) }()
					t.Cleanup(func() { cancel(); <-done })
					return m
				}
				watched, peer = running(tc.opts), running
				time.Sleep(50 * time.Millisecond) // let it subscribe
			} else {
				watched = newTestManager(t, nil, clock, guard.Func)
			}
			var log changeLog
			watched.OnChange(log.hook)
			want := tc.run(t, watched, peer)
			if got := log.settle(t, len(want)); !slices.Equal(got, want) {
				t.Errorf("hook calls = %q, want %q", got, want)
			}
		})
	}
}

func mustApply(t *testing.T, m *Manager, c Change) State {
	t.Helper()
	s, err := m.Apply(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOnChangeHookMayChangeTheState: a hook that applies a change itself
// neither deadlocks nor reorders: its change is reported after the one that
// triggered it. The removed hook hears nothing more.
func TestOnChangeHookMayChangeTheState(t *testing.T) {
	m := newTestManager(t, nil, newClock(), nil)
	var log changeLog
	m.OnChange(log.hook)
	remove := m.OnChange(func(_, new State) {
		if new.Phase == PhasePreferJWT {
			mustApply(t, m, change(m, "hook", "follow up", func(s *State) { s.Phase = PhaseRetiring }))
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustApply(t, m, change(m, "ops", "", func(s *State) { s.Phase = PhasePreferJWT }))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply did not return: a hook calling Apply deadlocked")
	}
	if got, want := log.calls(), []string{"1->2 prefer-jwt", "2->3 retiring"}; !slices.Equal(got, want) {
		t.Errorf("hook calls = %q, want %q", got, want)
	}

	remove()
	mustApply(t, m, change(m, "ops", "", func(s *State) { s.Phase = PhasePreferJWT }))
	if got := log.calls(); len(got) != 3 {
		t.Errorf("after the follow-up hook was removed, calls = %q, want one more", got)
	}
	if v := m.Flags().Current().Version; v != 4 {
		t.Errorf("version %d after the removed hook's trigger, want 4 (the hook ran)", v)
	}
}

// TestOnChangeConcurrentChangesInOrder races writers on one Manager, many
// times: the hook hears every version once, in order, each from the one
// before it, and never two calls at once.
func TestOnChangeConcurrentChangesInOrder(t *testing.T) {
	for trial := range 40 {
		m := newTestManager(t, nil, newClock(), nil)
		var (
			mu      sync.Mutex
			active  int
			overlap bool
			got     []string
		)
		m.OnChange(func(old, new State) {
			mu.Lock()
			active++
			overlap = overlap || active > 1
			got = append(got, fmt.Sprintf("%d->%d", old.Version, new.Version))
			mu.Unlock()
			time.Sleep(time.Microsecond) // widen the window for an overlap
			mu.Lock()
			active--
			mu.Unlock()
		})
		const writers, each = 4, 5
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; i < each; {
					c := change(m, fmt.Sprintf("w%d", w), "", func(s *State) { s.Rollout = float64(w*10 + i) })
					if _, err := m.Apply(context.Background(), c); errors.Is(err, ErrVersionConflict) {
						continue
					} else if err != nil {
						t.Error(err)
						return
					}
					i++
				}
			})
		}
		wg.Wait()
		want := make([]string, 0, writers*each)
		for v := 1; v <= writers*each; v++ {
			want = append(want, fmt.Sprintf("%d->%d", v, v+1))
		}
		mu.Lock()
		if overlap || !slices.Equal(got, want) {
			t.Fatalf("trial %d: overlap %v, calls %q, want %q", trial, overlap, got, want)
		}
		mu.Unlock()
	}
}
