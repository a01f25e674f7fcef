package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/tick"
)

// memorySweepEvery bounds how long expired keys nobody reads stay in memory.
// Reads already ignore them, so this only limits memory use.
const memorySweepEvery = 30 * time.Second

var _ Store = (*Memory)(nil)

// Memory is the in-process back end of the embedded default and of tests. It
// mimics the Redis semantics the callers rely on (TTLs, atomic SetNX/GetDel/Incr,
// sets and hashes deleted when emptied, pub/sub) so that one contract test
// holds for both back ends.
type Memory struct {
	clock func() time.Time

	mu     sync.Mutex
	data   map[string]*memEntry
	subs   map[string]map[*memSub]struct{}
	closed bool

	stop     chan struct{}
	stopOnce sync.Once
	swept    sync.WaitGroup
}

type memKind int

const (
	kindString memKind = iota
	kindSet
	kindHash
)

type memEntry struct {
	kind    memKind
	str     []byte
	set     map[string]struct{}
	hash    map[string][]byte
	expires time.Time // zero: no expiry
}

// NewMemory returns an empty in-memory store. clock decides expiry (nil means
// time.Now), so tests can move time without sleeping. Close stops the sweeper.
func NewMemory(clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	m := &Memory{
		clock: clock,
		data:  make(map[string]*memEntry),
		subs:  make(map[string]map[*memSub]struct{}),
		stop:  make(chan struct{}),
	}
	m.swept.Add(1)
	go m.sweepLoop()
	return m
}

func (m *Memory) sweepLoop() {
	defer m.swept.Done()
	tick.Every(m.stop, memorySweepEvery, func() bool {
		m.sweep()
		return true
	})
}

func (m *Memory) sweep() {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	for k, e := range m.data {
		if e.expired(now) {
			delete(m.data, k)
		}
	}
}

func (e *memEntry) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

func (e *memEntry) ttl(now time.Time) time.Duration {
	if e.expires.IsZero() {
		return 0
	}
	return e.expires.Sub(now)
}

// begin locks the store after checking the context and Close; callers must
// call m.mu.Unlock. Checking ctx keeps the in-memory store honest about
// cancellation the way the network back end is.
func (m *Memory) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: %w: %w", auth.ErrUnavailable, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// live returns the entry at key, dropping it when expired. Lock held.
func (m *Memory) live(key string, now time.Time) *memEntry {
	e, ok := m.data[key]
	if !ok {
		return nil
	}
	if e.expired(now) {
		delete(m.data, key)
		return nil
	}
	return e
}

func expiryAt(now time.Time, exp time.Duration) time.Time {
	if exp <= 0 {
		return time.Time{}
	}
	return now.Add(exp)
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// --- fiber.Storage ---

func (m *Memory) Get(key string) ([]byte, error) { return m.GetCtx(context.Background(), key) }

// Set follows fiber.Storage: an empty key or value is ignored.
func (m *Memory) Set(key string, val []byte, exp time.Duration) error {
	return m.SetCtx(context.Background(), key, val, exp)
}

func (m *Memory) Delete(key string) error { return m.DeleteCtx(context.Background(), key) }

// Reset empties the store. Allowed here (the data is private to the process),
// unlike on Redis.
func (m *Memory) Reset() error {
	if err := m.begin(context.Background()); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.data = make(map[string]*memEntry)
	return nil
}

// Close stops the sweeper and ends every Subscribe. Later calls return ErrClosed.
func (m *Memory) Close() error {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		for _, subs := range m.subs {
			for s := range subs {
				s.close()
			}
		}
		m.subs = make(map[string]map[*memSub]struct{})
		m.mu.Unlock()
		close(m.stop)
	})
	m.swept.Wait()
	return nil
}

// --- key-value ---

func (m *Memory) GetCtx(ctx context.Context, key string) ([]byte, error) {
	return m.get(ctx, key, false)
}

// get reads the string at key, and deletes it when del (GetDel). A kept
// value is copied; a deleted one is handed over as it is.
func (m *Memory) get(ctx context.Context, key string, del bool) ([]byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	e, err := m.readable(key, kindString)
	if e == nil {
		return nil, err
	}
	if del {
		delete(m.data, key)
		return e.str, nil
	}
	return clone(e.str), nil
}

// SetCtx follows fiber.Storage: an empty key or value is ignored.
func (m *Memory) SetCtx(ctx context.Context, key string, val []byte, exp time.Duration) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if key == "" || len(val) == 0 {
		return nil
	}
	m.data[key] = &memEntry{kind: kindString, str: clone(val), expires: expiryAt(m.clock(), exp)}
	return nil
}

func (m *Memory) DeleteCtx(ctx context.Context, keys ...string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.data, k)
	}
	return nil
}

func (m *Memory) SetNX(ctx context.Context, key string, val []byte, exp time.Duration) (bool, error) {
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	now := m.clock()
	if m.live(key, now) != nil {
		return false, nil
	}
	m.data[key] = &memEntry{kind: kindString, str: clone(val), expires: expiryAt(now, exp)}
	return true, nil
}

func (m *Memory) GetDel(ctx context.Context, key string) ([]byte, error) {
	return m.get(ctx, key, true)
}

// Consume holds the store's lock across the read, the delete and the marker
// write, so no other call sees the key gone before the marker is there.
func (m *Memory) Consume(ctx context.Context, key, usedKey string) ([]byte, []byte, error) {
	if err := m.begin(ctx); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	now := m.clock()
	if e := m.live(key, now); e != nil {
		if e.kind != kindString {
			return nil, nil, ErrWrongType
		}
		delete(m.data, key)
		m.data[usedKey] = &memEntry{kind: kindString, str: clone(e.str), expires: e.expires}
		return e.str, nil, nil
	}
	u := m.live(usedKey, now)
	if u == nil {
		return nil, nil, nil
	}
	if u.kind != kindString {
		return nil, nil, ErrWrongType
	}
	return nil, clone(u.str), nil
}

// TakeField holds the store's lock across the read and both writes.
func (m *Memory) TakeField(ctx context.Context, key, field, usedField string, id []byte, keep int) (map[string][]byte, bool, bool, error) {
	if len(id) < FingerprintLen {
		return nil, false, false, fmt.Errorf("store: take field: id of %d bytes is shorter than a fingerprint", len(id))
	}
	if err := m.begin(ctx); err != nil {
		return nil, false, false, err
	}
	defer m.mu.Unlock()
	e := m.live(key, m.clock())
	if e == nil {
		return map[string][]byte{}, false, false, nil
	}
	if e.kind != kindHash {
		return nil, false, false, ErrWrongType
	}
	h := make(map[string][]byte, len(e.hash))
	for f, v := range e.hash {
		h[f] = clone(v)
	}
	fp := id[:FingerprintLen]
	used := e.hash[usedField]
	if cur, ok := e.hash[field]; ok && bytes.HasPrefix(cur, id) {
		delete(e.hash, field)
		next := append(slices.Clone(fp), used...)
		e.hash[usedField] = next[:min(len(next), keep*FingerprintLen)]
		return h, true, false, nil
	}
	for i := 0; i+FingerprintLen <= len(used); i += FingerprintLen {
		if bytes.Equal(used[i:i+FingerprintLen], fp) {
			return h, false, true, nil
		}
	}
	return h, false, false, nil
}

// Incr sets exp whenever the counter has no expiry, which includes its
// creation; the returned TTL is 0 when the counter does not expire.
func (m *Memory) Incr(ctx context.Context, key string, exp time.Duration) (int64, time.Duration, error) {
	if err := m.begin(ctx); err != nil {
		return 0, 0, err
	}
	defer m.mu.Unlock()
	now := m.clock()
	e := m.live(key, now)
	if e == nil {
		e = &memEntry{kind: kindString, str: []byte("0")}
		m.data[key] = e
	}
	if e.kind != kindString {
		return 0, 0, ErrWrongType
	}
	n, err := strconv.ParseInt(string(e.str), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: not an integer", ErrWrongType)
	}
	n++
	e.str = strconv.AppendInt(e.str[:0], n, 10)
	if e.expires.IsZero() {
		e.expires = expiryAt(now, exp)
	}
	return n, e.ttl(now), nil
}

// Decr refunds one unit of a counter made by Incr; its expiry is kept.
func (m *Memory) Decr(ctx context.Context, key string) (int64, error) {
	if err := m.begin(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	e, err := m.readable(key, kindString)
	if e == nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(e.str), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: not an integer", ErrWrongType)
	}
	if n > 0 {
		n--
	}
	e.str = strconv.AppendInt(e.str[:0], n, 10)
	return n, nil
}

// extendTo applies the "expiry at least exp" rule of SAdd and HSet: a new key
// gets exp; an existing key keeps the later of its expiry and now+exp; exp 0
// means no expiry, which is later than any.
func extendTo(e *memEntry, isNew bool, now time.Time, exp time.Duration) {
	switch {
	case exp <= 0:
		e.expires = time.Time{}
	case isNew:
		e.expires = now.Add(exp)
	case !e.expires.IsZero() && e.expires.Before(now.Add(exp)):
		e.expires = now.Add(exp)
	}
}

// --- sets ---

func (m *Memory) SAdd(ctx context.Context, key string, exp time.Duration, members ...string) error {
	return m.addFields(ctx, key, exp, kindSet, len(members), func(e *memEntry) {
		for _, mb := range members {
			e.set[mb] = struct{}{}
		}
	})
}

func (m *Memory) SRem(ctx context.Context, key string, members ...string) error {
	return removeFields(m, ctx, key, kindSet, func(e *memEntry) map[string]struct{} { return e.set }, members)
}

// SMembers returns the members sorted; Redis gives no order, so callers must
// not rely on one.
func (m *Memory) SMembers(ctx context.Context, key string) ([]string, error) {
	return readFields(m, ctx, key, kindSet, func(e *memEntry) []string {
		out := make([]string, 0, len(e.set))
		for mb := range e.set {
			out = append(out, mb)
		}
		sort.Strings(out)
		return out
	})
}

// --- hashes ---

func (m *Memory) HSet(ctx context.Context, key string, exp time.Duration, field string, val []byte) error {
	return m.addFields(ctx, key, exp, kindHash, 1, func(e *memEntry) { e.hash[field] = clone(val) })
}

func (m *Memory) HDel(ctx context.Context, key string, fields ...string) error {
	return removeFields(m, ctx, key, kindHash, func(e *memEntry) map[string][]byte { return e.hash }, fields)
}

func (m *Memory) HGetAll(ctx context.Context, key string) (map[string][]byte, error) {
	return readFields(m, ctx, key, kindHash, func(e *memEntry) map[string][]byte {
		out := make(map[string][]byte, len(e.hash))
		for f, v := range e.hash {
			out[f] = clone(v)
		}
		return out
	})
}

// The three operations of sets and hashes, the same for both but for the
// kind and its fields.

// addFields adds n fields (add) to the set or hash at key, creating it, and
// extends its expiry to exp; n == 0 changes nothing.
func (m *Memory) addFields(ctx context.Context, key string, exp time.Duration, k memKind, n int, add func(*memEntry)) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if n == 0 {
		return nil
	}
	now := m.clock()
	e, isNew, err := m.writable(key, k, n, now)
	if err != nil {
		return err
	}
	add(e)
	extendTo(e, isNew, now, exp)
	m.data[key] = e
	return nil
}

func (m *Memory) HSetFields(ctx context.Context, key string, exp time.Duration, fields ...Field) error {
	if len(fields) == 0 {
		return nil
	}
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	now := m.clock()
	e := m.live(key, now)
	isNew := e == nil
	if isNew {
		e = &memEntry{kind: kindHash, hash: make(map[string][]byte, len(fields))}
	} else if e.kind != kindHash {
		return ErrWrongType
	}
	for _, f := range fields {
		e.hash[f.Name] = clone(f.Value)
	}
	extendTo(e, isNew, now, exp)
	m.data[key] = e
	return nil
}

// removeFields removes names from the fields of the set or hash at key, and
// the key once nothing is left, as Redis does.
func removeFields[V any](m *Memory, ctx context.Context, key string, k memKind, fields func(*memEntry) map[string]V, names []string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	e, err := m.readable(key, k)
	if e == nil {
		return err
	}
	f := fields(e)
	for _, n := range names {
		delete(f, n)
	}
	if len(f) == 0 {
		delete(m.data, key)
	}
	return nil
}

// readFields is read applied to the set or hash at key, or to an empty one
// when there is none.
func readFields[T any](m *Memory, ctx context.Context, key string, k memKind, read func(*memEntry) T) (T, error) {
	var zero T
	if err := m.begin(ctx); err != nil {
		return zero, err
	}
	defer m.mu.Unlock()
	e, err := m.readable(key, k)
	if err != nil {
		return zero, err
	}
	if e == nil {
		e = &memEntry{kind: k, set: map[string]struct{}{}, hash: map[string][]byte{}}
	}
	return read(e), nil
}

// readable is the live entry of kind k at key: nil when there is none,
// ErrWrongType when key holds another kind. Call with m.mu held.
func (m *Memory) readable(key string, k memKind) (*memEntry, error) {
	e := m.live(key, m.clock())
	if e == nil {
		return nil, nil
	}
	if e.kind != k {
		return nil, ErrWrongType
	}
	return e, nil
}

// writable is the live set or hash (kind k) at key to add to, or a new empty
// one sized for n (isNew); ErrWrongType when key holds another kind. Call
// with m.mu held.
func (m *Memory) writable(key string, k memKind, n int, now time.Time) (e *memEntry, isNew bool, err error) {
	e = m.live(key, now)
	switch {
	case e == nil && k == kindSet:
		return &memEntry{kind: kindSet, set: make(map[string]struct{}, n)}, true, nil
	case e == nil:
		return &memEntry{kind: kindHash, hash: make(map[string][]byte, n)}, true, nil
	case e.kind != k:
		return nil, false, ErrWrongType
	}
	return e, false, nil
}

// --- pub/sub ---

// memSub is one Subscribe call. Its queue is unbounded so that Publish never
// blocks on a slow handler (a handler that itself publishes would deadlock
// otherwise) and never drops a message.
type memSub struct {
	mu     sync.Mutex
	queue  [][]byte
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newMemSub() *memSub {
	return &memSub{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *memSub) push(p []byte) {
	s.mu.Lock()
	s.queue = append(s.queue, p)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSub) drain() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

func (s *memSub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

func (m *Memory) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	for s := range m.subs[channel] {
		s.push(clone(payload))
	}
	return nil
}

// Subscribe delivers in publication order until ctx is done (then it returns
// nil) or the store is closed (ErrClosed). onReconnect is never called: an
// in-process subscription cannot be lost.
func (m *Memory) Subscribe(ctx context.Context, channel string, fn func(payload []byte), onReconnect func()) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	s := newMemSub()
	if m.subs[channel] == nil {
		m.subs[channel] = make(map[*memSub]struct{})
	}
	m.subs[channel][s] = struct{}{}
	m.mu.Unlock()

	defer func() {
		m.mu.Lock()
		delete(m.subs[channel], s)
		if len(m.subs[channel]) == 0 {
			delete(m.subs, channel)
		}
		m.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return ErrClosed
		case <-s.wake:
			for _, p := range s.drain() {
				if ctx.Err() != nil {
					return nil
				}
				fn(p)
			}
		}
	}
}

func (m *Memory) Ping(ctx context.Context) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Durable has nothing to wait for: the in-memory store has no replicas, and
// its writes are as durable as the process.
func (m *Memory) Durable(ctx context.Context) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Redis is nil: callers with Redis-only fast paths use their in-memory path.
func (m *Memory) Redis() redis.UniversalClient { return nil }
