package legacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/store"
)

// redisSessions is the session Redis of an express or php source: the
// store package's client (standalone, Sentinel or Cluster, no retries, one
// read timeout per call), used only for GET+PTTL and DEL of one key.
type redisSessions struct {
	source string
	r      *store.Redis
}

func newRedisSessions(o Options) (*redisSessions, error) {
	r, err := store.NewRedis(o.Redis)
	if err != nil {
		// store's messages name the wrong part, never the credentials.
		return nil, &OptionError{Source: o.Name, Field: "redis_url", Reason: err.Error()}
	}
	return &redisSessions{source: o.Name, r: r}, nil
}

// get reads the value and its remaining lifetime in one round trip (one
// pipeline on one key, so one node in a Cluster). found is false when the
// key does not exist. ttl < 0 means the key has no expiry.
func (s *redisSessions) get(ctx context.Context, key string) (val []byte, ttl time.Duration, found bool, err error) {
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err = s.r.Redis().Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		pttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(get.Err(), redis.Nil) {
		return nil, 0, false, nil
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, false, s.wrap("get", err)
	}
	val, err = get.Bytes()
	if err != nil {
		return nil, 0, false, s.wrap("get", err)
	}
	ttl = pttl.Val()
	switch {
	case ttl == -2: // expired between the two commands
		return nil, 0, false, nil
	case ttl < 0:
		ttl = -1
	}
	return val, ttl, true, nil
}

func (s *redisSessions) del(ctx context.Context, key string) error {
	if err := s.r.Redis().Del(ctx, key).Err(); err != nil {
		return s.wrap("delete", err)
	}
	return nil
}

func (s *redisSessions) ping(ctx context.Context) error {
	if err := s.r.Ping(ctx); err != nil {
		return unavailable(s.source, "ping "+s.r.String(), err)
	}
	return nil
}

func (s *redisSessions) close() error { return s.r.Close() }

// wrap: a WRONGTYPE reply means the key is not a session string (the
// prefix is shared with something else): malformed, not an outage.
func (s *redisSessions) wrap(op string, err error) error {
	var re redis.Error
	if errors.As(err, &re) && len(re.Error()) >= 9 && re.Error()[:9] == "WRONGTYPE" {
		return fmt.Errorf("%w: the session key holds another Redis type", ErrMalformed)
	}
	return unavailable(s.source, op, err)
}
