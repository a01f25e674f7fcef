package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Following a shared value: a value in the store (the key-rotation state,
// the revocation lists, the CSRF key) that every instance mirrors in memory
// and that changes are announced for on a channel. Pub/sub delivers at most
// once and nothing while a subscription is down, so the mirror is re-read on
// every announcement, whenever the subscription comes back, and periodically
// as a safety net; a failed re-read can be retried with back-off, because
// until one succeeds the mirror may lag behind (or the store may lack what
// the re-read writes back). Follower is the one loop that does this.

// FollowOptions configures a Follower. Zero values take the documented
// defaults.
type FollowOptions struct {
	// Name starts every log line ("revocations: re-sync").
	Name string
	// Channel announces changes of the value. Required.
	Channel string
	// Reload re-reads the value and applies it. Required. It never runs
	// concurrently with itself; it should bound its own store calls.
	Reload func(ctx context.Context) error
	// OnMessage, if set, takes every announcement itself (one that carries
	// the change, such as a revocation) instead of a Reload. It runs on the
	// subscription's goroutine, concurrently with Reload.
	OnMessage func(payload []byte)
	// Period is the longest time between two Reloads. Required.
	Period time.Duration
	// First is the time until the first periodic Reload after Run starts
	// (the caller has loaded the value before). Default Period.
	First time.Duration
	// Next, if set, is how long until the value itself changes (a planned
	// change in it), so that Reload runs at that moment. It is read after
	// every Reload.
	Next func() time.Duration
	// Retry, if set, retries a failed Reload until it succeeds. Without it a
	// failed Reload waits for the next announcement, reconnect, request or
	// period, and reporting the failure is Reload's job.
	Retry Backoff
	// Logger reports retries. Default: discard.
	Logger *slog.Logger
	// After is the timer (default time.After); tests inject a fake one.
	After func(time.Duration) <-chan time.Time
}

// Backoff is a retry schedule: Min after the first failure, twice as long
// after each further one, at most Max.
type Backoff struct{ Min, Max time.Duration }

// Why a Reload runs, in log lines.
const (
	ReasonMessage   = "message"
	ReasonReconnect = "reconnect"
	ReasonPeriodic  = "periodic"
	ReasonScheduled = "scheduled" // FollowOptions.Next came due
)

// ErrFollowConfig: FollowOptions lack a required field.
var ErrFollowConfig = errors.New("store: invalid follow options")

// Follower keeps one shared value followed. Make it with NewFollower, run it
// once with Run; Request may be called at any time, before Run included.
type Follower struct {
	st      Store
	opts    FollowOptions
	pending chan string // one pending request is enough: it reads the same store
}

// NewFollower checks opts.
func NewFollower(st Store, opts FollowOptions) (*Follower, error) {
	if st == nil {
		return nil, fmt.Errorf("%w: a store, a channel and a Reload are required", ErrFollowConfig)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Follower{st: st, opts: opts, pending: make(chan string, 1)}, nil
}

// withDefaults fills zero fields and rejects settings that cannot work.
func (opts FollowOptions) withDefaults() (FollowOptions, error) {
	switch {
	case opts.Channel == "" || opts.Reload == nil:
		return opts, fmt.Errorf("%w: a store, a channel and a Reload are required", ErrFollowConfig)
	case opts.Period <= 0 || opts.First < 0:
		return opts, fmt.Errorf("%w: Period must be positive and First not negative", ErrFollowConfig)
	case opts.Retry.Min < 0 || (opts.Retry.Min > 0 && opts.Retry.Max < opts.Retry.Min):
		return opts, fmt.Errorf("%w: Retry needs 0 < Min <= Max", ErrFollowConfig)
	}
	if opts.First == 0 {
		opts.First = opts.Period
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.After == nil {
		opts.After = time.After
	}
	return opts, nil
}

// Request asks for a Reload as soon as the one running (if any) is done,
// without waiting: callers include the subscription's reconnect hook, which
// must not hold up message delivery.
func (f *Follower) Request(why string) {
	select {
	case f.pending <- why:
	default: // one is pending already
	}
}

// Run follows the value until ctx is done or the store is closed, and
// returns then. It subscribes once: Subscribe re-establishes a lost
// subscription by itself and returns only at ctx done or Close.
func (f *Follower) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subscribed := make(chan struct{})
	go func() {
		defer close(subscribed)
		err := f.st.Subscribe(ctx, f.opts.Channel, f.onMessage, func() { f.Request(ReasonReconnect) })
		switch {
		case errors.Is(err, ErrClosed):
			cancel() // nothing more can be read
		case err != nil && ctx.Err() == nil:
			// Outside the contract: follow by the period alone.
			f.opts.Logger.Error(f.opts.Name+": subscription ended; re-reading periodically only", "err", err)
		}
	}()
	f.loop(ctx)
	cancel() // the loop may have stopped on its own (the store closed)
	<-subscribed
}

func (f *Follower) onMessage(payload []byte) {
	if f.opts.OnMessage != nil {
		f.opts.OnMessage(payload)
		return
	}
	f.Request(ReasonMessage)
}

// loop runs every Reload, one at a time.
func (f *Follower) loop(ctx context.Context) {
	wait := f.opts.First
	for {
		why, d := ReasonPeriodic, wait
		if f.opts.Next != nil {
			if next := f.opts.Next(); next < d {
				why, d = ReasonScheduled, next
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-f.opts.After(d):
		case why = <-f.pending:
		}
		if !f.reload(ctx, why) {
			return
		}
		wait = f.opts.Period
	}
}

// reload runs Reload, retrying per opts.Retry. It reports false when
// following must stop: ctx done or the store closed.
func (f *Follower) reload(ctx context.Context, why string) bool {
	backoff := f.opts.Retry.Min
	for attempt := 1; ; attempt++ {
		err := f.opts.Reload(ctx)
		switch {
		case err == nil:
			if attempt > 1 {
				f.opts.Logger.Info(f.opts.Name+" succeeded after retries", "why", why, "attempts", attempt)
			}
			return true
		case ctx.Err() != nil || errors.Is(err, ErrClosed):
			return false
		case f.opts.Retry.Min == 0:
			return true
		}
		f.opts.Logger.Warn(f.opts.Name+" failed, retrying", "why", why, "attempt", attempt, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-f.opts.After(backoff):
		}
		backoff = min(2*backoff, f.opts.Retry.Max)
	}
}
