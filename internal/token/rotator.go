package token

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// RotatorOptions configure a Rotator. Zero durations take the defaults.
type RotatorOptions struct {
	// Dir is jwt.keys_dir, the same files on every instance (required).
	Dir string
	// SigningKID seeds the rotation state when the store holds none yet
	// ("" = the last kid in sort order); afterwards the state decides.
	SigningKID string
	// PublishDelay is the least time a new key is in the JWKS before it
	// signs; the JWKS max-age must not exceed it. Default 5m.
	PublishDelay time.Duration
	// ReloadInterval is how often each instance re-reads the state and
	// rescans Dir, in case an announcement was lost. The new key signs
	// PublishDelay + ReloadInterval after the rotation, so even an instance
	// that missed the announcement publishes it PublishDelay ahead. Default 5s.
	ReloadInterval time.Duration
	// AccessTTL and Leeway are the token service's; a replaced key is kept
	// RetireAfter after it stops signing, by default AccessTTL + Leeway, which
	// is also the minimum.
	AccessTTL, Leeway, RetireAfter time.Duration
	// Algorithms a key may have to be rotated in; empty = the algorithm of
	// the current signing key.
	Algorithms []string
	// InstanceID names this instance in reports; default hostname + random.
	InstanceID string
	Clock      func() time.Time
	Logger     *slog.Logger
}

// Defaults of RotatorOptions.
const (
	DefaultPublishDelay   = 5 * time.Minute
	DefaultReloadInterval = 5 * time.Second
)

// How long Rotate waits for the other instances to confirm the new state.
const rotateAwait = 2 * time.Second

// Rotator keeps this instance's key ring in step with the shared rotation
// state: it reads jwt.keys_dir, follows the state through pub/sub, periodic
// re-reads and a timer set to the next planned change, and hands every new
// ring to the token service.
type Rotator struct {
	cfg    RotatorOptions
	rs     rotationStore
	log    *slog.Logger
	follow *store.Follower

	// refreshMu serialises "read the store, then install", so an older read
	// never replaces a newer state. Every status change happens under it.
	refreshMu sync.Mutex
	// status is what this instance follows now; readers load it without a
	// lock and see one consistent value.
	status atomic.Pointer[rotatorStatus]

	mu    sync.Mutex // guards apply
	apply func(*KeyRing)
}

// withDefaults fills zero fields and rejects settings that cannot work.
func (cfg RotatorOptions) withDefaults() (RotatorOptions, error) {
	if cfg.PublishDelay == 0 {
		cfg.PublishDelay = DefaultPublishDelay
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	minRetire := cfg.AccessTTL + cfg.Leeway
	if cfg.RetireAfter == 0 {
		cfg.RetireAfter = minRetire
	}
	switch {
	case cfg.PublishDelay < 0 || cfg.ReloadInterval < 0:
		return cfg, fmt.Errorf("%w: publish delay and reload interval must be positive", ErrConfig)
	case cfg.RetireAfter < minRetire:
		return cfg, fmt.Errorf("%w: retire-after %s is shorter than access TTL + leeway (%s): tokens would outlive their key", ErrConfig, cfg.RetireAfter, minRetire)
	}
	for _, a := range cfg.Algorithms {
		if !auth.IsAlgorithm(a) {
			return cfg, fmt.Errorf("%w: algorithm %q (want %s)", ErrConfig, a, auth.AlgorithmNames())
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = defaultInstanceID()
	}
	return cfg, nil
}

// NewRotator checks cfg. Call Load, then Start.
func NewRotator(st store.Store, cfg RotatorOptions) (*Rotator, error) {
	if st == nil || cfg.Dir == "" {
		return nil, fmt.Errorf("%w: rotator needs a store and a keys directory", ErrConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Rotator{cfg: cfg, rs: rotationStore{st: st}, log: cfg.Logger}
	r.status.Store(&rotatorStatus{})
	// A failed re-read is not retried early: the last state read keeps
	// applying (its planned changes included) and the next period re-reads.
	follow, err := store.NewFollower(st, store.FollowOptions{
		Name: "key rotation: re-read", Channel: RotationChannel,
		Reload: r.reload, Period: cfg.ReloadInterval, Next: r.untilNextChange,
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.follow = follow
	return r, nil
}

// current is the status in force; never nil.
func (r *Rotator) current() *rotatorStatus { return r.status.Load() }

func defaultInstanceID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "instance"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// InstanceID names this instance in reports.
func (r *Rotator) InstanceID() string { return r.cfg.InstanceID }

// Lead is how long after a rotation the new key signs.
func (r *Rotator) Lead() time.Duration { return r.cfg.PublishDelay + r.cfg.ReloadInterval }

func (r *Rotator) now() time.Time { return r.cfg.Clock().UTC().Round(0) }

// Load reads keys_dir, loads the rotation state (seeding it from keys_dir and
// SigningKID when the store holds none) and returns the ring for now. At
// start a bad key file is an error, as it always was; later rescans skip it
// and report it instead.
func (r *Rotator) Load(ctx context.Context) (*KeyRing, error) {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	scan, err := scanKeyDir(r.cfg.Dir, nil)
	if err != nil {
		return nil, err
	}
	if len(scan.problems) > 0 {
		return nil, errors.Join(scan.problems...)
	}
	if len(scan.keys) == 0 {
		return nil, ringError(r.cfg.Dir, ErrNoKeys, "no *.pem files")
	}
	st, ok, err := r.rs.load(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		if st, err = r.seed(ctx, scan); err != nil {
			return nil, err
		}
	} else if r.cfg.SigningKID != "" {
		if signer, err := st.SigningAt(r.now()); err == nil && signer != r.cfg.SigningKID {
			r.log.Warn("jwt.signing_kid only seeds the key rotation state; the stored state decides which key signs",
				"signing_kid", r.cfg.SigningKID, "signing", signer, "version", st.Version)
		}
	}
	next := *r.current()
	next.state, next.dir = st, scan
	cur := r.install(next)
	ring := cur.ring
	if ring == nil {
		return nil, cur.buildErr
	}
	r.log.Info("signing keys loaded", "signing", ring.SigningKID(), "published", ring.KIDs(), "rotation_version", st.Version, "instance", r.cfg.InstanceID)
	r.writeReport(ctx)
	return ring, nil
}

// seed writes the first state; when another instance seeded first, its
// state wins.
func (r *Rotator) seed(ctx context.Context, scan keyDirScan) (RotationState, error) {
	st, err := SeedRotation(scan.algorithms(), r.cfg.SigningKID, r.now(), r.cfg.RetireAfter, "instance "+r.cfg.InstanceID)
	if err != nil {
		return RotationState{}, fmt.Errorf("jwt.keys_dir %s: %w", r.cfg.Dir, err)
	}
	if err := r.rs.cas(ctx, 0, st); err != nil {
		if !errors.Is(err, errRotationConflict) {
			return RotationState{}, err
		}
		cur, ok, err := r.rs.load(ctx)
		if err != nil {
			return RotationState{}, err
		}
		if !ok {
			return RotationState{}, fmt.Errorf("%w: state vanished right after being seeded", ErrRotationState)
		}
		return cur, nil
	}
	r.log.Info("key rotation state seeded from jwt.keys_dir", "signing", st.Audit[0].KID, "version", st.Version)
	_ = r.rs.announce(ctx, st.Version)
	return st, nil
}

// Start follows the shared state in the background until ctx is done,
// passing every new ring to apply (the token service's SetRing): it re-reads
// on announcements, on reconnects, periodically, and exactly when the
// schedule says a key starts signing or retires.
func (r *Rotator) Start(ctx context.Context, apply func(*KeyRing)) {
	r.mu.Lock()
	r.apply = apply
	r.mu.Unlock()
	go r.follow.Run(ctx)
}

// reload is one re-read of the follower; Refresh reports its own failures.
func (r *Rotator) reload(ctx context.Context) error {
	err := r.Refresh(ctx)
	r.writeReport(ctx)
	return err
}

func (r *Rotator) untilNextChange() time.Duration {
	now := r.now()
	if next, ok := r.current().state.NextChangeAfter(now); ok {
		// A hair late rather than early: at exactly the planned moment the
		// change is due (states switch at !Before).
		return next.Sub(now) + time.Millisecond
	}
	return time.Hour
}

// Refresh rescans keys_dir, re-reads the state and applies it now. When the
// store cannot be read the last state still applies (its planned changes
// happen on time) and the error is returned.
func (r *Rotator) Refresh(ctx context.Context) error {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	return r.refreshLocked(ctx)
}

func (r *Rotator) refreshLocked(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	prev := r.current()
	scan, dirErr := scanKeyDir(r.cfg.Dir, prev.dir.keys)
	st, ok, err := r.rs.load(ctx)
	if err == nil && !ok {
		st, err = r.restore(ctx)
	}
	next := *prev
	r.noteDir(&next, scan, dirErr)
	if err != nil {
		if !prev.storeFailing {
			r.log.Warn("key rotation: cannot read the rotation state; following the last one read", "err", err)
		}
		next.storeFailing = true
		r.install(next)
		return err
	}
	if prev.storeFailing {
		r.log.Info("key rotation: rotation state readable again")
	}
	next.state, next.storeFailing = st, false
	r.install(next)
	return nil
}

// restore puts this instance's state back when the store lost it (flushed,
// failed over without persistence), so a rotation in flight goes on.
func (r *Rotator) restore(ctx context.Context) (RotationState, error) {
	cur := r.current()
	next := cur.state.Clone()
	if next.Version == 0 {
		return r.seed(ctx, cur.dir)
	}
	now := r.now()
	next.Version++
	next.UpdatedAt, next.UpdatedBy = now, "instance "+r.cfg.InstanceID
	next.Audit = append([]RotationAudit{{Version: next.Version, At: now, Actor: next.UpdatedBy, Action: RotationRestore,
		Reason: "state missing from the store; restored from this instance's copy"}}, next.Audit...)
	if err := r.rs.cas(ctx, 0, next); err != nil {
		if !errors.Is(err, errRotationConflict) {
			return RotationState{}, err
		}
		cur, ok, err := r.rs.load(ctx)
		if err != nil || !ok {
			return RotationState{}, fmt.Errorf("%w: state vanished while being restored", ErrRotationState)
		}
		return cur, nil
	}
	r.log.Warn("key rotation state was missing from the store; restored it", "version", next.Version)
	_ = r.rs.announce(ctx, next.Version)
	return next, nil
}

// noteDir puts a rescan of keys_dir into next, logging what changed since
// the previous one. A directory that cannot be read keeps the keys read
// before.
func (r *Rotator) noteDir(next *rotatorStatus, scan keyDirScan, err error) {
	if err != nil {
		if next.dirErr == nil {
			r.log.Error("key rotation: jwt.keys_dir cannot be read; keeping the keys read before", "dir", r.cfg.Dir, "err", err)
		}
		next.dirErr = err
		return
	}
	if next.dirErr != nil {
		r.log.Info("key rotation: jwt.keys_dir readable again", "dir", r.cfg.Dir)
	}
	next.dirErr = nil
	old := map[string]bool{}
	for _, p := range next.dir.problems {
		old[p.Error()] = true
	}
	for _, p := range scan.problems {
		if !old[p.Error()] {
			r.log.Error("key rotation: a key file in jwt.keys_dir cannot be used; skipping it", "err", p)
		}
	}
	next.dir = scan
}

// install builds the ring of next for now, publishes next as the status in
// force, logs what changed, and hands a changed ring to the token service.
// A failed build keeps the previous ring. Called with refreshMu held, so
// installs never interleave; it returns what it published.
func (r *Rotator) install(next rotatorStatus) *rotatorStatus {
	prev := r.current()
	next.ringStatus = buildRing(&next.state, next.dir, r.now())
	if next.buildErr != nil {
		next.ring, next.keys = prev.ring, prev.keys
	}
	r.status.Store(&next)
	r.logStatusChange(prev, &next)
	if next.buildErr != nil || next.sameRing(prev.ringStatus) {
		return &next
	}
	if prev.ring != nil {
		r.logRingChange(prev.ring, next.ring, next.state.Version)
	}
	r.mu.Lock()
	apply := r.apply
	r.mu.Unlock()
	if apply != nil {
		apply(next.ring)
	}
	return &next
}

// logStatusChange logs missing keys and build failures when they appear or
// change, not at every rescan.
func (r *Rotator) logStatusChange(prev, next *rotatorStatus) {
	if !slices.Equal(next.missing, prev.missing) || next.degraded != prev.degraded {
		if len(next.missing) > 0 {
			r.log.Error("key rotation: keys the rotation needs are missing from jwt.keys_dir on this instance; copy them here (this instance reports not ready)",
				"missing", next.missing, "dir", r.cfg.Dir, "version", next.state.Version, "fallback", next.degraded)
		} else if len(prev.missing) > 0 {
			r.log.Info("key rotation: every key the rotation needs is present again", "dir", r.cfg.Dir)
		}
	}
	if err := next.buildErr; err != nil && (prev.buildErr == nil || prev.buildErr.Error() != err.Error()) {
		r.log.Error("key rotation: cannot build a key ring; keeping the previous one", "err", err, "version", next.state.Version)
	}
}

func (r *Rotator) logRingChange(prev, next *KeyRing, version int64) {
	if prev.SigningKID() != next.SigningKID() {
		r.log.Info("key rotation: signing key changed", "from", prev.SigningKID(), "to", next.SigningKID(), "version", version)
	}
	for _, kid := range next.KIDs() {
		if prev.Key(kid) == nil {
			r.log.Info("key rotation: key published in the JWKS and accepted", "kid", kid, "version", version)
		}
	}
	for _, kid := range prev.KIDs() {
		if next.Key(kid) == nil {
			r.log.Info("key rotation: key retired from the JWKS and the ring; its file may now be deleted", "kid", kid, "version", version)
		}
	}
}

// Ring is the ring in use.
func (r *Rotator) Ring() *KeyRing { return r.current().ring }

// Ready is nil when every key the rotation needs now is in this instance's
// keys_dir; otherwise an error wrapping ErrKeysMissing that names them.
func (r *Rotator) Ready() error {
	s := r.current()
	switch {
	case s.ring == nil:
		return fmt.Errorf("%w: no usable signing key", ErrKeysMissing)
	case len(s.missing) > 0:
		return fmt.Errorf("%w: %s (rotation version %d)", ErrKeysMissing, strings.Join(s.missing, ", "), s.state.Version)
	case s.dirErr != nil:
		return fmt.Errorf("%w: keys_dir cannot be read", ErrKeysMissing)
	}
	return nil
}

// RotateRequest is an operator's rotation.
type RotateRequest struct {
	KID    string // "" = the newest key in keys_dir that is not signing
	Reason string
	Force  bool
	Actor  string // who, for the audit
}

// Rotate plans a rotation to req.KID (see RotationState.Rotate), stores it
// with compare-and-set, announces it, applies it here, and waits briefly for
// the other instances to confirm, so the answer can name any that lack the key.
func (r *Rotator) Rotate(ctx context.Context, req RotateRequest) (KeysView, error) {
	if req.KID != "" && !ValidKID(req.KID) {
		return KeysView{}, fmt.Errorf("%w: %q is not a valid kid", ErrUnknownKey, req.KID)
	}
	r.refreshMu.Lock()
	audit, err := r.rotateLocked(ctx, req)
	r.refreshMu.Unlock()
	if err != nil {
		return KeysView{}, err
	}
	r.writeReport(ctx)
	r.awaitInstances(ctx, audit.Version)
	v := r.view(ctx)
	v.Rotation = &audit
	return v, nil
}

func (r *Rotator) rotateLocked(ctx context.Context, req RotateRequest) (RotationAudit, error) {
	for attempt := 0; ; attempt++ {
		// Rescan first: the operator has usually just added the key file.
		if err := r.refreshLocked(ctx); err != nil {
			return RotationAudit{}, err
		}
		status := r.current()
		cur, avail := status.state.Clone(), status.dir.algorithms()
		next, audit, err := cur.Rotate(RotateInput{
			KID: req.KID, Available: avail, Allowed: r.cfg.Algorithms, Now: r.now(),
			Lead: r.Lead(), RetireAfter: r.cfg.RetireAfter, Force: req.Force,
			Actor: req.Actor, Reason: req.Reason,
		})
		if err != nil {
			return RotationAudit{}, err
		}
		err = r.rs.cas(ctx, cur.Version, next)
		if errors.Is(err, errRotationConflict) && attempt < 2 {
			continue // someone else changed it: decide again on their state
		}
		if err != nil {
			return RotationAudit{}, err
		}
		installed := *r.current()
		installed.state = next
		r.install(installed)
		if err := r.rs.announce(ctx, next.Version); err != nil {
			r.log.Warn("key rotation: announcing failed; other instances see it at their next re-read", "err", err)
		}
		// The caller (the admin API) logs the audit line with the operator.
		r.log.Info("key rotation: new plan stored", "kid", audit.KID, "from", audit.From, "signs_at", audit.SignsAt, "version", audit.Version)
		return audit, nil
	}
}
