package usage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

// sourceUsersKey is the distinct-user sketch of a legacy source's hour.
func sourceUsersKey(source string, hour int64) string {
	return keyPrefix + "us:" + source + ":" + strconv.FormatInt(hour, 10)
}

const (
	lastSeenKey = keyPrefix + "last"
	sinceKey    = keyPrefix + "since"
	// lostKey holds the last time an instance found that Redis had lost
	// usage data it had acknowledged.
	lostKey = keyPrefix + "lost"
)

// seqKey holds the highest batch sequence applied for one sending process.
func seqKey(stream string) string { return keyPrefix + "seq:" + stream }

// applyScript applies one batch exactly once, and notices when Redis has lost
// data.
//
// A process numbers its batches 1, 2, 3... and sends them in order; the
// script keeps the highest number applied (the marker), so a batch re-sent
// after a timeout that Redis had in fact executed is a no-op. It refuses a
// batch that would skip one, which could otherwise be applied late and then
// mistaken for a duplicate. The marker is written in the same atomic script as
// the counters, so a snapshot, a replica or an AOF replay holds both or
// neither; and it is written first, so should the script fail half-way (out
// of memory) a retry loses the rest of that one batch rather than counting
// part of it twice.
//
// The sender also says which number it last saw acknowledged. A marker below
// that (or missing) cannot come from a duplicate: Redis came back from an
// older snapshot, empty, or failed over to a lagging replica, and forgot
// batches it had acknowledged. Refusing would stall this process for good, so
// the script applies the first unacknowledged batch, moves the marker to it
// and records when the loss was noticed (KEYS[6]), which the report shows.
// Only the first unacknowledged batch may do this: a later one in the same
// pipeline must not jump over a batch that failed.
//
// Last-seen fields older than the retention are pruned as the hash is
// updated, like the in-memory back end does.
//
// KEYS: 1 marker, 2 minute bucket, 3 hour bucket, 4 last-seen hash, 5 since,
// 6 data-loss time.
// ARGV: 1 seq, 2 highest seq acknowledged to the sender (0: none), 3 batch
// time, 4 now, 5 minute TTL, 6 hour TTL, 7 marker, loss and last-seen TTL (all
// in seconds), 8 last-seen cutoff (unix seconds), 9 number n of counters, then
// n (field, delta) pairs, then the last-seen fields.
// Returns 0 for a duplicate, 1 when applied, 2 when applied after a loss.
var applyScript = redis.NewScript(`
local seq = tonumber(ARGV[1])
local acked = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
local done = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local result = 1
if seq <= done then return 0 end
if done < acked then
  if seq ~= acked + 1 then
    return redis.error_reply('TSGAP batch ' .. seq .. ' follows lost ' .. done .. ', acknowledged ' .. acked)
  end
  local lost = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
  if now > lost then redis.call('SET', KEYS[6], now, 'EX', ARGV[7]) end
  result = 2
elseif seq ~= done + 1 then
  return redis.error_reply('TSGAP batch ' .. seq .. ' follows ' .. done)
end
redis.call('SET', KEYS[1], seq, 'EX', ARGV[7])
local at = tonumber(ARGV[3])
local n = tonumber(ARGV[9])
local i = 10
for _ = 1, n do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if n > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
if i <= #ARGV then
  while i <= #ARGV do
    local cur = tonumber(redis.call('HGET', KEYS[4], ARGV[i]) or '0') or 0
    if at > cur then redis.call('HSET', KEYS[4], ARGV[i], at) end
    i = i + 1
  end
  local cutoff = tonumber(ARGV[8])
  local all = redis.call('HGETALL', KEYS[4])
  for j = 1, #all, 2 do
    local v = tonumber(all[j + 1])
    if v == nil or v < cutoff then redis.call('HDEL', KEYS[4], all[j]) end
  end
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
redis.call('SET', KEYS[5], at, 'NX')
return result
`)

type redisBackend struct {
	c                     redis.UniversalClient
	stream                string
	retention, minuteKeep time.Duration

	// acked is the highest batch sequence Redis has acknowledged to this
	// process. Only apply touches it, and apply runs under the Recorder's
	// flushMu.
	acked uint64
}

func (b *redisBackend) seconds(d time.Duration) int64 { return int64(d / time.Second) }

// apply sends every pending batch in one pipeline: for each, the PFADDs of its
// users (idempotent by nature) and the apply script. A batch counts as applied
// only when all of its commands succeeded; the first that did not stops the
// count, and it and every later batch stay pending. lost reports that the
// script found Redis had lost acknowledged data (and recovered from it).
//
// Expiries are TTLs from now on the injected clock rather than absolute
// times, so they do not depend on Redis's clock agreeing with ours; a bucket
// already past its retention gets a one-second TTL.
func (b *redisBackend) apply(ctx context.Context, now int64, batches []*batch) (applied int, lost bool, err error) {
	ttl := func(end int64, keep time.Duration) time.Duration {
		return max(time.Duration(end+b.seconds(keep)-now)*time.Second, time.Second)
	}
	keepTTL := b.seconds(b.retention + time.Hour)
	pipe := b.c.Pipeline()
	cmds := make([][]redis.Cmder, len(batches))
	scripts := make([]*redis.Cmd, len(batches))
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
		for s, members := range bt.srcUsers {
			args := make([]any, len(members))
			for j, m := range members {
				args[j] = binary.BigEndian.AppendUint64(nil, m)
			}
			key := sourceUsersKey(s, hour)
			cmds[i] = append(cmds[i], pipe.PFAdd(ctx, key, args...), pipe.Expire(ctx, key, hourTTL))
		}
		minute := floorTo(bt.at, minuteSeconds)
		keys := []string{seqKey(b.stream), minuteKey(minute), hourKey(hour), lastSeenKey, sinceKey, lostKey}
		args := []any{
			bt.seq, b.acked, bt.at, now,
			int64(ttl(minute+minuteSeconds, b.minuteKeep) / time.Second),
			int64(hourTTL / time.Second),
			keepTTL,
			lastSeenCut(now, b.retention),
			len(bt.counts),
		}
		for _, c := range bt.counts {
			args = append(args, c.key.String(), c.n)
		}
		for _, cs := range bt.seen() {
			args = append(args, cs.String())
		}
		for _, s := range bt.seenSources() {
			args = append(args, lastSourcePrefix+s)
		}
		scripts[i] = applyScript.Eval(ctx, pipe, keys, args...)
		cmds[i] = append(cmds[i], scripts[i])
	}
	// Exec's error is the first failed command's, which the loop finds and
	// places; a failure before anything was sent fails every command.
	_, _ = pipe.Exec(ctx)
	for i := range batches {
		for _, c := range cmds[i] {
			if err := c.Err(); err != nil {
				return i, lost, fmt.Errorf("apply batch %d: %w", batches[i].seq, err)
			}
		}
		b.acked = batches[i].seq
		if v, _ := scripts[i].Int64(); v == 2 {
			lost = true
		}
	}
	return len(batches), lost, nil
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
			keys := hourKeys(q.userHours, func(h int64) string { return usersKey(s, h) })
			all = append(all, keys...)
			userCmds[s] = pipe.PFCount(ctx, keys...)
		}
		allUsersCmd = pipe.PFCount(ctx, all...)
	}
	srcUserCmds := map[string]*redis.IntCmd{}
	if q.userHours != nil {
		for _, s := range q.sources {
			srcUserCmds[s] = pipe.PFCount(ctx, hourKeys(q.userHours, func(h int64) string { return sourceUsersKey(s, h) })...)
		}
	}
	var lastCmd *redis.MapStringStringCmd
	if q.lastSeen {
		lastCmd = pipe.HGetAll(ctx, lastSeenKey)
	}
	sinceCmd := pipe.Get(ctx, sinceKey)
	lostCmd := pipe.Get(ctx, lostKey)
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
		d.srcUsers = make(map[string]int64, len(srcUserCmds))
		for s, c := range srcUserCmds {
			d.srcUsers[s] = c.Val()
		}
	}
	if lastCmd != nil {
		d.setLastSeen(lastCmd.Val())
	}
	if v, err := sinceCmd.Int64(); err == nil {
		d.since = v
	}
	if v, err := lostCmd.Int64(); err == nil {
		d.lost = v
	}
	return d, nil
}

// hourKeys names one key per hour, in order.
func hourKeys(hours []int64, key func(hour int64) string) []string {
	keys := make([]string, len(hours))
	for i, h := range hours {
		keys[i] = key(h)
	}
	return keys
}

// setLastSeen parses the fields of the last-seen hash: client|scheme fields
// and, behind lastSourcePrefix, legacy sources. A field or value it cannot
// parse is skipped (written by a newer version, or damaged), not an error.
func (d *rawData) setLastSeen(fields map[string]string) {
	d.last = make(map[clientScheme]int64)
	d.lastSources = make(map[string]int64)
	for field, v := range fields {
		at, err := strconv.ParseInt(v, 10, 64)
		if s, isSource := strings.CutPrefix(field, lastSourcePrefix); isSource {
			if err == nil {
				d.lastSources[s] = at
			}
			continue
		}
		cs, ok := parseClientScheme(field)
		if ok && err == nil {
			d.last[cs] = at
		}
	}
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
