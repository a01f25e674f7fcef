// Package usage counts every authentication decision by credential scheme,
// client and outcome, aggregates the counts of every instance (in Redis, or in
// memory for the embedded default), and turns them into the report and the
// readiness verdict operators use to retire sessions.
//
// Recording sits on the hot path of every request, so Record only touches
// fixed-size arrays of atomic counters and a fixed-size table of user hashes:
// no lock, no allocation, no I/O. A background loop (Run) cuts the counters
// into numbered batches and applies them to the shared store exactly once;
// see docs/usage-reporting.md for the guarantees and their limits.
package usage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Defaults applied by New to zero-valued Options fields (MaxSessionShare
// excepted: see its comment).
const (
	DefaultFlushInterval = 2 * time.Second
	DefaultRetention     = 35 * 24 * time.Hour
	DefaultMaxBacklog    = 64
	DefaultStoreTimeout  = time.Second
	// DefaultMaxSessionShare is the usual readiness threshold, the value of
	// usage.max_session_share in the embedded config. New never substitutes
	// it: pass it explicitly.
	DefaultMaxSessionShare = 0.01
)

// Minute buckets are kept this long (or Retention if shorter); older windows
// are answered from hour buckets.
const minuteRetention = 48 * time.Hour

// defaultUserSlots sizes the per-interval table of user hashes. It is drained at
// every flush, so it only has to hold the distinct users of one flush interval
// (or of an outage, while the backlog is full); 32768 slots cost 256 KiB.
const defaultUserSlots = 1 << 15

var (
	// ErrInvalidOptions: New was given options it cannot work with.
	ErrInvalidOptions = errors.New("usage: invalid options")
	// ErrInvalidWindow: a report window outside (0, Retention].
	ErrInvalidWindow = errors.New("usage: invalid report window")
	// ErrUnknownClient: a report or share was asked for a client id that is
	// neither registered nor one of the labels other/unknown. It wraps
	// auth.ErrNotFound for callers that test with errors.Is; the admin API
	// never gets here, it refuses such an id itself (400 invalid_request).
	ErrUnknownClient = fmt.Errorf("usage: unknown client id: %w", auth.ErrNotFound)
)

// Options configures a Recorder. Zero values take the documented defaults.
type Options struct {
	// Clients are the registered client ids. Anything else is labelled
	// auth.ClientOther, and "" (or "unknown" itself) is auth.ClientUnknown,
	// so label values (and metric series) stay a known, bounded set.
	Clients []string
	// Redis is where every instance aggregates; nil = in-memory aggregation
	// (embedded default, single instance).
	Redis redis.UniversalClient
	// InstanceID names this process in logs and batch ids (default: random).
	// A random suffix is always added, so a restarted process reusing the same
	// id never collides with the batches of its predecessor.
	InstanceID string
	// FlushInterval is how often deltas go to the store (default 2s).
	FlushInterval time.Duration
	// Retention is how long hour buckets are kept (default 35 days); it is also
	// the longest report window.
	Retention time.Duration
	// MaxBacklog is how many unacknowledged batches are kept while the store
	// is unreachable (default 64). When full, new deltas stay in the live
	// counters and go out with the next batch that can be cut.
	MaxBacklog int
	// SessionLifetime is the longest absolute session lifetime. A readiness
	// window shorter than it cannot prove that no old session comes back.
	SessionLifetime time.Duration
	// MaxSessionShare is the readiness threshold, within [0, 1], taken as
	// given: 0 means no session request at all may remain (it is not
	// replaced by a default, unlike the other fields; the configuration
	// always supplies usage.max_session_share, DefaultMaxSessionShare is the
	// usual value).
	MaxSessionShare float64
	// StoreTimeout is how long one round trip to Redis may take: the
	// client's read timeout (storage.redis.read_timeout), default 1s. Report
	// and SessionShare give up after at most about 1.35 times it, so an
	// unreachable store is reported (auth.ErrUnavailable) in about the time
	// the operator configured, not after the client's retries.
	StoreTimeout time.Duration
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Logger receives flush failures and recoveries (default slog.Default()).
	Logger *slog.Logger
	// Sources are the configured legacy.sources names: RecordSource counts
	// them in rows of their own (label values, so a bounded set).
	Sources []string
	// Registry is where metrics are registered besides the Recorder's own
	// private registry; nil = private registry only.
	Registry prometheus.Registerer
}

// Recorder counts authentication outcomes and reports on them. All methods
// are safe for concurrent use.
type Recorder struct {
	clock           func() time.Time
	log             *slog.Logger
	interval        time.Duration
	retention       time.Duration
	minuteKeep      time.Duration
	maxBacklog      int
	sessionLifetime time.Duration
	maxShare        float64
	storeTimeout    time.Duration
	extRegistry     prometheus.Registerer

	// labels[i] is the client label of counter row i: the registered clients
	// in order, then other, then unknown.
	labels     []string
	index      map[string]int
	registered int
	otherIdx   int
	unknownIdx int

	shards    []shard
	shardMask uint32
	users     *userSet

	// srcNames[i] is legacy source i, srcIndex its inverse; srcUsers holds
	// (source, user) keys (nil without sources). See sources.go.
	srcNames []string
	srcIndex map[string]int
	srcUsers *userSet

	backend backend
	metrics *metrics

	flushMu     sync.Mutex
	flushed     []int64 // per cell: cumulative count already cut into batches
	pending     []*batch
	seq         uint64
	sinceMarked bool
	failing     bool
}

// New builds a Recorder. It fails on invalid options or when the metrics
// cannot be registered (for instance twice in the same Registry).
func New(o Options) (*Recorder, error) {
	return newRecorder(o, defaultUserSlots)
}

func newRecorder(o Options, userSlots int) (*Recorder, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Recorder{
		clock:           o.Clock,
		log:             o.Logger,
		interval:        o.FlushInterval,
		retention:       o.Retention,
		minuteKeep:      min(minuteRetention, o.Retention),
		maxBacklog:      o.MaxBacklog,
		sessionLifetime: o.SessionLifetime,
		maxShare:        o.MaxSessionShare,
		storeTimeout:    o.StoreTimeout,
		extRegistry:     o.Registry,
	}
	if err := r.setLabels(o.Clients); err != nil {
		return nil, err
	}
	if err := r.setSources(o.Sources); err != nil {
		return nil, err
	}
	r.allocate(userSlots)

	instance := o.InstanceID
	if instance == "" {
		instance = "i" + randomHex(6)
	}
	stream := instance + "." + randomHex(8)
	if o.Redis != nil {
		r.backend = &redisBackend{c: o.Redis, stream: stream, retention: r.retention, minuteKeep: r.minuteKeep}
	} else {
		r.backend = newMemoryBackend(r.retention, r.minuteKeep)
	}

	m, err := newMetrics(r)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// withDefaults fills zero fields with the Default* constants
// (MaxSessionShare excepted: 0 is a threshold in its own right) and rejects
// settings that cannot work, in the order the fields are documented.
func (o Options) withDefaults() (Options, error) {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var err error
	if o.FlushInterval, err = orDefault("flush interval", o.FlushInterval, DefaultFlushInterval); err != nil {
		return o, err
	}
	switch {
	case o.Retention == 0:
		o.Retention = DefaultRetention
	case o.Retention < time.Hour:
		return o, fmt.Errorf("%w: retention %s is shorter than one hour bucket", ErrInvalidOptions, o.Retention)
	}
	if o.MaxBacklog, err = orDefault("max backlog", o.MaxBacklog, DefaultMaxBacklog); err != nil {
		return o, err
	}
	if o.SessionLifetime < 0 {
		return o, fmt.Errorf("%w: session lifetime %s is negative", ErrInvalidOptions, o.SessionLifetime)
	}
	if !(o.MaxSessionShare >= 0 && o.MaxSessionShare <= 1) { // NaN fails both
		return o, fmt.Errorf("%w: max session share %v is outside [0, 1]", ErrInvalidOptions, o.MaxSessionShare)
	}
	if o.StoreTimeout, err = orDefault("store timeout", o.StoreTimeout, DefaultStoreTimeout); err != nil {
		return o, err
	}
	return o, nil
}

// orDefault is the rule of most Options fields: negative is refused, zero
// takes the default. %v prints a duration as 2s and a count as 64.
func orDefault[T time.Duration | int](what string, v, def T) (T, error) {
	switch {
	case v < 0:
		return v, fmt.Errorf("%w: %s %v is negative", ErrInvalidOptions, what, v)
	case v == 0:
		return def, nil
	}
	return v, nil
}

// allocate sizes the counter shards (a power of two, about two per P, so
// concurrent Record calls rarely contend on one counter), the flush bookkeeping
// and the user table, once labels and sources are known.
func (r *Recorder) allocate(userSlots int) {
	nShards := 1
	for nShards < 2*runtime.GOMAXPROCS(0) && nShards < 64 {
		nShards <<= 1
	}
	cells := (1 + len(r.srcNames)) * len(r.labels) * cellsPerClient
	r.shards = make([]shard, nShards)
	for i := range r.shards {
		r.shards[i] = newShard(cells)
	}
	r.shardMask = uint32(nShards - 1)
	r.flushed = make([]int64, cells)
	r.users = newUserSet(userSlots)
}

// setLabels validates the registered client ids. They become Redis field
// parts and metric label values, hence the character rules.
func (r *Recorder) setLabels(clients []string) error {
	r.index = make(map[string]int, len(clients)+2)
	for _, id := range clients {
		if err := checkName("client id", id, 128); err != nil {
			return err
		}
		if id == auth.ClientOther || id == auth.ClientUnknown || id == globalPhaseLabel {
			return fmt.Errorf("%w: client id %q is reserved", ErrInvalidOptions, id)
		}
		if _, dup := r.index[id]; dup {
			return fmt.Errorf("%w: client id %q registered twice", ErrInvalidOptions, id)
		}
		r.index[id] = len(r.labels)
		r.labels = append(r.labels, id)
	}
	r.registered = len(r.labels)
	r.otherIdx = len(r.labels)
	r.labels = append(r.labels, auth.ClientOther)
	r.unknownIdx = len(r.labels)
	r.labels = append(r.labels, auth.ClientUnknown)
	return nil
}

// checkName applies the rules every counted name (client id, legacy source
// name) obeys: it becomes part of a Redis field name, where '|' separates
// the parts, and a metric label value.
func checkName(kind, name string, maxLen int) error {
	switch {
	case name == "" || len(name) > maxLen:
		return fmt.Errorf("%w: %s %q must be 1 to %d characters", ErrInvalidOptions, kind, name, maxLen)
	case strings.ContainsFunc(name, func(c rune) bool { return c == fieldSep || c <= ' ' || c == 0x7f }):
		return fmt.Errorf("%w: %s %q contains '|', a space or a control character", ErrInvalidOptions, kind, name)
	}
	return nil
}

// clientIndex maps any client id to its counter row without allocating. The
// label unknown itself (what authn records when no principal could be
// established) lands on the unknown row, not on other.
func (r *Recorder) clientIndex(clientID string) int {
	if clientID == "" || clientID == auth.ClientUnknown {
		return r.unknownIdx
	}
	if i, ok := r.index[clientID]; ok {
		return i
	}
	return r.otherIdx
}

// label returns the client label a caller-supplied id is counted under, or
// ErrUnknownClient when the id cannot name a counter row. "other" and
// "unknown" are accepted as labels in their own right.
func (r *Recorder) label(clientID string) (string, error) {
	switch clientID {
	case auth.ClientOther, auth.ClientUnknown:
		return clientID, nil
	}
	if _, ok := r.index[clientID]; ok {
		return clientID, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownClient, clientID)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
