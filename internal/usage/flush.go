package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/tick"
)

// backend is where batches are aggregated: Redis shared by every instance, or
// process memory for the embedded default. Both use the same bucket model so
// the report code is shared.
type backend interface {
	// apply delivers batches in order and returns how many of them, from the
	// first, are known to be applied. Applying a batch twice must count once.
	// now (unix seconds, from the injected clock) dates the bucket expiries.
	// lost reports that the store had lost data it had acknowledged before
	// (and that the batches were applied anyway).
	apply(ctx context.Context, now int64, batches []*batch) (applied int, lost bool, err error)
	// markSince records when aggregation started, unless already recorded.
	markSince(ctx context.Context, at int64) error
	// read returns the buckets and figures a report needs.
	read(ctx context.Context, q readQuery) (*rawData, error)
}

// Run flushes every FlushInterval until ctx is done. It does not flush on its
// way out: the caller does that with Close and a deadline of its own (what is
// left of the shutdown budget), once Run has returned.
func (r *Recorder) Run(ctx context.Context) {
	r.flushWithTimeout(ctx)
	tick.Every(ctx.Done(), r.interval, func() bool {
		r.flushWithTimeout(ctx)
		return true
	})
}

// closeRetryDelay spaces the final flush's attempts.
const closeRetryDelay = 100 * time.Millisecond

// Close delivers the last deltas before the process exits. It retries until
// ctx's deadline (what is left of the shutdown budget), so a Redis blip during
// shutdown costs nothing. What cannot be delivered is lost with the process;
// the error log says how many batches, and the error wraps
// auth.ErrUnavailable.
func (r *Recorder) Close(ctx context.Context) error {
	for {
		err := r.Flush(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(closeRetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			r.flushMu.Lock()
			lost := len(r.pending)
			r.flushMu.Unlock()
			r.log.Error("usage: final flush failed; unflushed usage counts are lost", "batches", lost, "err", err)
			return err
		case <-t.C:
		}
	}
}

func (r *Recorder) flushWithTimeout(ctx context.Context) {
	timeout := min(max(2*r.interval, time.Second), 10*time.Second)
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_ = r.Flush(fctx) // logged and counted by Flush; the deltas stay pending
}

// Flush cuts what was recorded since the last cut into a batch and delivers
// every pending batch, oldest first. On failure the batches stay pending and
// are retried as they are by the next Flush; new deltas go to a new batch. The
// error wraps auth.ErrUnavailable.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	return r.flushLocked(ctx)
}

// flushIfIdle flushes before a report, so the deltas this instance counted
// are included. It gives up at once when a flush is already running (that one
// delivers the same deltas, and a report must not queue behind a flush stuck
// on a slow store) or when the last flush failed (the store is most likely
// still down: a report would pay a timeout for nothing, the read that follows
// finds out, and the background loop keeps retrying). Otherwise it gets a
// quarter of a store timeout: a healthy store applies a batch in
// milliseconds, and a batch that misses the report is counted by the next.
func (r *Recorder) flushIfIdle(ctx context.Context) {
	if !r.flushMu.TryLock() {
		return
	}
	defer r.flushMu.Unlock()
	if r.failing {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, r.storeTimeout/4)
	defer cancel()
	_ = r.flushLocked(fctx) // a failure shows up in the read that follows, or not at all
}

func (r *Recorder) flushLocked(ctx context.Context) error {
	now := r.clock().Unix()
	if len(r.pending) < r.maxBacklog {
		if b := r.cut(now); b != nil {
			r.pending = append(r.pending, b)
		}
	} else {
		// Not cutting keeps the deltas in the live counters, which are fixed
		// size: counts are not lost, they are only dated later. Users keep
		// filling the fixed table and are dropped (and counted) when it is full.
		r.metrics.backlogFull.Inc()
	}

	var err error
	switch {
	case len(r.pending) > 0:
		var n int
		var lost bool
		n, lost, err = r.backend.apply(ctx, now, r.pending)
		if lost {
			r.metrics.dataLoss.Inc()
			r.log.Warn("usage: Redis had lost usage data it had acknowledged (restarted empty or from an older snapshot, or failed over); counting resumed, the report marks the loss",
				"acknowledged_through", r.pending[0].seq-1)
		}
		clear(r.pending[:n])
		r.pending = append(r.pending[:0], r.pending[n:]...)
		if err == nil {
			r.sinceMarked = true // every applied batch marks the start too
		}
	case !r.sinceMarked:
		err = r.backend.markSince(ctx, now)
		if err == nil {
			r.sinceMarked = true
		}
	}
	r.metrics.backlog.Set(float64(len(r.pending)))

	if err != nil {
		r.metrics.flushErrors.Inc()
		if !r.failing {
			r.failing = true
			r.log.Warn("usage: flush failed; deltas kept in memory and retried", "pending_batches", len(r.pending), "err", err)
		}
		return fmt.Errorf("usage: flush: %w: %w", auth.ErrUnavailable, err)
	}
	r.metrics.lastFlush.Set(float64(r.clock().Unix()))
	if r.failing {
		r.failing = false
		r.log.Info("usage: flush recovered")
	}
	return nil
}
