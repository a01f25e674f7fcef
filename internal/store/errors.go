package store

import (
	"errors"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/auth"
)

var (
	// ErrClosed is returned by every call made after Close. It wraps
	// auth.ErrUnavailable: to a caller a closed store is a store that cannot answer.
	ErrClosed = fmt.Errorf("store closed: %w", auth.ErrUnavailable)
	// ErrWrongType: the key holds a value of another kind (a set read as a
	// string, a non-integer incremented). It is a caller bug, not an outage, so
	// it does not wrap auth.ErrUnavailable.
	ErrWrongType = errors.New("store: key holds a value of another type")
	// ErrResetRefused: Reset on Redis would flush a database other services or
	// instances may share, so it is never done.
	ErrResetRefused = errors.New("store: Reset refused: the Redis database may be shared")
	// ErrBadURL: storage.redis.url cannot be used. The message names the part
	// that is wrong, never the credentials.
	ErrBadURL = errors.New("store: invalid Redis URL")
	// ErrNotDurable: fewer replicas than storage.redis.min_replicas
	// acknowledged the writes in time (replicas down or lagging, or a master
	// that a failover has already replaced). The writes may still be on the
	// master, but nothing promises they survive it, so the caller must not
	// answer success: it wraps auth.ErrUnavailable (503 store_unavailable).
	ErrNotDurable = fmt.Errorf("store: writes not acknowledged by enough replicas: %w", auth.ErrUnavailable)
	// ErrVersionConflict: CompareAndSet found another version than the one
	// the change was computed from. The store answered, so it does not wrap
	// auth.ErrUnavailable: the caller reloads and decides again.
	ErrVersionConflict = errors.New("store: version conflict")
)
