package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Open returns the back end the configuration asks for: the in-memory store
// when o.URL is empty (the embedded default), else Redis after a Ping, so a
// wrong address fails at start-up with a clear message instead of at the
// first request. The Ping gets startPingAttempts tries, each bounded by the
// dial plus the read timeout: one slow answer from a busy Redis (or machine)
// must not stop a start that the next try would have allowed. clock only
// matters to the in-memory store; Redis keeps time itself.
func Open(o RedisOptions, clock func() time.Time) (Store, error) {
	if o.URL == "" {
		return NewMemory(clock), nil
	}
	r, err := NewRedis(o)
	if err != nil {
		return nil, err
	}
	d := o.withDefaults()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), d.DialTimeout+d.ReadTimeout)
		err = r.Ping(ctx)
		cancel()
		if err == nil {
			return r, nil
		}
		if attempt == startPingAttempts {
			break
		}
		time.Sleep(startPingPause)
	}
	_ = r.Close()
	if !errors.Is(err, auth.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	return nil, fmt.Errorf("store: %s did not answer PING (%d tries): %w", r, startPingAttempts, err)
}

const (
	startPingAttempts = 3
	startPingPause    = 100 * time.Millisecond
)
