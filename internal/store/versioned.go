package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/versioned"
)

// Versioned values of both back ends. The rule that reads a version is
// package versioned's, in Go for the memory store and for reads, in Lua for
// the Redis script, the same text featureflags' script starts with (see
// docs/architecture.md, "One place for each mechanism").

// notVersioned wraps a versioned.ErrNotDocument for callers of the store,
// who know ErrWrongType.
func notVersioned(op, key string, err error) error {
	return fmt.Errorf("store: %s %s: %w: %w", op, key, ErrWrongType, err)
}

func conflict(key string, expect, stored int64) error {
	return fmt.Errorf("%w: %s: expected version %d, stored %d", ErrVersionConflict, key, expect, stored)
}

// checkNext refuses a new value that is not itself a versioned document,
// before either back end stores it: a later read would fail on it.
func checkNext(key string, val []byte) error {
	if val == nil {
		return notVersioned("compare-and-set", key, versioned.ErrNotDocument)
	}
	if _, err := versioned.Version(val); err != nil {
		return notVersioned("compare-and-set", key, err)
	}
	return nil
}

func (m *Memory) GetVersioned(ctx context.Context, key string) ([]byte, int64, error) {
	val, err := m.GetCtx(ctx, key)
	if err != nil || val == nil {
		return nil, 0, err
	}
	v, err := versioned.Version(val)
	if err != nil {
		return nil, 0, notVersioned("get", key, err)
	}
	return val, v, nil
}

// CompareAndSet holds the store's own lock from the read of the version to
// the write, which makes it atomic against every other call on this store.
func (m *Memory) CompareAndSet(ctx context.Context, key string, expect int64, val []byte, exp time.Duration) error {
	if err := checkNext(key, val); err != nil {
		return err
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.clock()
	var stored int64
	if e := m.live(key, now); e != nil {
		if e.kind != kindString {
			return ErrWrongType
		}
		v, err := versioned.Version(e.str)
		if err != nil {
			return notVersioned("compare-and-set", key, err)
		}
		stored = v
	}
	if stored != expect {
		return conflict(key, expect, stored)
	}
	m.data[key] = &memEntry{kind: kindString, str: clone(val), expires: expiryAt(now, exp)}
	return nil
}

func (r *Redis) GetVersioned(ctx context.Context, key string) ([]byte, int64, error) {
	val, err := r.client.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, wrapErr("get", err)
	}
	v, err := versioned.Version(val)
	if err != nil {
		return nil, 0, notVersioned("get", key, err)
	}
	return val, v, nil
}

// casScript is versioned.CheckLua followed by the write. ARGV[2] is the new
// value, ARGV[3] its expiry in ms (0: none). Replies {1} once stored, {0,
// stored version} on a conflict.
var casScript = redis.NewScript(versioned.CheckLua + `
local exp = tonumber(ARGV[3])
if exp > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', exp)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return {1}
`)

func (r *Redis) CompareAndSet(ctx context.Context, key string, expect int64, val []byte, exp time.Duration) error {
	if err := checkNext(key, val); err != nil {
		return err
	}
	reply, err := casScript.Run(ctx, r.client, []string{key}, expect, val, nonNegative(exp).Milliseconds()).Int64Slice()
	if err != nil {
		return wrapErr("compare-and-set", err)
	}
	switch {
	case len(reply) == 1 && reply[0] == 1:
		return nil
	case len(reply) == 2 && reply[0] == 0:
		return conflict(key, expect, reply[1])
	}
	return fmt.Errorf("store: compare-and-set %s: unexpected reply %v", key, reply)
}
