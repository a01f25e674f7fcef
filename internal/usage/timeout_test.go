package usage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// TestReportBoundedWhenRedisHangs: with Redis frozen (connections open,
// nothing answered), a report and the guard's share read fail with
// auth.ErrUnavailable in about the configured read timeout, not after the
// pre-flush and the read have each used the client's retry (4 to 7 s for a 1s
// timeout before the fix). The client is built exactly as serve builds it
// (store.Open: MaxRetries 1, context deadlines honoured). Once Redis answers
// again, nothing recorded meanwhile is missing.
func TestReportBoundedWhenRedisHangs(t *testing.T) {
	t.Parallel()
	const readTimeout = time.Second
	// Generous for a loaded machine, yet below the 4s the unbounded path
	// costs at the very least (2 × 2 read timeouts).
	const bound = 3 * readTimeout

	srv := startRedis(t)
	st, err := store.Open(store.RedisOptions{URL: srv.URL(), ReadTimeout: readTimeout, WriteTimeout: readTimeout, DialTimeout: readTimeout}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	o := testOptions(newClock(time.Now()), st.Redis())
	o.Clock = time.Now
	o.StoreTimeout = readTimeout
	r := mustNew(t, o)
	ctx := context.Background()

	for range 5 {
		r.Record(auth.SchemeSession, "web", "u1", auth.OutcomeAccepted)
	}
	if rep, err := r.Report(ctx, time.Hour, ""); err != nil || rep.Schemes["session"].Requests != 5 {
		t.Fatalf("report with Redis up: %v, %+v", err, rep)
	}

	// Deltas the pre-flush will try to deliver into the frozen server.
	for range 3 {
		r.Record(auth.SchemeSession, "web", "u1", auth.OutcomeAccepted)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()

	timed := func(name string, call func() error) {
		t.Helper()
		start := time.Now()
		err := call()
		took := time.Since(start)
		t.Logf("%s with Redis frozen: %v after %v (read timeout %v)", name, err, took, readTimeout)
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s: err = %v, want auth.ErrUnavailable", name, err)
		}
		if took >= bound {
			t.Errorf("%s took %v, want < %v", name, took, bound)
		}
	}
	// First report: the last flush succeeded, so the pre-flush is tried, on
	// a deadline of its own.
	timed("first report", func() error { _, err := r.Report(ctx, time.Hour, ""); return err })
	// The pre-flush failed: later reports skip it.
	timed("second report", func() error { _, err := r.Report(ctx, time.Hour, ""); return err })
	timed("session share", func() error { _, err := r.SessionShare(ctx, []string{"web"}, time.Hour); return err })

	srv.Resume()
	resumed = true
	// The background loop is not running here: a flush retries the pending
	// batch, then the report sees every request.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.Flush(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flush after resume: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil || rep.Schemes["session"].Requests != 8 {
		t.Fatalf("report after resume: %v, session requests %+v, want 8", err, rep)
	}
}

// TestFlushIfIdleSkipsWhileFailing: the pre-flush of a report is not tried
// while the last flush failed, and is tried again once one succeeded.
func TestFlushIfIdleSkipsWhileFailing(t *testing.T) {
	r := mustNew(t, testOptions(newClock(base), nil))
	fb := &failingBackend{backend: r.backend}
	r.backend = fb
	r.Record(auth.SchemeBearer, "mobile", "u", auth.OutcomeAccepted)

	fb.fail = true
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("flush into a failing back end succeeded")
	}
	applies := fb.applies
	if _, err := r.Report(context.Background(), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if fb.applies != applies {
		t.Errorf("a report tried to flush while the last flush failed (%d applies, want %d)", fb.applies, applies)
	}

	fb.fail = false
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Record(auth.SchemeBearer, "mobile", "u", auth.OutcomeAccepted)
	applies = fb.applies
	rep, err := r.Report(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if fb.applies != applies+1 || rep.Schemes["bearer"].Requests != 2 {
		t.Errorf("after recovery the report's pre-flush ran %d times and the report counts %d bearer requests; want 1 and 2",
			fb.applies-applies, rep.Schemes["bearer"].Requests)
	}
}

// failingBackend fails apply on demand and counts the attempts.
type failingBackend struct {
	backend
	fail    bool
	applies int
}

func (f *failingBackend) apply(ctx context.Context, now int64, batches []*batch) (int, bool, error) {
	f.applies++
	if f.fail {
		return 0, false, auth.ErrUnavailable
	}
	return f.backend.apply(ctx, now, batches)
}
