package usage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Redis comes back with less than it had acknowledged: restarted empty, or
// from a snapshot older than the last flushes. The flush must notice, move
// the batch sequence forward and deliver everything not yet acknowledged,
// exactly once; what Redis had acknowledged and then lost is gone, and the
// report says so.
func TestFlushRecoversWhenRedisLostData(t *testing.T) {
	tests := []struct {
		name string
		// snapshot: SAVE after the first flush and restart from it; else
		// restart empty.
		snapshot bool
	}{
		{name: "restarted empty"},
		{name: "restarted from an older snapshot", snapshot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startRedis(t)
			clock := newClock(base)
			r := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
			// A second process that flushed before the loss and after it
			// must recover too, on its own sequence.
			r2 := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
			direct := newRedisClient(t, srv.Addr())
			ctx := context.Background()
			flush := func(step string, rec *Recorder) {
				t.Helper()
				if err := rec.Flush(ctx); err != nil {
					t.Fatalf("%s: flush: %v", step, err)
				}
			}

			kept := record(r, 0, 40) // in the snapshot, if any
			kept.merge(record(r2, 40, 10))
			flush("before the snapshot", r)
			flush("before the snapshot", r2)
			if tt.snapshot {
				if err := direct.Save(ctx).Err(); err != nil {
					t.Fatalf("SAVE: %v", err)
				}
			}
			// Acknowledged by Redis, then lost with it.
			clock.Advance(time.Minute)
			record(r, 50, 30)
			flush("after the snapshot", r)
			record(r2, 80, 20)
			flush("after the snapshot", r2)
			record(r, 100, 25)
			flush("after the snapshot", r)

			srv.Stop()
			want := record(r, 125, 35) // recorded while Redis is down
			if err := r.Flush(ctx); err == nil {
				t.Fatal("flush with Redis stopped succeeded")
			}
			if tt.snapshot {
				srv.Restart()
			} else {
				srv.RestartEmpty()
			}
			lostAt := clock.Now().Add(time.Minute)
			clock.Set(lostAt)
			want.merge(record(r, 160, 45))
			flush("after the restart", r) // the old script refused this forever (TSGAP)
			want.merge(record(r2, 205, 15))
			flush("after the restart", r2)
			if len(r.pending) != 0 || len(r2.pending) != 0 {
				t.Fatalf("pending after recovery: %d and %d batches, want none", len(r.pending), len(r2.pending))
			}
			// Steady state again: the next batches go through the normal path.
			want.merge(record(r, 220, 17))
			flush("steady", r)
			if tt.snapshot {
				want.merge(kept)
			}

			rep, err := r.Report(ctx, time.Hour, "")
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			checkReport(t, tt.name, rep, want)
			if rep.DataLostAt == nil || !rep.DataLostAt.Equal(lostAt) {
				t.Errorf("data_lost_at = %v, want %v", rep.DataLostAt, lostAt)
			}
			if rep.Readiness.WindowObserved || !hasReason(rep.Readiness, "Redis lost usage data") {
				t.Errorf("readiness after a loss: observed %v, reasons %q; want not observed, with the loss", rep.Readiness.WindowObserved, rep.Readiness.Reasons)
			}
			for i, rec := range []*Recorder{r, r2} {
				if v, err := gatherValue(rec.metrics.private, "tokenshift_usage_store_data_loss_total", nil); err != nil || v != 1 {
					t.Errorf("recorder %d: data loss metric = %v (%v), want 1", i, v, err)
				}
			}
		})
	}
}

// A batch Redis applied but whose reply was lost is retried after Redis
// restarted from a snapshot that already holds it: it must not count twice,
// and no loss is reported (nothing acknowledged was lost).
func TestRetryAfterRestartFromSnapshotHoldingTheBatch(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, px.Addr())))
	direct := newRedisClient(t, srv.Addr())
	ctx := context.Background()

	want := record(r, 0, 20)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	clock.Advance(time.Minute)
	want.merge(record(r, 20, 33))
	px.Blackhole()
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush without replies succeeded")
	}
	deadline := time.Now().Add(2 * time.Second)
	for direct.Get(ctx, seqKey(r.backend.(*redisBackend).stream)).Val() != "2" {
		if time.Now().After(deadline) {
			t.Fatal("Redis never applied the black-holed batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := direct.Save(ctx).Err(); err != nil {
		t.Fatalf("SAVE: %v", err)
	}
	srv.Restart()
	px.Open()
	want.merge(record(r, 53, 9))
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("retry after the restart: %v", err)
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "retried after restart", rep, want)
	if rep.DataLostAt != nil {
		t.Errorf("data_lost_at = %v, want none: the snapshot held everything acknowledged", rep.DataLostAt)
	}
}

// Step by step through the script: duplicates are no-ops before and after a
// loss, only the first unacknowledged batch may move the sequence forward,
// and a batch that would skip one is refused.
func TestApplyAfterLossSteps(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	direct := newRedisClient(t, srv.Addr())
	be := r.backend.(*redisBackend)
	ctx := context.Background()

	cutOne := func(offset, n int) (*batch, *counts) {
		c := record(r, offset, n)
		r.flushMu.Lock()
		defer r.flushMu.Unlock()
		return r.cut(clock.Now().Unix()), c
	}
	b1, want := cutOne(0, 11)
	b2, c2 := cutOne(11, 12)
	b3, _ := cutOne(23, 13) // acknowledged, then lost
	b4, c4 := cutOne(36, 14)
	b5, c5 := cutOne(50, 15)
	want.merge(c2)
	want.merge(c4)
	want.merge(c5)

	undoB3 := func() {
		// What an older snapshot looks like: the marker and the counters
		// both without b3.
		if err := direct.Set(ctx, seqKey(be.stream), "2", 0).Err(); err != nil {
			t.Fatal(err)
		}
		for _, c := range b3.counts {
			for _, key := range []string{minuteKey(floorTo(b3.at, minuteSeconds)), hourKey(floorTo(b3.at, hourSeconds))} {
				direct.HIncrBy(ctx, key, c.key.String(), -c.n)
			}
		}
	}
	steps := []struct {
		name     string
		before   func()
		batches  []*batch
		applied  int
		wantLost bool
		wantErr  string
	}{
		{name: "three in order", batches: []*batch{b1, b2, b3}, applied: 3},
		{name: "Redis forgets b3", before: undoB3},
		{name: "b5 may not jump over b4", batches: []*batch{b5}, wantErr: "TSGAP"},
		{name: "b4 recovers the sequence, b5 follows", batches: []*batch{b4, b5}, applied: 2, wantLost: true},
		{name: "everything again is a no-op", batches: []*batch{b1, b2, b3, b4, b5}, applied: 5},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		if s.batches == nil {
			continue
		}
		n, lost, err := be.apply(ctx, clock.Now().Unix(), s.batches)
		if n != s.applied || lost != s.wantLost || (s.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: apply = %d, lost %v, err %v; want %d, lost %v, err containing %q", s.name, n, lost, err, s.applied, s.wantLost, s.wantErr)
		}
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "after the steps", rep, want)
}

// Close is bounded by its context: a store that never answers cannot hold
// the shutdown longer than the caller allows, and the loss is reported.
func TestCloseIsBoundedByItsContext(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	// Timeouts far longer than the deadline, which bounds the flush as it
	// does in serve (the store's client honours context deadlines).
	rdb := redis.NewClient(&redis.Options{
		Addr: px.Addr(), DialTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, MaxRetries: -1, ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	r := mustNew(t, testOptions(clock, rdb))
	ctx := context.Background()
	record(r, 0, 5)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	record(r, 5, 5)
	px.Blackhole()
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := r.Close(cctx)
	took := time.Since(t0)
	t.Logf("Close against a silent Redis returned after %v", took)
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Close = %v, want an error wrapping auth.ErrUnavailable", err)
	}
	// Generous for a loaded machine, far below the client's 10s timeouts.
	if took > 3*time.Second {
		t.Errorf("Close took %v with a 150ms deadline", took)
	}
}

func hasReason(v Readiness, part string) bool {
	for _, r := range v.Reasons {
		if strings.Contains(r, part) {
			return true
		}
	}
	return false
}

// Close keeps trying until its deadline: Redis coming back within the
// shutdown budget still gets the last deltas.
func TestCloseRetriesUntilItsDeadline(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, px.Addr())))
	ctx := context.Background()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	want := record(r, 0, 31)
	px.Cut()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Close(cctx) }()
	time.Sleep(400 * time.Millisecond) // a few failed attempts
	px.Open()
	if err := <-done; err != nil {
		t.Fatalf("Close after Redis came back: %v", err)
	}
	if v, err := gatherValue(r.metrics.private, "tokenshift_usage_flush_errors_total", nil); err != nil || v < 1 {
		t.Errorf("flush errors = %v (%v): Close should have failed at least once while Redis was cut", v, err)
	}
	reader := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	rep, err := reader.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "after Close", rep, want)
}
