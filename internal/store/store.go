// Package store holds tokenshift's key-value back ends: an in-memory one for the
// embedded default and tests, and Redis (standalone, Sentinel or Cluster) built
// with gofiber/storage/redis over a go-redis UniversalClient. Both satisfy
// fiber.Storage plus the few atomic operations sessions, refresh rotation,
// revocation and rate limiting need, and a pub/sub bus.
//
// Every method that can touch the network takes a context and returns an error
// wrapping auth.ErrUnavailable when the back end cannot answer in time, so the
// HTTP layer can answer 503 store_unavailable instead of hanging or 500.
package store

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/redis/go-redis/v9"
)

// Field is one hash field and its value, for HSetFields.
type Field struct {
	Name  string
	Value []byte
}

// Store is the key-value contract of every back end.
//
// Reset (from fiber.Storage) never flushes a shared Redis database: the Redis
// back end refuses it with an error. Keys are namespaced by callers
// ("ts:sess:...", "ts:rt:...").
type Store interface {
	fiber.Storage

	// GetCtx returns nil, nil when the key does not exist.
	GetCtx(ctx context.Context, key string) ([]byte, error)
	// SetCtx stores val; exp 0 means no expiry.
	SetCtx(ctx context.Context, key string, val []byte, exp time.Duration) error
	DeleteCtx(ctx context.Context, keys ...string) error
	// SetNX stores val only if key is absent and reports whether it did.
	SetNX(ctx context.Context, key string, val []byte, exp time.Duration) (bool, error)
	// GetDel atomically reads and deletes a key (nil, nil when absent). Refresh
	// rotation uses it so two racing refreshes cannot both consume one token.
	GetDel(ctx context.Context, key string) ([]byte, error)
	// Consume takes a single-use value in one atomic step. When key exists it
	// is deleted, its value is returned as val and left under usedKey, which
	// expires when key would have; when key is absent, val is nil and used is
	// what usedKey holds (nil if nothing). Of any number of racing callers
	// exactly one gets val and every other one sees used, so a loser of the
	// race can never find neither (refresh-token reuse detection, RFC 9700
	// §4.14.2). On Redis Cluster both keys must hash to one slot.
	Consume(ctx context.Context, key, usedKey string) (val, used []byte, err error)
	// TakeField takes a single-use value kept in a hash field, in one atomic
	// step. When the value of field begins with id, the field is deleted,
	// id's first FingerprintLen bytes are put in front of usedField, which
	// keeps the newest keep fingerprints, and taken is true. Otherwise
	// nothing changes, and used reports whether id's fingerprint is in
	// usedField. h is the whole hash as it was before the step (a login
	// hash is a few small fields). Of racing callers with one id exactly one
	// takes it and every other one sees it used: refresh rotation on a
	// login's own hash (package token), one key, so Redis Cluster has no
	// slot to agree on. id must be at least FingerprintLen bytes.
	TakeField(ctx context.Context, key, field, usedField string, id []byte, keep int) (h map[string][]byte, taken, used bool, err error)
	// Incr increments a counter, setting exp when the key is created, and
	// returns the new value and the remaining TTL.
	Incr(ctx context.Context, key string, exp time.Duration) (int64, time.Duration, error)
	// Decr decrements an existing counter, never below zero and never
	// creating it, and returns the new value (0 when the key is absent). Rate
	// limiters use it to refund a reservation taken with Incr.
	Decr(ctx context.Context, key string) (int64, error)

	// Set operations back per-user indexes (sessions of a user). SAdd extends
	// the set's expiry to at least exp.
	SAdd(ctx context.Context, key string, exp time.Duration, members ...string) error
	SRem(ctx context.Context, key string, members ...string) error
	SMembers(ctx context.Context, key string) ([]string, error)

	// Hash operations back small registries that must be loaded whole at start
	// (revocation lists). HSet extends the hash's expiry to at least exp.
	HSet(ctx context.Context, key string, exp time.Duration, field string, val []byte) error
	// HSetFields is HSet of several fields in one atomic step: a reader sees
	// all of them or none (a login's record and its parts, written at once).
	HSetFields(ctx context.Context, key string, exp time.Duration, fields ...Field) error
	HDel(ctx context.Context, key string, fields ...string) error
	HGetAll(ctx context.Context, key string) (map[string][]byte, error)

	// Publish sends payload to every Subscribe-r of channel on every instance.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe delivers messages of channel to fn until ctx is done. onReconnect,
	// if not nil, is called after the subscription was lost and re-established,
	// so mirrors can re-sync what they may have missed. It returns only when
	// ctx is done (nil) or the store is closed (ErrClosed): a lost connection
	// is re-established inside, never returned, so callers need no retry loop
	// (Follow is the one loop around it).
	Subscribe(ctx context.Context, channel string, fn func(payload []byte), onReconnect func()) error

	// Durable returns once every write this process made before the call is
	// held by as many replicas as the back end is configured to require
	// (storage.redis.min_replicas), or with an error wrapping
	// auth.ErrUnavailable (ErrNotDurable) when they did not acknowledge in
	// time. Calls that answer success for a credential (login, refresh,
	// logout, revocation) make it their last store call, so that a failover
	// cannot lose what was acknowledged. With no replicas required, and on the
	// in-memory store, it returns nil at once.
	Durable(ctx context.Context) error

	// Ping reports whether the back end answers (readiness).
	Ping(ctx context.Context) error
	// Redis returns the go-redis client, or nil for the in-memory back end.
	// Packages with Redis-specific needs (usage flush pipelines, Lua, CAS) use it
	// and fall back to their own in-memory path when it is nil.
	Redis() redis.UniversalClient

	// Versioned values: a JSON object whose "version" member is its version
	// (package versioned has the rule), changed only by compare-and-set so
	// two writers never silently overwrite each other.

	// GetVersioned returns the value at key and its version (nil, 0, nil
	// when the key does not exist; ErrWrongType when it holds something that
	// is not a versioned document).
	GetVersioned(ctx context.Context, key string) (val []byte, version int64, err error)
	// CompareAndSet stores val at key (exp 0: no expiry) only if the stored
	// version is expect (0 when the key does not exist), in one atomic step.
	// Otherwise it stores nothing and returns an error wrapping
	// ErrVersionConflict that names the stored version. val must itself be a
	// versioned document (ErrWrongType otherwise), normally at expect + 1.
	CompareAndSet(ctx context.Context, key string, expect int64, val []byte, exp time.Duration) error
}
