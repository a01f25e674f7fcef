package usage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Every usage key carries the same hash tag, so on Redis Cluster they all live
// in one slot: the apply script may touch them together and a pipeline goes
// to one node, in order.
const keyPrefix = "{tokenshift:usage}:"

func minuteKey(start int64) string { return keyPrefix + "m:" + strconv.FormatInt(start, 10) }
func hourKey(start int64) string   { return keyPrefix + "h:" + strconv.FormatInt(start, 10) }
func usersKey(s auth.Scheme, hour int64) string {
	return keyPrefix + "u:" + s.String() + ":" + strconv.FormatInt(hour, 10)
}

const (
	lastSeenKey = keyPrefix + "last"
	sinceKey    = keyPrefix + "since"
)

// seqKey holds the highest batch sequence applied for one sending process.
func seqKey(stream string) string { return keyPrefix + "seq:" + stream }

// applyScript applies one batch exactly once. A process numbers its batches
// 1, 2, 3... and sends them in order; the script records the highest number
// applied, so a batch re-sent after a timeout that Redis had in fact executed
// is a no-op, and refuses a batch that would skip one (which could otherwise
// be applied late and then mistaken for a duplicate). The marker is written
// before the counters: if Redis failed mid-script, a retry loses the rest of
// that one batch rather than counting part of it twice.
//
// KEYS: 1 seq marker, 2 minute bucket, 3 hour bucket, 4 last-seen hash, 5 since.
// ARGV: 1 seq, 2 batch time, 3 minute TTL, 4 hour TTL, 5 marker TTL,
// 6 last-seen TTL (all in seconds), 7 number n of counters, then n (field,
// delta) pairs, then the last-seen fields.
var applyScript = redis.NewScript(`
local seq = tonumber(ARGV[1])
local done = redis.call('GET', KEYS[1])
if done then
  done = tonumber(done)
  if seq <= done then return 0 end
  if seq ~= done + 1 then
    return redis.error_reply('TSGAP batch ' .. seq .. ' follows ' .. done)
  end
end
redis.call('SET', KEYS[1], seq, 'EX', ARGV[5])
local at = tonumber(ARGV[2])
local n = tonumber(ARGV[7])
local i = 8
for _ = 1, n do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if n > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
end
if i <= #ARGV then
  while i <= #ARGV do
    local cur = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0')
    if at > cur then redis.call('HSET', KEYS[4], ARGV[i], at) end
    i = i + 1
  end
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
redis.call('SET', KEYS[5], at, 'NX')
return 1
`)

type redisBackend struct {
	c                     redis.UniversalClient
	stream                string
	retention, minuteKeep time.Duration
}

func (b *redisBackend) seconds(d time.Duration) int64 { return int64(d / time.Second) }

// apply sends every pending batch in one pipeline: for each, the PFADDs of its
// users (idempotent by nature) and the apply script. A batch counts as applied
// only when all of its commands succeeded; the first that did not stops the
// count, and it and every later batch stay pending.
//
// Expiries are TTLs from now on the injected clock rather than absolute
// times, so they do not depend on Redis's clock agreeing with ours; a bucket
// already past its retention gets a one-second TTL.
func (b *redisBackend) apply(ctx context.Context, now int64, batches []*batch) (int, error) {
	ttl := func(end int64, keep time.Duration) time.Duration {
		return max(time.Duration(end+b.seconds(keep)-now)*time.Second, time.Second)
	}
	pipe := b.c.Pipeline()
	cmds := make([][]redis.Cmder, len(batches))
	for i, bt := range batches {
		hour := floorTo(bt.at, hourSeconds)
		hourTTL := ttl(hour+hourSeconds, b.retention)
		for s, members := range bt.membersByScheme() {
			if len(members) == 0 {
				continue
			}
			args := make([]any, len(members))
			for j, m := range members {
				args[j] = binary.BigEndian.AppendUint64(nil, m)
			}
			key := usersKey(auth.Scheme(s), hour)
			cmds[i] = append(cmds[i], pipe.PFAdd(ctx, key, args...), pipe.Expire(ctx, key, hourTTL))
		}
		minute := floorTo(bt.at, minuteSeconds)
		keys := []string{seqKey(b.stream), minuteKey(minute), hourKey(hour), lastSeenKey, sinceKey}
		args := []any{
			bt.seq, bt.at,
			int64(ttl(minute+minuteSeconds, b.minuteKeep) / time.Second),
			int64(hourTTL / time.Second),
			b.seconds(b.retention + time.Hour),
			b.seconds(b.retention + time.Hour),
			len(bt.counts),
		}
		for _, c := range bt.counts {
			args = append(args, c.key.String(), c.n)
		}
		for _, cs := range bt.seen() {
			args = append(args, cs.String())
		}
		cmds[i] = append(cmds[i], applyScript.Eval(ctx, pipe, keys, args...))
	}
	_, execErr := pipe.Exec(ctx)
	for i := range batches {
		for _, c := range cmds[i] {
			if err := c.Err(); err != nil {
				return i, fmt.Errorf("apply batch %d: %w", batches[i].seq, err)
			}
		}
	}
	if execErr != nil {
		return 0, execErr
	}
	return len(batches), nil
}

func (b *redisBackend) markSince(ctx context.Context, at int64) error {
	return b.c.SetNX(ctx, sinceKey, at, 0).Err()
}

func (b *redisBackend) read(ctx context.Context, q readQuery) (*rawData, error) {
	pipe := b.c.Pipeline()
	minuteCmds := make([]*redis.MapStringStringCmd, len(q.minutes))
	for i, start := range q.minutes {
		minuteCmds[i] = pipe.HGetAll(ctx, minuteKey(start))
	}
	hourCmds := make([]*redis.MapStringStringCmd, len(q.hours))
	for i, start := range q.hours {
		hourCmds[i] = pipe.HGetAll(ctx, hourKey(start))
	}
	var userCmds [auth.NumSchemes]*redis.IntCmd
	var allUsersCmd *redis.IntCmd
	if q.userHours != nil {
		var all []string
		for _, s := range auth.Schemes {
			keys := make([]string, len(q.userHours))
			for i, h := range q.userHours {
				keys[i] = usersKey(s, h)
			}
			all = append(all, keys...)
			userCmds[s] = pipe.PFCount(ctx, keys...)
		}
		allUsersCmd = pipe.PFCount(ctx, all...)
	}
	var lastCmd *redis.MapStringStringCmd
	if q.lastSeen {
		lastCmd = pipe.HGetAll(ctx, lastSeenKey)
	}
	sinceCmd := pipe.Get(ctx, sinceKey)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("usage: read: %w: %w", auth.ErrUnavailable, err)
	}

	d := &rawData{}
	for _, c := range minuteCmds {
		d.minutes = append(d.minutes, parseBucket(c.Val()))
	}
	for _, c := range hourCmds {
		d.hours = append(d.hours, parseBucket(c.Val()))
	}
	if allUsersCmd != nil {
		for _, s := range auth.Schemes {
			d.users[s] = userCmds[s].Val()
		}
		d.usersAll = allUsersCmd.Val()
	}
	if lastCmd != nil {
		d.last = make(map[clientScheme]int64)
		for field, v := range lastCmd.Val() {
			cs, ok := parseClientScheme(field)
			at, err := strconv.ParseInt(v, 10, 64)
			if ok && err == nil {
				d.last[cs] = at
			}
		}
	}
	if v, err := sinceCmd.Int64(); err == nil {
		d.since = v
	}
	return d, nil
}

// parseBucket skips fields it cannot read (written by a newer version with
// another scheme or outcome) rather than failing the whole report.
func parseBucket(fields map[string]string) bucketCounts {
	out := make(bucketCounts, len(fields))
	for f, v := range fields {
		k, ok := parseField(f)
		n, err := strconv.ParseInt(v, 10, 64)
		if ok && err == nil {
			out[k] += n
		}
	}
	return out
}
