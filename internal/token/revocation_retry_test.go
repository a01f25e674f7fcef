package token

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// flakyStore fails the next `fail` loads (HGetAll) with an unavailable
// error, the way a Redis that has just come back can, and lets the test play
// the subscription's reconnect.
type flakyStore struct {
	store.Store
	fail   atomic.Int32 // loads still to fail
	loads  atomic.Int32 // every HGetAll, failed or not
	failed atomic.Int32

	mu          sync.Mutex
	onReconnect func()
}

var errFlaky = fmt.Errorf("flaky: %w", auth.ErrUnavailable)

func (s *flakyStore) HGetAll(ctx context.Context, key string) (map[string][]byte, error) {
	s.loads.Add(1)
	if s.fail.Add(-1) >= 0 {
		s.failed.Add(1)
		return nil, errFlaky
	}
	s.fail.Store(0)
	return s.Store.HGetAll(ctx, key)
}

func (s *flakyStore) Subscribe(ctx context.Context, channel string, fn func([]byte), onReconnect func()) error {
	s.mu.Lock()
	s.onReconnect = onReconnect
	s.mu.Unlock()
	return s.Store.Subscribe(ctx, channel, fn, onReconnect)
}

// reconnect calls the hook the revocations gave Subscribe, as the Redis back
// end does when its subscription comes back.
func (s *flakyStore) reconnect(t *testing.T) {
	t.Helper()
	var hook func()
	if !waitUntil(5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		hook = s.onReconnect
		return hook != nil
	}) {
		t.Fatal("the revocations never subscribed")
	}
	hook()
}

// The store was emptied and its first loads after the reconnect fail: the
// re-sync is retried until it succeeds and writes the mirror back, instead of
// leaving the store without the entries until the periodic re-sync a minute
// later.
func TestRevocationsResyncRetriedUntilItSucceeds(t *testing.T) {
	clock := newFakeClock()
	mem := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = mem.Close() })
	st := &flakyStore{Store: mem}
	a := startRevocations(t, st, clock.Now)
	ctx := context.Background()
	if err := a.RevokeSID(ctx, "sid-logged-out", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := mem.DeleteCtx(ctx, revKeyJTI, revKeySID, revKeyUser); err != nil { // the empty restart
		t.Fatal(err)
	}
	const failures = 4 // 100+200+400+800 ms of back-off
	st.fail.Store(failures)
	st.reconnect(t)

	if !waitUntil(10*time.Second, func() bool {
		all, err := mem.HGetAll(ctx, revKeySID)
		_, ok := all["sid-logged-out"]
		return err == nil && ok
	}) {
		t.Fatalf("the mirror was not written back after %d failed loads (%d loads in all)", st.failed.Load(), st.loads.Load())
	}
	if got := st.failed.Load(); got != failures {
		t.Fatalf("%d loads failed; want the %d armed", got, failures)
	}
	if c := startRevocations(t, mem, clock.Now); !c.SIDRevoked("sid-logged-out") {
		t.Fatal("an instance started after the retries does not know the revocation")
	}
}

// A revocation whose store write failed asks for a re-sync at once, which is
// retried until the store takes the entry.
func TestRevocationsFailedRevokeRetriedUntilStored(t *testing.T) {
	clock := newFakeClock()
	mem := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = mem.Close() })
	st := &flakyStore{Store: mem}
	a := startRevocations(t, &failingWrites{flakyStore: st}, clock.Now)
	ctx := context.Background()
	st.fail.Store(3)
	if err := a.RevokeJTI(ctx, "jti-revoked", clock.Now().Add(time.Hour)); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("RevokeJTI with the first write failing = %v; want ErrUnavailable", err)
	}
	if !waitUntil(10*time.Second, func() bool {
		all, err := mem.HGetAll(ctx, revKeyJTI)
		_, ok := all["jti-revoked"]
		return err == nil && ok
	}) {
		t.Fatal("a revocation whose write failed never reached the store")
	}
}

// failingWrites fails the first HSet, then behaves.
type failingWrites struct {
	*flakyStore
	failedOnce atomic.Bool
}

func (s *failingWrites) HSet(ctx context.Context, key string, exp time.Duration, field string, val []byte) error {
	if s.failedOnce.CompareAndSwap(false, true) {
		return errFlaky
	}
	return s.flakyStore.HSet(ctx, key, exp, field, val)
}

// Not ready until the initial load has succeeded: an instance whose load
// failed must not be given traffic with an empty mirror.
func TestRevocationsReadyOnlyAfterTheInitialLoad(t *testing.T) {
	clock := newFakeClock()
	mem := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = mem.Close() })
	st := &flakyStore{Store: mem}
	r := NewRevocations(st, clock.Now, nil)
	if err := r.Ready(); !errors.Is(err, ErrNotLoaded) || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Ready before Start = %v; want ErrNotLoaded", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st.fail.Store(1)
	if err := r.Start(ctx); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Start with the first load failing = %v; want ErrUnavailable", err)
	}
	if err := r.Ready(); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Ready after a failed Start = %v; want ErrNotLoaded", err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(); err != nil {
		t.Fatalf("Ready after the load = %v", err)
	}
}

// On a real Redis restarted empty, whose first loads after the restart fail
// (as the soak saw 35 ms after Redis came back), the running instance keeps
// re-syncing until it has written its mirror back, so an instance started a
// few seconds later refuses the logged-out login and the revoked token. On the
// old code the only retry was the periodic re-sync a minute later.
func TestRevocationsSurviveEmptyRestartWithFailingResync(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	st := &flakyStore{Store: newRedisStore(t, srv.URL())}
	a := startRevocations(t, st, time.Now)
	now := time.Now()
	if err := a.RevokeSID(ctx, "sid-logged-out", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeJTI(ctx, "jti-rfc7009", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Arm the failures only after the first re-sync (3 loads at start, 3 a
	// second later), so that they hit the reconnect's re-sync.
	if !waitUntil(5*time.Second, func() bool { return st.loads.Load() >= 6 }) {
		t.Fatal("the first re-sync never ran")
	}
	st.fail.Store(3)
	srv.RestartEmpty()

	probe := newRedisStore(t, srv.URL())
	// Both lists are written back, one after the other: wait for both, or a
	// loaded machine can start the new instance between the two writes.
	writtenBack := waitUntil(8*time.Second, func() bool {
		jtis, err1 := probe.HGetAll(ctx, revKeyJTI)
		sids, err2 := probe.HGetAll(ctx, revKeySID)
		_, okJ := jtis["jti-rfc7009"]
		_, okS := sids["sid-logged-out"]
		return err1 == nil && err2 == nil && okJ && okS
	})
	if st.failed.Load() == 0 {
		t.Fatal("no load failed: the test did not hit the reconnect's re-sync")
	}
	c := startRevocations(t, newRedisStore(t, srv.URL()), time.Now)
	if !c.SIDRevoked("sid-logged-out") || !c.JTIRevoked("jti-rfc7009") {
		t.Fatalf("an instance started 8 s after the restart accepts revoked credentials (written back: %v, failed loads: %d)", writtenBack, st.failed.Load())
	}
}
