package featureflags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/versioned"
)

// RedisOptions configures NewRedisBackend. Zero values take the defaults.
type RedisOptions struct {
	// Prefix of every key. Default "{tokenshift:flags}". It must carry a
	// Redis Cluster hash tag ({...}) so that the state, history and audit keys
	// share one slot and the CAS script may touch all three; a prefix without
	// braces is wrapped in them.
	Prefix string
	// Channel on which changes are announced. Default Prefix + ":changed".
	Channel string
	// PollInterval is how often Watch re-reads the state in case an
	// announcement was lost (pub/sub delivers at most once). Default 5s.
	PollInterval time.Duration
	// HistoryLimit and AuditLimit cap the kept lists. Defaults 50 and 1000.
	HistoryLimit int
	AuditLimit   int
	// DisablePublish stops announcing changes, for Redis proxies without
	// pub/sub; other instances then see changes only through polling.
	DisablePublish bool
	// Logger reports announcement and subscription failures. Default: discard.
	Logger *slog.Logger
}

type redisBackend struct {
	client                 redis.UniversalClient
	opts                   RedisOptions
	stateKey, histKey, log string
}

// NewRedisBackend keeps the state in Redis (standalone, Sentinel or Cluster)
// as one versioned JSON value, changed only by an atomic Lua compare-and-swap
// that also pushes history and audit; changes are announced on a channel.
func NewRedisBackend(client redis.UniversalClient, opts RedisOptions) Backend {
	opts = opts.withDefaults()
	return &redisBackend{
		client:   client,
		opts:     opts,
		stateKey: opts.Prefix + ":state",
		histKey:  opts.Prefix + ":history",
		log:      opts.Prefix + ":audit",
	}
}

// withDefaults fills zero fields and puts the prefix in a hash tag.
func (opts RedisOptions) withDefaults() RedisOptions {
	if opts.Prefix == "" {
		opts.Prefix = "{tokenshift:flags}"
	}
	if !hasHashTag(opts.Prefix) {
		opts.Prefix = "{" + opts.Prefix + "}"
	}
	if opts.Channel == "" {
		opts.Channel = opts.Prefix + ":changed"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = defaultHistoryLimit
	}
	if opts.AuditLimit <= 0 {
		opts.AuditLimit = defaultAuditLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return opts
}

// hasHashTag mirrors Redis Cluster's rule: the first '{' followed later by a
// '}' with something in between.
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}

func (b *redisBackend) Load(ctx context.Context) (State, bool, error) {
	raw, err := b.client.Get(ctx, b.stateKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("featureflags: load state from redis: %w: %w", ErrUnavailable, err)
	}
	s, err := decodeState(raw)
	return s, err == nil, err
}

// casScript reads the stored version out of the JSON itself, so the state
// stays one self-describing value: versioned.CheckLua, the same text the
// server's store compare-and-set starts with. Replies {1} on success, {0,
// current} on a version conflict, {-1} when a rollback finds no history.
var casScript = redis.NewScript(versioned.CheckLua + `
if ARGV[4] == 'pop' then
  if redis.call('LPOP', KEYS[2]) == false then
    return {-1}
  end
elseif cur then
  redis.call('LPUSH', KEYS[2], cur)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[5]) - 1)
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
return {1}
`)

func (b *redisBackend) CompareAndSwap(ctx context.Context, expect int64, next State, entry AuditEntry) error {
	nextRaw, entryRaw, err := encodeChange(next, entry)
	if err != nil {
		return err
	}
	mode := "push"
	if entry.Action == ActionRollback {
		mode = "pop"
	}
	reply, err := casScript.Run(ctx, b.client, []string{b.stateKey, b.histKey, b.log},
		expect, nextRaw, entryRaw, mode, b.opts.HistoryLimit, b.opts.AuditLimit).Int64Slice()
	if err != nil {
		return fmt.Errorf("featureflags: compare-and-swap in redis: %w: %w", ErrUnavailable, err)
	}
	switch {
	case len(reply) >= 1 && reply[0] == 1:
	case len(reply) == 2 && reply[0] == 0:
		return &VersionConflictError{Expected: expect, Current: reply[1]}
	case len(reply) >= 1 && reply[0] == -1:
		return ErrNoHistory
	default:
		return fmt.Errorf("featureflags: unexpected compare-and-swap reply %v", reply)
	}
	if !b.opts.DisablePublish {
		// A lost announcement only delays other instances until their next
		// poll, so the change itself has succeeded either way.
		if err := b.client.Publish(ctx, b.opts.Channel, strconv.FormatInt(next.Version, 10)).Err(); err != nil {
			b.opts.Logger.Warn("featureflags: announcing a change failed; other instances will see it at their next poll",
				"version", next.Version, "err", err)
		}
	}
	return nil
}

// AppendAudit pushes and trims in one MULTI: the keys share a hash slot, so
// this works on Redis Cluster too.
func (b *redisBackend) AppendAudit(ctx context.Context, entry AuditEntry) error {
	raw, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("featureflags: encode audit entry: %w", err)
	}
	_, err = b.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, b.log, raw)
		p.LTrim(ctx, b.log, 0, int64(b.opts.AuditLimit)-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("featureflags: append audit entry in redis: %w: %w", ErrUnavailable, err)
	}
	return nil
}

func (b *redisBackend) History(ctx context.Context, n int) ([]State, error) {
	raws, err := b.client.LRange(ctx, b.histKey, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("featureflags: read history from redis: %w: %w", ErrUnavailable, err)
	}
	out := make([]State, 0, len(raws))
	for _, raw := range raws {
		s, err := decodeState([]byte(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (b *redisBackend) Audit(ctx context.Context, n int) ([]AuditEntry, error) {
	raws, err := b.client.LRange(ctx, b.log, 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("featureflags: read audit log from redis: %w: %w", ErrUnavailable, err)
	}
	out := make([]AuditEntry, 0, len(raws))
	for _, raw := range raws {
		e, err := decodeAudit([]byte(raw))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Watch listens on the channel and also re-reads every PollInterval, because
// pub/sub drops messages while a connection is down. go-redis re-subscribes
// by itself after a drop; each (re)subscription triggers onChange too, which
// re-syncs whatever was announced while the subscription was gone.
func (b *redisBackend) Watch(ctx context.Context, onChange func()) {
	ps := b.client.Subscribe(ctx, b.opts.Channel)
	defer ps.Close()
	events := ps.ChannelWithSubscriptions()
	poll := time.NewTicker(b.opts.PollInterval)
	defer poll.Stop()
	onChange()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // closed: rely on polling alone
				continue
			}
			if sub, isSub := ev.(*redis.Subscription); isSub && sub.Kind != "subscribe" {
				continue
			}
			onChange()
		case <-poll.C:
			onChange()
		}
	}
}
