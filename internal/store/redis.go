package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// RedisOptions configure the Redis back end. Zero durations take the defaults
// below: short, because a request waiting on a dead Redis should fail fast with
// 503 store_unavailable rather than hold a worker.
type RedisOptions struct {
	// URL selects the topology (see parseRedisURL):
	//   redis://[user:pass@]host:port/db, rediss:// for TLS;
	//   redis+sentinel://[user:pass@]h1:26379,h2:26379/<master-name>[/db];
	//   redis+cluster://[user:pass@]h1:7000,h2:7001.
	// Empty selects the in-memory store (Open only).
	URL string
	// Username and Password, when set, override those of the URL, so the
	// secret can come from its own environment variable. They authenticate to
	// the data nodes; Sentinels are contacted without credentials.
	Username, Password string
	DialTimeout        time.Duration // default 2s
	ReadTimeout        time.Duration // default 1s
	WriteTimeout       time.Duration // default 1s
	PoolTimeout        time.Duration // default 2s: wait for a free connection
	PoolSize           int           // default: go-redis's (10 per CPU)
	MinIdleConns       int           // default 0
	// TLS forces TLS even with a redis:// scheme.
	TLS bool
	// MinReplicas is how many replicas must acknowledge the writes before
	// Durable returns nil (storage.redis.min_replicas); 0 turns the barrier
	// off. ReplicaTimeout bounds the wait (default 500ms); it must be shorter
	// than ReadTimeout, which bounds the reply of the WAIT that carries it.
	MinReplicas    int
	ReplicaTimeout time.Duration
}

const (
	defaultDialTimeout  = 2 * time.Second
	defaultReadTimeout  = time.Second
	defaultWriteTimeout = time.Second
	defaultPoolTimeout  = 2 * time.Second
	// DefaultReplicaTimeout: replicas on a healthy network acknowledge in
	// well under a millisecond; half a second tells a lagging or absent
	// replica from a slow one without holding a login for long.
	DefaultReplicaTimeout = 500 * time.Millisecond
)

func (o RedisOptions) withDefaults() RedisOptions {
	if o.DialTimeout <= 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = defaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.PoolTimeout <= 0 {
		o.PoolTimeout = defaultPoolTimeout
	}
	if o.ReplicaTimeout <= 0 {
		o.ReplicaTimeout = DefaultReplicaTimeout
	}
	return o
}

var _ Store = (*Redis)(nil)

// Redis is the shared back end: fiber.Storage through gofiber/storage/redis,
// the rest directly on the same go-redis client.
type Redis struct {
	client  redis.UniversalClient
	storage *fiberredis.Storage
	target  redisTarget

	minReplicas    int
	replicaTimeout time.Duration
	markers        markerKeys // Cluster only: a marker key per master (durable.go)

	done      chan struct{} // closed by Close: ends every Subscribe
	closeOnce sync.Once
	closeErr  error
}

// NewRedis builds the client without contacting Redis (go-redis dials
// lazily); Open adds the start-up Ping.
func NewRedis(o RedisOptions) (*Redis, error) {
	t, err := parseRedisURL(o.URL)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.Username != "" {
		t.Username = o.Username
	}
	if o.Password != "" {
		t.Password = o.Password
	}
	t.TLS = t.TLS || o.TLS
	if o.PoolSize < 0 || o.MinIdleConns < 0 {
		return nil, fmt.Errorf("store: PoolSize and MinIdleConns must not be negative")
	}
	if o.MinReplicas < 0 {
		return nil, fmt.Errorf("store: MinReplicas must not be negative")
	}
	if o.MinReplicas > 0 && o.ReplicaTimeout >= o.ReadTimeout {
		return nil, fmt.Errorf("store: ReplicaTimeout (%s) must be shorter than ReadTimeout (%s)", o.ReplicaTimeout, o.ReadTimeout)
	}

	uo := &redis.UniversalOptions{
		Addrs:                 t.Addrs,
		DB:                    t.DB,
		Username:              t.Username,
		Password:              t.Password,
		MasterName:            t.Master,
		IsClusterMode:         t.Mode == modeCluster,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		PoolTimeout:           o.PoolTimeout,
		PoolSize:              o.PoolSize,
		MinIdleConns:          o.MinIdleConns,
		ContextTimeoutEnabled: true,
		// No retries (-1: go-redis reads 0 as its default of 3): a command
		// is sent once, so a Redis that does not answer costs a request one
		// read timeout, as configured, not one per attempt. A pooled
		// connection that died with a restart does not need a retry: the
		// pool checks a connection's socket before handing it out. (go-redis's
		// five dial attempts would likewise stretch a dead Redis into seconds.)
		MaxRetries:         -1,
		DialerRetries:      1,
		DialerRetryTimeout: 50 * time.Millisecond,
		// CLIENT SETINFO and maintenance notifications are extra round trips
		// on every new connection that we have no use for.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if t.TLS {
		uo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if len(t.Addrs) == 1 && t.Mode == modeStandalone {
			uo.TLSConfig.ServerName = hostOf(t.Addrs[0])
		}
	}
	done := make(chan struct{})
	var client redis.UniversalClient
	if t.Mode == modeCluster {
		client = newClusterClient(uo, done)
	} else {
		client = redis.NewUniversalClient(uo)
	}
	return &Redis{
		client:  client,
		storage: fiberredis.NewFromConnection(client),
		target:  t,
		done:    done,

		minReplicas:    o.MinReplicas,
		replicaTimeout: o.ReplicaTimeout,
	}, nil
}

func hostOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// String names the target without credentials, for logs.
func (r *Redis) String() string { return r.target.String() }

// wrapErr maps go-redis errors onto the store contract. A reply that says the
// caller misused a key is ErrWrongType; everything else (refused, timed out,
// pool exhausted, LOADING, READONLY, closed client, cancelled context) means
// Redis could not answer and wraps auth.ErrUnavailable.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGTYPE") || strings.HasPrefix(msg, "ERR value is not an integer") {
			return fmt.Errorf("store: %s: %w: %w", op, ErrWrongType, err)
		}
	}
	return fmt.Errorf("store: %s: %w: %w", op, auth.ErrUnavailable, err)
}

func nonNegative(d time.Duration) time.Duration {
	// go-redis reads -1 as KEEPTTL; the contract has no such value.
	return max(d, 0)
}

// --- fiber.Storage ---

func (r *Redis) Get(key string) ([]byte, error) {
	v, err := r.storage.Get(key)
	return v, wrapErr("get", err)
}

// Set follows fiber.Storage: an empty key or value is ignored.
func (r *Redis) Set(key string, val []byte, exp time.Duration) error {
	return wrapErr("set", r.storage.Set(key, val, nonNegative(exp)))
}

func (r *Redis) Delete(key string) error { return wrapErr("delete", r.storage.Delete(key)) }

// Reset never flushes: the database may hold other tenants' or instances' data.
func (r *Redis) Reset() error { return ErrResetRefused }

// Close ends every Subscribe and closes the client.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.done)
		r.closeErr = r.storage.Close()
	})
	return r.closeErr
}

// --- key-value ---

func (r *Redis) GetCtx(ctx context.Context, key string) ([]byte, error) {
	v, err := r.storage.GetWithContext(ctx, key)
	return v, wrapErr("get", err)
}

// SetCtx follows fiber.Storage: an empty key or value is ignored.
func (r *Redis) SetCtx(ctx context.Context, key string, val []byte, exp time.Duration) error {
	return wrapErr("set", r.storage.SetWithContext(ctx, key, val, nonNegative(exp)))
}

func (r *Redis) DeleteCtx(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if r.target.Mode == modeCluster && len(keys) > 1 {
		// A multi-key DEL across slots is refused by Cluster (CROSSSLOT).
		pipe := r.client.Pipeline()
		for _, k := range keys {
			pipe.Del(ctx, k)
		}
		_, err := pipe.Exec(ctx)
		return wrapErr("delete", err)
	}
	return wrapErr("delete", r.client.Del(ctx, keys...).Err())
}

func (r *Redis) SetNX(ctx context.Context, key string, val []byte, exp time.Duration) (bool, error) {
	// SET NX rather than SETNX: the latter cannot set an expiry atomically.
	err := r.client.SetArgs(ctx, key, val, redis.SetArgs{Mode: "NX", TTL: nonNegative(exp)}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, wrapErr("setnx", err)
	}
	return true, nil
}

func (r *Redis) GetDel(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.GetDel(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return v, wrapErr("getdel", err)
}

// consumeScript is Consume in one server-side step: no command of another
// client can run between the GET, the DEL and the SET, so a racing caller
// sees either the value or the marker. The marker keeps the value's remaining
// TTL (none if the value had none). Reply: {1, value}, {0, marker} or {}.
var consumeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  if ttl > 0 then
    redis.call('SET', KEYS[2], v, 'PX', ttl)
  else
    redis.call('SET', KEYS[2], v)
  end
  return {1, v}
end
local u = redis.call('GET', KEYS[2])
if u then return {0, u} end
return {}
`)

// Consume runs consumeScript. On Cluster the script is sent to the node of
// key, and Redis refuses it (CROSSSLOT) unless usedKey hashes to the same
// slot: callers give the two keys a common {hash tag}.
func (r *Redis) Consume(ctx context.Context, key, usedKey string) ([]byte, []byte, error) {
	res, err := consumeScript.Run(ctx, r.client, []string{key, usedKey}).Slice()
	if err != nil {
		return nil, nil, wrapErr("consume", err)
	}
	if len(res) == 0 {
		return nil, nil, nil
	}
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("store: consume: unexpected reply of %d values", len(res))
	}
	taken, _ := res[0].(int64)
	s, ok := res[1].(string)
	if !ok {
		return nil, nil, fmt.Errorf("store: consume: unexpected reply type %T", res[1])
	}
	if taken == 1 {
		return []byte(s), nil, nil
	}
	return nil, []byte(s), nil
}

// takeFieldScript: ARGV = field, usedField, id, keep. The reply is the
// outcome (1 taken, 2 used, 0 neither), then the whole hash as it was, as a
// flat list of names and values.
var takeFieldScript = redis.NewScript(`
local out = redis.call('HGETALL', KEYS[1])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local id = ARGV[3]
local fp = string.sub(id, 1, 8)
local used = redis.call('HGET', KEYS[1], ARGV[2]) or ''
if cur and string.sub(cur, 1, #id) == id then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[2], string.sub(fp .. used, 1, 8 * tonumber(ARGV[4])))
  return {1, out}
end
for i = 1, #used - 7, 8 do
  if string.sub(used, i, i + 7) == fp then return {2, out} end
end
return {0, out}
`)

func (r *Redis) TakeField(ctx context.Context, key, field, usedField string, id []byte, keep int) (map[string][]byte, bool, bool, error) {
	if len(id) < FingerprintLen {
		return nil, false, false, fmt.Errorf("store: take field: id of %d bytes is shorter than a fingerprint", len(id))
	}
	res, err := takeFieldScript.Run(ctx, r.client, []string{key}, field, usedField, id, keep).Slice()
	if err != nil {
		return nil, false, false, wrapErr("take field", err)
	}
	if len(res) != 2 {
		return nil, false, false, fmt.Errorf("store: take field: unexpected reply of %d values", len(res))
	}
	outcome, _ := res[0].(int64)
	flat, ok := res[1].([]any)
	if !ok || len(flat)%2 != 0 {
		return nil, false, false, fmt.Errorf("store: take field: unexpected reply type %T", res[1])
	}
	h := make(map[string][]byte, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		h[f] = []byte(v)
	}
	return h, outcome == 1, outcome == 2, nil
}

// incrScript sets the expiry whenever the counter has none, not only at
// creation, so a counter left without TTL (by a crash between two commands of
// an older writer) cannot pin a rate limit forever.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
local exp = tonumber(ARGV[1])
if ttl < 0 and exp > 0 then
  redis.call('PEXPIRE', KEYS[1], exp)
  ttl = exp
end
if ttl < 0 then ttl = 0 end
return {n, ttl}
`)

// Incr returns the new value and the remaining TTL (0: no expiry).
func (r *Redis) Incr(ctx context.Context, key string, exp time.Duration) (int64, time.Duration, error) {
	res, err := incrScript.Run(ctx, r.client, []string{key}, nonNegative(exp).Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, wrapErr("incr", err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("store: incr: unexpected reply of %d values", len(res))
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// decrScript refunds one unit without creating the key (a refund arriving
// after the window expired must not leave a counter without TTL) and never
// goes below zero.
var decrScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if tonumber(v) == nil then return redis.error_reply('WRONGTYPE not an integer') end
if tonumber(v) <= 0 then return 0 end
return redis.call('DECR', KEYS[1])
`)

// Decr refunds one unit of a counter made by Incr; its expiry is kept.
func (r *Redis) Decr(ctx context.Context, key string) (int64, error) {
	n, err := decrScript.Run(ctx, r.client, []string{key}).Int64()
	if err != nil {
		return 0, wrapErr("decr", err)
	}
	return n, nil
}

// extendScript implements "expiry at least exp" for SAdd and HSet in one
// round trip: a new key gets exp, an existing one the later of its expiry and
// exp, and exp 0 (no expiry, later than any) makes the key persistent.
// ARGV[1] is exp in ms, ARGV[2] the command, the rest its arguments.
var extendScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
local exp = tonumber(ARGV[1])
redis.call(ARGV[2], KEYS[1], unpack(ARGV, 3))
` + luaExtendExpiry)

// luaExtendExpiry ends the scripts that give a key "expiry at least exp":
// it expects the locals existed (the key existed before the write) and exp
// (ms; 0 or less = persistent).
const luaExtendExpiry = `
if exp <= 0 then
  if existed == 1 then redis.call('PERSIST', KEYS[1]) end
  return 1
end
local ttl = redis.call('PTTL', KEYS[1])
if existed == 0 or (ttl >= 0 and ttl < exp) then
  redis.call('PEXPIRE', KEYS[1], exp)
end
return 1
`

// --- sets ---

// Sets are kept as hashes whose fields are the members (values empty):
// Redis before 7.2 stores every set of strings as a real hash table, about
// 200 bytes for a one-member per-user index, while a small hash is one
// packed allocation (hash-max-listpack-*). Sets written before are read as
// sets, and turned into hashes by the next SAdd (setScript).
var setScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
local op = ARGV[1]
if op == 'members' then
  if t == 'set' then return redis.call('SMEMBERS', KEYS[1]) end
  if t == 'hash' then return redis.call('HKEYS', KEYS[1]) end
  if t == 'none' then return {} end
  return redis.error_reply('WRONGTYPE not a set')
end
if op == 'rem' then
  if t == 'set' then return redis.call('SREM', KEYS[1], unpack(ARGV, 2)) end
  if t == 'hash' then return redis.call('HDEL', KEYS[1], unpack(ARGV, 2)) end
  if t == 'none' then return 0 end
  return redis.error_reply('WRONGTYPE not a set')
end
-- add: ARGV[2] is the expiry in ms, the rest the members
if t == 'set' then
  local ms = redis.call('SMEMBERS', KEYS[1])
  local ttl = redis.call('PTTL', KEYS[1])
  redis.call('DEL', KEYS[1])
  for _, m in ipairs(ms) do redis.call('HSET', KEYS[1], m, '') end
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
elseif t ~= 'hash' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE not a set')
end
local existed = redis.call('EXISTS', KEYS[1])
for i = 3, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '') end
local exp = tonumber(ARGV[2])
` + luaExtendExpiry)

func (r *Redis) SAdd(ctx context.Context, key string, exp time.Duration, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, 0, 2+len(members))
	args = append(args, "add", nonNegative(exp).Milliseconds())
	for _, m := range members {
		args = append(args, m)
	}
	return wrapErr("sadd", setScript.Run(ctx, r.client, []string{key}, args...).Err())
}

func (r *Redis) SRem(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(members))
	args = append(args, "rem")
	for _, m := range members {
		args = append(args, m)
	}
	return wrapErr("srem", setScript.Run(ctx, r.client, []string{key}, args...).Err())
}

func (r *Redis) SMembers(ctx context.Context, key string) ([]string, error) {
	v, err := setScript.Run(ctx, r.client, []string{key}, "members").StringSlice()
	if err != nil {
		return nil, wrapErr("smembers", err)
	}
	return v, nil
}

// --- hashes ---

func (r *Redis) HSet(ctx context.Context, key string, exp time.Duration, field string, val []byte) error {
	return wrapErr("hset", extendScript.Run(ctx, r.client, []string{key}, nonNegative(exp).Milliseconds(), "HSET", field, val).Err())
}

func (r *Redis) HSetFields(ctx context.Context, key string, exp time.Duration, fields ...Field) error {
	if len(fields) == 0 {
		return nil
	}
	args := make([]any, 0, 2+2*len(fields))
	args = append(args, nonNegative(exp).Milliseconds(), "HSET")
	for _, f := range fields {
		args = append(args, f.Name, f.Value)
	}
	return wrapErr("hset", extendScript.Run(ctx, r.client, []string{key}, args...).Err())
}

func (r *Redis) HDel(ctx context.Context, key string, fields ...string) error {
	if len(fields) == 0 {
		return nil
	}
	return wrapErr("hdel", r.client.HDel(ctx, key, fields...).Err())
}

func (r *Redis) HGetAll(ctx context.Context, key string) (map[string][]byte, error) {
	v, err := r.client.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, wrapErr("hgetall", err)
	}
	out := make(map[string][]byte, len(v))
	for f, s := range v {
		out[f] = []byte(s)
	}
	return out, nil
}

// --- pub/sub ---

func (r *Redis) Publish(ctx context.Context, channel string, payload []byte) error {
	return wrapErr("publish", r.client.Publish(ctx, channel, payload).Err())
}

// Subscribe returns nil when ctx is done and ErrClosed when the store is
// closed. go-redis re-dials and re-subscribes by itself after a lost
// connection; each confirmation after the first is such a re-subscription, and
// calls onReconnect (messages published meanwhile were lost). If Redis is down
// when Subscribe starts, it keeps trying rather than failing.
func (r *Redis) Subscribe(ctx context.Context, channel string, fn func(payload []byte), onReconnect func()) error {
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	ps := r.client.Subscribe(ctx, channel)
	defer ps.Close()
	msgs := ps.ChannelWithSubscriptions()
	confirmed := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.done:
			return ErrClosed
		case m, ok := <-msgs:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return ErrClosed
			}
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" || m.Channel != channel {
					continue
				}
				if confirmed && onReconnect != nil {
					onReconnect()
				}
				confirmed = true
			case *redis.Message:
				fn([]byte(m.Payload))
			}
		}
	}
}

func (r *Redis) Ping(ctx context.Context) error {
	return wrapErr("ping", r.client.Ping(ctx).Err())
}

func (r *Redis) Redis() redis.UniversalClient { return r.client }
