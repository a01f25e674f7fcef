package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Open returns the back end the configuration asks for: the in-memory store
// when o.URL is empty (the embedded default), else Redis after one Ping
// bounded by the dial timeout, so a wrong address fails at start-up with a
// clear message instead of at the first request. clock only matters to the
// in-memory store; Redis keeps time itself.
func Open(o RedisOptions, clock func() time.Time) (Store, error) {
	if o.URL == "" {
		return NewMemory(clock), nil
	}
	r, err := NewRedis(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.withDefaults().DialTimeout)
	defer cancel()
	if err := r.Ping(ctx); err != nil {
		_ = r.Close()
		if !errors.Is(err, auth.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
		}
		return nil, fmt.Errorf("store: %s did not answer PING: %w", r, err)
	}
	return r, nil
}
