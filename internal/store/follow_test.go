package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// fakeTimers is FollowOptions.After under the test's control: every wait
// the follower starts is handed to the test, which reads its duration and
// decides when (whether) it fires.
type fakeTimers struct{ calls chan timerCall }

type timerCall struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeTimers() *fakeTimers { return &fakeTimers{calls: make(chan timerCall, 100)} }

func (f *fakeTimers) After(d time.Duration) <-chan time.Time {
	c := timerCall{d: d, fire: make(chan time.Time, 1)}
	f.calls <- c
	return c.fire
}

// next is the next wait the follower started.
func (f *fakeTimers) next(t *testing.T) timerCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the follower started no wait within 5s")
		return timerCall{}
	}
}

// wantWait checks the next wait lasts d, and fires it.
func (f *fakeTimers) wantWait(t *testing.T, d time.Duration) {
	t.Helper()
	c := f.next(t)
	if c.d != d {
		t.Fatalf("the follower waits %v; want %v", c.d, d)
	}
	c.fire <- time.Time{}
}

// follow runs a Follower in the background and records its Reloads.
type follow struct {
	f       *Follower
	timers  *fakeTimers
	reloads chan struct{}
	fail    atomic.Int32 // Reloads still to fail
	err     error        // what a failing Reload returns
	running atomic.Int32
	overlap atomic.Bool
	logs    *logbuf.Buffer
	cancel  context.CancelFunc
	done    chan struct{}
}

func startFollow(t *testing.T, st Store, opts FollowOptions) *follow {
	t.Helper()
	fw := &follow{timers: newFakeTimers(), reloads: make(chan struct{}, 100), err: errUnavailableForTest, logs: &logbuf.Buffer{}}
	opts.Name, opts.Channel = "test: reload", "followed"
	opts.After = fw.timers.After
	opts.Logger = slog.New(slog.NewTextHandler(fw.logs, nil))
	if opts.Period == 0 {
		opts.Period = time.Hour
	}
	opts.Reload = func(context.Context) error {
		if fw.running.Add(1) > 1 {
			fw.overlap.Store(true)
		}
		defer fw.running.Add(-1)
		fw.reloads <- struct{}{}
		if fw.fail.Add(-1) >= 0 {
			return fw.err
		}
		fw.fail.Store(0)
		return nil
	}
	f, err := NewFollower(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fw.f, fw.cancel, fw.done = f, cancel, make(chan struct{})
	go func() { defer close(fw.done); f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-fw.done
		if fw.overlap.Load() {
			t.Error("two Reloads ran at once")
		}
	})
	return fw
}

var errUnavailableForTest = fmt.Errorf("test: %w", auth.ErrUnavailable)

// wantReload waits for one Reload.
func (fw *follow) wantReload(t *testing.T, why string) {
	t.Helper()
	select {
	case <-fw.reloads:
	case <-time.After(5 * time.Second):
		t.Fatalf("no Reload on %s within 5s", why)
	}
}

// wantNoReload checks no Reload happens for a while.
func (fw *follow) wantNoReload(t *testing.T, why string) {
	t.Helper()
	select {
	case <-fw.reloads:
		t.Fatalf("a Reload ran %s", why)
	case <-time.After(100 * time.Millisecond):
	}
}

func (fw *follow) wantStopped(t *testing.T, why string) {
	t.Helper()
	select {
	case <-fw.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("Run did not return after %s", why)
	}
}

// publishUntil publishes payload until cond holds: the subscription starts
// asynchronously, as on Redis.
func publishUntil(t *testing.T, st Store, payload string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_ = st.Publish(context.Background(), "followed", []byte(payload))
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("not heard within 5s")
		}
	}
}

func newMemoryForFollow(t *testing.T) *Memory {
	m := NewMemory(nil)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// Every announcement reloads, on both back ends; no timer had to fire.
func TestFollowReloadsOnMessage(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) Store
	}{
		{name: "memory", open: func(t *testing.T) Store { return newMemoryForFollow(t) }},
		{name: "redis", open: func(t *testing.T) Store { return redisBackend(t).st }},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			st := be.open(t)
			fw := startFollow(t, st, FollowOptions{})
			heard := func() bool {
				select {
				case <-fw.reloads:
					return true
				case <-time.After(20 * time.Millisecond):
					return false
				}
			}
			publishUntil(t, st, "changed", heard)
			publishUntil(t, st, "changed again", heard)
		})
	}
}

// OnMessage takes an announcement that carries the change: no Reload.
func TestFollowOnMessageTakesThePayload(t *testing.T) {
	st := newMemoryForFollow(t)
	got := make(chan string, 100)
	fw := startFollow(t, st, FollowOptions{OnMessage: func(p []byte) { got <- string(p) }})
	publishUntil(t, st, "revoked", func() bool {
		select {
		case p := <-got:
			return p == "revoked"
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	fw.wantNoReload(t, "on a message OnMessage took")
}

// A real Redis restart: the subscription comes back by itself and the
// follower reloads, since announcements made meanwhile were lost.
func TestFollowReloadsOnReconnect(t *testing.T) {
	srv := redistest.Start(t)
	st := newTestRedis(t, srv.URL(), fast)
	got := make(chan string, 100)
	fw := startFollow(t, st, FollowOptions{OnMessage: func(p []byte) { got <- string(p) }})
	publishUntil(t, st, "subscribed", func() bool {
		select {
		case <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	fw.wantNoReload(t, "before any reconnect")
	srv.Restart()
	fw.wantReload(t, "reconnect")
}

// The first periodic Reload comes after First, the others Period after the
// previous Reload, whatever caused it; Next shortens a wait to the value's
// own next change.
func TestFollowPeriodAndSchedule(t *testing.T) {
	t.Run("first, then period", func(t *testing.T) {
		fw := startFollow(t, newMemoryForFollow(t), FollowOptions{First: 7 * time.Second, Period: 11 * time.Second})
		fw.timers.wantWait(t, 7*time.Second)
		fw.wantReload(t, "the first period")
		fw.timers.wantWait(t, 11*time.Second)
		fw.wantReload(t, "the period")
		fw.timers.next(t) // the next period starts...
		fw.f.Request("test")
		fw.wantReload(t, "a request")
		fw.timers.wantWait(t, 11*time.Second) // ...and restarts after the request's Reload
		fw.wantReload(t, "the period after a request")
	})
	t.Run("no first: the period", func(t *testing.T) {
		fw := startFollow(t, newMemoryForFollow(t), FollowOptions{Period: 11 * time.Second})
		fw.timers.wantWait(t, 11*time.Second)
		fw.wantReload(t, "the period")
	})
	t.Run("next change sooner than the period", func(t *testing.T) {
		var next atomic.Int64
		next.Store(int64(3 * time.Second))
		fw := startFollow(t, newMemoryForFollow(t), FollowOptions{Period: 11 * time.Second,
			Next: func() time.Duration { return time.Duration(next.Load()) }})
		fw.timers.wantWait(t, 3*time.Second)
		next.Store(int64(time.Hour)) // the change is done; the next one is far
		fw.wantReload(t, "the planned change")
		fw.timers.wantWait(t, 11*time.Second)
		fw.wantReload(t, "the period")
	})
}

// A failed Reload is retried after Min, then twice as long each time up to
// Max, until it succeeds; then the period starts again.
func TestFollowRetriesWithBackoff(t *testing.T) {
	fw := startFollow(t, newMemoryForFollow(t), FollowOptions{Period: 11 * time.Second,
		Retry: Backoff{Min: 100 * time.Millisecond, Max: 500 * time.Millisecond}})
	fw.timers.next(t) // the first period, never fired
	fw.fail.Store(5)
	fw.f.Request(ReasonReconnect)
	fw.wantReload(t, "the request")
	for _, d := range []time.Duration{100, 200, 400, 500, 500} {
		fw.f.Request("meanwhile") // waits for the retries; never a second Reload at once
		fw.timers.wantWait(t, d*time.Millisecond)
		fw.wantReload(t, "a retry")
	}
	// The loop started the period before it took the pending request.
	if c := fw.timers.next(t); c.d != 11*time.Second {
		t.Fatalf("after the retries the follower waits %v; want the period", c.d)
	}
	fw.wantReload(t, "the request made during the retries")
	fw.timers.wantWait(t, 11*time.Second)
	fw.wantReload(t, "the period")
	logs := fw.logs.String()
	if n := strings.Count(logs, "test: reload failed, retrying"); n != 5 {
		t.Errorf("%d retry lines; want 5:\n%s", n, logs)
	}
	if !strings.Contains(logs, "test: reload succeeded after retries") || !strings.Contains(logs, "attempts=6") || !strings.Contains(logs, "why=reconnect") {
		t.Errorf("no success line naming 6 attempts and the reason:\n%s", logs)
	}
}

// Without Retry a failed Reload waits for the next trigger.
func TestFollowWithoutRetryWaitsForTheNextTrigger(t *testing.T) {
	fw := startFollow(t, newMemoryForFollow(t), FollowOptions{Period: 11 * time.Second})
	fw.timers.next(t)
	fw.fail.Store(1)
	fw.f.Request("test")
	fw.wantReload(t, "the request")
	fw.timers.wantWait(t, 11*time.Second)
	fw.wantReload(t, "the period after a failure")
	if logs := fw.logs.String(); logs != "" {
		t.Errorf("the follower logged a failure it does not retry:\n%s", logs)
	}
}

// Run returns, and its subscription ends, when ctx is done, when the store
// is closed, and when a Reload finds the store closed (during retries too).
func TestFollowStops(t *testing.T) {
	subscribers := func(m *Memory) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.subs["followed"])
	}
	tests := []struct {
		name string
		stop func(t *testing.T, fw *follow, m *Memory)
	}{
		{name: "context done", stop: func(t *testing.T, fw *follow, _ *Memory) { fw.cancel() }},
		{name: "store closed", stop: func(t *testing.T, fw *follow, m *Memory) { _ = m.Close() }},
		{name: "context done during a retry", stop: func(t *testing.T, fw *follow, _ *Memory) {
			fw.fail.Store(100)
			fw.f.Request("test")
			fw.wantReload(t, "the request")
			fw.timers.next(t) // a back-off, never fired
			fw.cancel()
		}},
		{name: "a Reload finds the store closed", stop: func(t *testing.T, fw *follow, _ *Memory) {
			fw.err = ErrClosed
			fw.fail.Store(100)
			fw.f.Request("test")
			fw.wantReload(t, "the request")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemoryForFollow(t)
			fw := startFollow(t, m, FollowOptions{Retry: Backoff{Min: time.Second, Max: time.Second}})
			waitFor(t, func() bool { return subscribers(m) == 1 })
			fw.timers.next(t)
			tt.stop(t, fw, m)
			fw.wantStopped(t, tt.name)
			if n := subscribers(m); n != 0 {
				t.Fatalf("%d subscriptions left after Run returned", n)
			}
			fw.f.Request("after the end")
			fw.wantNoReload(t, "after Run returned")
		})
	}
}

func TestNewFollowerRefusesIncompleteOptions(t *testing.T) {
	reload := func(context.Context) error { return nil }
	m := newMemoryForFollow(t)
	tests := []struct {
		name string
		st   Store
		opts FollowOptions
	}{
		{name: "no store", opts: FollowOptions{Channel: "c", Reload: reload, Period: time.Second}},
		{name: "no channel", st: m, opts: FollowOptions{Reload: reload, Period: time.Second}},
		{name: "no reload", st: m, opts: FollowOptions{Channel: "c", Period: time.Second}},
		{name: "no period", st: m, opts: FollowOptions{Channel: "c", Reload: reload}},
		{name: "negative first", st: m, opts: FollowOptions{Channel: "c", Reload: reload, Period: time.Second, First: -1}},
		{name: "retry max below min", st: m, opts: FollowOptions{Channel: "c", Reload: reload, Period: time.Second,
			Retry: Backoff{Min: time.Second, Max: time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewFollower(tt.st, tt.opts); !errors.Is(err, ErrFollowConfig) {
				t.Fatalf("NewFollower = %v; want ErrFollowConfig", err)
			}
		})
	}
}
