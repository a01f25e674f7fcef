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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

// RotatorConfig configures a Rotator. Zero durations take the defaults.
type RotatorConfig struct {
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

// Defaults of RotatorConfig.
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
	cfg  RotatorConfig
	rs   rotationStore
	log  *slog.Logger
	kick chan struct{}

	// refreshMu serialises "read the store, then install", so an older read
	// never replaces a newer state.
	refreshMu sync.Mutex

	mu           sync.Mutex
	apply        func(*KeyRing)
	dir          keyDirScan
	dirErr       error
	state        RotationState
	ring         *KeyRing
	ringKeys     []*Key // what ring was built from, to detect changes
	missing      []string
	degraded     string
	buildErr     error
	storeFailing bool
}

// NewRotator checks cfg. Call Load, then Start.
func NewRotator(st store.Store, cfg RotatorConfig) (*Rotator, error) {
	if st == nil || cfg.Dir == "" {
		return nil, fmt.Errorf("%w: rotator needs a store and a keys directory", ErrConfig)
	}
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
		return nil, fmt.Errorf("%w: publish delay and reload interval must be positive", ErrConfig)
	case cfg.RetireAfter < minRetire:
		return nil, fmt.Errorf("%w: retire-after %s is shorter than access TTL + leeway (%s): tokens would outlive their key", ErrConfig, cfg.RetireAfter, minRetire)
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains([]string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}, a) {
			return nil, fmt.Errorf("%w: algorithm %q (want EdDSA, ES256, RS256 or HS256)", ErrConfig, a)
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
	return &Rotator{cfg: cfg, rs: rotationStore{st: st}, log: cfg.Logger, kick: make(chan struct{}, 1)}, nil
}

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
	r.mu.Lock()
	r.dir = scan
	r.mu.Unlock()
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
	r.mu.Lock()
	r.install(st, r.now())
	ring, buildErr := r.ring, r.buildErr
	r.mu.Unlock()
	if ring == nil {
		return nil, buildErr
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
// passing every new ring to apply (the token service's SetRing).
func (r *Rotator) Start(ctx context.Context, apply func(*KeyRing)) {
	r.mu.Lock()
	r.apply = apply
	r.mu.Unlock()
	go r.subscribe(ctx)
	go r.loop(ctx)
}

func (r *Rotator) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Rotator) subscribe(ctx context.Context) {
	backoff := revBackoffMin
	for {
		err := r.rs.st.Subscribe(ctx, RotationChannel, func([]byte) { r.poke() }, r.poke)
		if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
			return
		}
		r.log.Warn("key rotation: subscription failed, retrying; periodic re-reads continue", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, revBackoffMax)
		r.poke()
	}
}

// loop re-reads on announcements, periodically, and exactly when the
// schedule says a key starts signing or retires.
func (r *Rotator) loop(ctx context.Context) {
	poll := time.NewTicker(r.cfg.ReloadInterval)
	defer poll.Stop()
	change := time.NewTimer(r.untilNextChange())
	defer change.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-poll.C:
		case <-change.C:
		}
		_ = r.Refresh(ctx)
		r.writeReport(ctx)
		change.Reset(r.untilNextChange())
	}
}

func (r *Rotator) untilNextChange() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if next, ok := r.state.NextChangeAfter(now); ok {
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
	r.mu.Lock()
	prev := r.dir.keys
	r.mu.Unlock()
	scan, dirErr := scanKeyDir(r.cfg.Dir, prev)
	st, ok, err := r.rs.load(ctx)
	if err == nil && !ok {
		st, err = r.restore(ctx)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noteDir(scan, dirErr)
	if err != nil {
		if !r.storeFailing {
			r.log.Warn("key rotation: cannot read the rotation state; following the last one read", "err", err)
		}
		r.storeFailing = true
		r.install(r.state, r.now())
		return err
	}
	if r.storeFailing {
		r.log.Info("key rotation: rotation state readable again")
		r.storeFailing = false
	}
	r.install(st, r.now())
	return nil
}

// restore puts this instance's state back when the store lost it (flushed,
// failed over without persistence), so a rotation in flight goes on.
func (r *Rotator) restore(ctx context.Context) (RotationState, error) {
	r.mu.Lock()
	next := r.state.Clone()
	scan := r.dir
	r.mu.Unlock()
	if next.Version == 0 {
		return r.seed(ctx, scan)
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

func (r *Rotator) noteDir(scan keyDirScan, err error) {
	if err != nil {
		if r.dirErr == nil {
			r.log.Error("key rotation: jwt.keys_dir cannot be read; keeping the keys read before", "dir", r.cfg.Dir, "err", err)
		}
		r.dirErr = err
		return
	}
	if r.dirErr != nil {
		r.log.Info("key rotation: jwt.keys_dir readable again", "dir", r.cfg.Dir)
	}
	r.dirErr = nil
	old := map[string]bool{}
	for _, p := range r.dir.problems {
		old[p.Error()] = true
	}
	for _, p := range scan.problems {
		if !old[p.Error()] {
			r.log.Error("key rotation: a key file in jwt.keys_dir cannot be used; skipping it", "err", p)
		}
	}
	r.dir = scan
}

// install makes st current and rebuilds the ring for now if it changed.
// Called with r.mu held.
func (r *Rotator) install(st RotationState, now time.Time) {
	r.state = st
	ring, keys, missing, degraded, err := r.buildRing(now)
	if !slices.Equal(missing, r.missing) || degraded != r.degraded {
		if len(missing) > 0 {
			r.log.Error("key rotation: keys the rotation needs are missing from jwt.keys_dir on this instance; copy them here (this instance reports not ready)",
				"missing", missing, "dir", r.cfg.Dir, "version", st.Version, "fallback", degraded)
		} else if len(r.missing) > 0 {
			r.log.Info("key rotation: every key the rotation needs is present again", "dir", r.cfg.Dir)
		}
	}
	r.missing, r.degraded = missing, degraded
	if err != nil {
		if r.buildErr == nil || r.buildErr.Error() != err.Error() {
			r.log.Error("key rotation: cannot build a key ring; keeping the previous one", "err", err, "version", st.Version)
		}
		r.buildErr = err
		return
	}
	r.buildErr = nil
	if r.ring != nil && r.ring.SigningKID() == ring.SigningKID() && slices.Equal(r.ringKeys, keys) {
		return
	}
	if r.ring != nil {
		r.logChange(r.ring, ring)
	}
	r.ring, r.ringKeys = ring, keys
	if r.apply != nil {
		r.apply(ring)
	}
}

func (r *Rotator) logChange(prev, next *KeyRing) {
	if prev.SigningKID() != next.SigningKID() {
		r.log.Info("key rotation: signing key changed", "from", prev.SigningKID(), "to", next.SigningKID(), "version", r.state.Version)
	}
	for _, kid := range next.KIDs() {
		if prev.Key(kid) == nil {
			r.log.Info("key rotation: key published in the JWKS and accepted", "kid", kid, "version", r.state.Version)
		}
	}
	for _, kid := range prev.KIDs() {
		if next.Key(kid) == nil {
			r.log.Info("key rotation: key retired from the JWKS and the ring; its file may now be deleted", "kid", kid, "version", r.state.Version)
		}
	}
}

// buildRing is the ring for now from the state and the keys on disk. A key
// the state needs but the disk lacks is reported as missing; if that is the
// signing key, the key that signed most recently among those present signs
// instead (still published everywhere), and the instance reports not ready.
func (r *Rotator) buildRing(now time.Time) (*KeyRing, []*Key, []string, string, error) {
	signer, err := r.state.SigningAt(now)
	if err != nil {
		return nil, nil, nil, "", err
	}
	var have []*Key
	var missing []string
	for _, kid := range r.state.VerifyingAt(now) {
		dk, ok := r.dir.keys[kid]
		if !ok || dk.key.alg != r.state.Key(kid).Alg {
			missing = append(missing, kid)
			continue
		}
		have = append(have, dk.key)
	}
	if len(have) == 0 {
		return nil, nil, missing, "", fmt.Errorf("%w: none of the keys of rotation version %d (%v) is in %s", ErrKeysMissing, r.state.Version, r.state.VerifyingAt(now), r.cfg.Dir)
	}
	use, degraded := signer, ""
	if !slices.ContainsFunc(have, func(k *Key) bool { return k.kid == signer }) {
		use = have[len(have)-1].kid
		var latest time.Time
		for _, k := range have {
			if s := r.state.Key(k.kid); s.SignFrom != nil && !s.SignFrom.After(now) && s.SignFrom.After(latest) {
				use, latest = k.kid, *s.SignFrom
			}
		}
		degraded = fmt.Sprintf("signing key %q is missing from keys_dir; signing with %q instead", signer, use)
	}
	ring, err := NewKeyRing(use, have...)
	if err != nil {
		return nil, nil, missing, degraded, err
	}
	return ring, have, missing, degraded, nil
}

// Ring is the ring in use.
func (r *Rotator) Ring() *KeyRing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ring
}

// Ready is nil when every key the rotation needs now is in this instance's
// keys_dir; otherwise an error wrapping ErrKeysMissing that names them.
func (r *Rotator) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.ring == nil:
		return fmt.Errorf("%w: no usable signing key", ErrKeysMissing)
	case len(r.missing) > 0:
		return fmt.Errorf("%w: %s (rotation version %d)", ErrKeysMissing, strings.Join(r.missing, ", "), r.state.Version)
	case r.dirErr != nil:
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
		r.mu.Lock()
		cur, avail := r.state.Clone(), r.dir.algorithms()
		r.mu.Unlock()
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
		r.mu.Lock()
		r.install(next, r.now())
		r.mu.Unlock()
		if err := r.rs.announce(ctx, next.Version); err != nil {
			r.log.Warn("key rotation: announcing failed; other instances see it at their next re-read", "err", err)
		}
		// The caller (the admin API) logs the audit line with the operator.
		r.log.Info("key rotation: new plan stored", "kid", audit.KID, "from", audit.From, "signs_at", audit.SignsAt, "version", audit.Version)
		return audit, nil
	}
}

// freshReports is how old a report may be and still count as a live instance.
func (r *Rotator) freshReports() time.Duration { return 3*r.cfg.ReloadInterval + 2*time.Second }

func (r *Rotator) awaitInstances(ctx context.Context, version int64) {
	ctx, cancel := context.WithTimeout(ctx, rotateAwait)
	defer cancel()
	for {
		reports, err := r.rs.reports(ctx, r.now(), r.freshReports())
		if err != nil {
			return
		}
		behind := false
		for _, rep := range reports {
			if rep.Version < version {
				behind = true
			}
		}
		if !behind {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Rotator) report() InstanceReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := InstanceReport{ID: r.cfg.InstanceID, Version: r.state.Version, KeysDir: r.dir.kids(),
		Missing: slices.Clone(r.missing), At: r.now()}
	if r.ring != nil {
		rep.Signing = r.ring.SigningKID()
	}
	rep.Problems = r.problemsLocked()
	return rep
}

func (r *Rotator) problemsLocked() []string {
	var out []string
	if r.degraded != "" {
		out = append(out, r.degraded)
	}
	if len(r.missing) > 0 {
		out = append(out, fmt.Sprintf("keys_dir lacks %s, needed by rotation version %d", strings.Join(r.missing, ", "), r.state.Version))
	}
	if r.dirErr != nil {
		out = append(out, "keys_dir cannot be read: "+r.dirErr.Error())
	}
	for _, p := range r.dir.problems {
		out = append(out, p.Error())
	}
	if r.buildErr != nil {
		out = append(out, r.buildErr.Error())
	}
	if r.storeFailing {
		out = append(out, "the rotation state cannot be read from the store; following the last one read")
	}
	return out
}

func (r *Rotator) writeReport(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.rs.writeReport(ctx, r.report()); err != nil && ctx.Err() == nil {
		r.log.Debug("key rotation: writing the instance report failed", "err", err)
	}
}

// Keys is the rotation as this instance sees it after a fresh re-read, with
// every live instance's report.
func (r *Rotator) Keys(ctx context.Context) (KeysView, error) {
	if err := r.Refresh(ctx); err != nil {
		return KeysView{}, err
	}
	return r.view(ctx), nil
}

func (r *Rotator) view(ctx context.Context) KeysView {
	now := r.now()
	own := r.report()
	r.mu.Lock()
	v := KeysView{
		Version: r.state.Version, Now: now, Signing: own.Signing,
		RotationInProgress: r.state.InProgressAt(now),
		PublishDelay:       r.cfg.PublishDelay.String(), RetireAfter: r.cfg.RetireAfter.String(),
		Audit: slices.Clone(r.state.Audit),
	}
	for _, k := range r.state.Keys {
		since, until := k.sinceUntil(now)
		state := k.StateAt(now)
		_, inDir := r.dir.keys[k.KID]
		v.Keys = append(v.Keys, KeyView{KID: k.KID, Alg: k.Alg, State: state, Since: since, Until: until,
			Published: state != KeyRetired && k.Alg != AlgHS256, InKeysDir: inDir})
	}
	for _, kid := range r.dir.kids() {
		if r.state.Key(kid) == nil {
			v.Keys = append(v.Keys, KeyView{KID: kid, Alg: r.dir.keys[kid].key.alg, State: KeyAvailable, InKeysDir: true})
		}
	}
	r.mu.Unlock()
	sortKeyViews(v.Keys)
	for _, p := range own.Problems {
		v.Problems = append(v.Problems, "instance "+own.ID+" (this one): "+p)
	}
	v.Instances = []InstanceReport{own}
	reports, err := r.rs.reports(ctx, now, r.freshReports())
	if err != nil {
		v.Problems = append(v.Problems, "instance reports cannot be read: "+err.Error())
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].ID < reports[j].ID })
	for _, rep := range reports {
		if rep.ID == own.ID {
			continue
		}
		v.Instances = append(v.Instances, rep)
		for _, p := range rep.Problems {
			v.Problems = append(v.Problems, "instance "+rep.ID+": "+p)
		}
		if rep.Version < v.Version {
			v.Problems = append(v.Problems, fmt.Sprintf("instance %s has applied rotation version %d, not %d yet", rep.ID, rep.Version, v.Version))
		}
	}
	if v.Keys == nil {
		v.Keys = []KeyView{}
	}
	if v.Problems == nil {
		v.Problems = []string{}
	}
	if v.Audit == nil {
		v.Audit = []RotationAudit{}
	}
	return v
}
