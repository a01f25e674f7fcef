package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// ErrBusy means every password-verification slot stayed taken for the whole
// queue timeout (or the request ended first): hashing is bounded so a burst of
// logins, or rows with expensive hashes, cannot eat every core and all memory.
var ErrBusy = errors.New("too many password verifications in progress")

// ErrSuspended is the answer for a correct password on a suspended account.
// It is only given after the password verified, so it reveals nothing to
// someone who does not know the password.
var ErrSuspended = errors.New("account suspended")

// ErrAccountChanged means the account's password was changed through
// tokenshift while this login's password was being checked: the password
// that verified is no longer the account's. It wraps ErrInvalidCredentials,
// which is what the client is told.
var ErrAccountChanged = fmt.Errorf("%w: the password was changed during the login", ErrInvalidCredentials)

// ErrOverlay wraps a failure to read tokenshift's own account state (the
// shared store), as opposed to the user store.
var ErrOverlay = errors.New("account state unavailable")

// MaxLoginBytes bounds a login name (an email address is at most 320).
const MaxLoginBytes = 320

// VerifierOptions configure a Verifier. A nil *VerifierOptions, or zero
// fields, mean the defaults.
type VerifierOptions struct {
	// Hasher checks the stored hashes; nil = default limits.
	Hasher *Hasher
	// Overlay holds tokenshift's own per-user state (password changed here,
	// suspension), consulted after the store found the user; nil = none, and
	// then password change and suspension are unavailable.
	Overlay Overlay
	// DummyHash is what an unknown login is verified against, so it costs what
	// a real one does. "" = a hash of the same format and cost as the first
	// real user the store returns (until then, bcrypt cost 10).
	DummyHash string
	// MaxConcurrent bounds the hash verifications running at once; 0 = two per
	// CPU (GOMAXPROCS).
	MaxConcurrent int
	// QueueTimeout is how long a login waits for a slot before ErrBusy;
	// default 2s. The request's own context can end the wait sooner.
	QueueTimeout time.Duration
	// WarnInterval spaces the warnings about one user's unusable hash;
	// default 10m.
	WarnInterval time.Duration
	// AllowPasswordChange enables ChangePassword (it also needs an Overlay).
	AllowPasswordChange bool
	// PasswordCost is the bcrypt cost of passwords changed through
	// tokenshift; default 12.
	PasswordCost int
	Logger       *slog.Logger
	Clock        func() time.Time
}

// Defaults of VerifierOptions.
const (
	DefaultQueueTimeout = 2 * time.Second
	DefaultWarnInterval = 10 * time.Minute
	DefaultPasswordCost = 12
)

// Verifier checks a login and password against a Store: timing-safe (an
// unknown login costs what a known one does), bounded (a semaphore limits the
// hashing running at once) and loud about rows it cannot use.
type Verifier struct {
	store        Store
	hasher       *Hasher
	overlay      Overlay
	allowChange  bool
	pwCost       int
	sem          chan struct{}
	queueTimeout time.Duration
	dummy        atomic.Pointer[dummy]
	problems     *problemLog
	log          *slog.Logger
	clock        func() time.Time
	busy         atomic.Uint64
}

// dummy is the hash unknown logins are checked against.
type dummy struct {
	p *parsed
	// source says where its parameters came from, for logs and Stats.
	source string
	// settled means calibration is over: configured, or taken from a user.
	settled bool
}

// defaultDummy stands in until calibration: bcrypt at Go's default cost.
var defaultDummy = func() *parsed {
	// Only the shape matters: dummyLike replaces salt and digest.
	p, err := defaultHasher.parseBcrypt("$2a$10$abcdefghijklmnopqrstuuFiPhXf1sVd3pCCRO.uVh34H/qI/ZsuS")
	if err != nil {
		panic(err) // a constant
	}
	d, err := defaultHasher.dummyLike(p)
	if err != nil {
		panic(err)
	}
	return d
}()

// withDefaults fills zero fields.
func (opts VerifierOptions) withDefaults() VerifierOptions {
	if opts.Hasher == nil {
		opts.Hasher = defaultHasher
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.QueueTimeout <= 0 {
		opts.QueueTimeout = DefaultQueueTimeout
	}
	if opts.WarnInterval <= 0 {
		opts.WarnInterval = DefaultWarnInterval
	}
	if opts.PasswordCost == 0 {
		opts.PasswordCost = DefaultPasswordCost
	}
	return opts
}

// NewVerifier builds a Verifier over s. An invalid o.DummyHash is logged and
// ignored (calibration takes over); cmd validates it at start-up first.
func NewVerifier(s Store, o *VerifierOptions) *Verifier {
	var opts VerifierOptions
	if o != nil {
		opts = *o
	}
	opts = opts.withDefaults()
	v := &Verifier{
		store:        s,
		hasher:       opts.Hasher,
		overlay:      opts.Overlay,
		allowChange:  opts.AllowPasswordChange && opts.Overlay != nil,
		pwCost:       opts.PasswordCost,
		sem:          make(chan struct{}, opts.MaxConcurrent),
		queueTimeout: opts.QueueTimeout,
		problems:     newProblemLog(opts.Logger, opts.Clock, opts.WarnInterval),
		log:          opts.Logger,
		clock:        opts.Clock,
	}
	v.dummy.Store(&dummy{p: defaultDummy, source: "default " + FormatBcrypt + " cost=10"})
	if opts.DummyHash != "" {
		if d, err := v.hasher.DummyFor(opts.DummyHash); err != nil {
			v.log.Error("users.dummy_hash is not a usable hash; calibrating from the first real user instead", "error", err)
		} else {
			v.dummy.Store(&dummy{p: d.p, source: "configured " + d.desc, settled: true})
		}
	}
	if fs, ok := s.(interface{ FirstHash() string }); ok && !v.dummy.Load().settled {
		v.calibrate(fs.FirstHash())
	}
	return v
}

// Dummy is a validated dummy hash (see Hasher.DummyFor).
type Dummy struct {
	p    *parsed
	desc string
}

// DummyFor validates encoded as a dummy: it must parse within the limits. The
// dummy has its parameters, not its salt or digest.
func (h *Hasher) DummyFor(encoded string) (*Dummy, error) {
	p, err := h.parse(encoded)
	if err != nil {
		return nil, err
	}
	d, err := h.dummyLike(p)
	if err != nil {
		return nil, err
	}
	return &Dummy{p: d, desc: p.format + " " + p.params}, nil
}

// calibrate makes unknown logins cost what encoded costs, once: the first
// usable hash a store returns sets the dummy's format and parameters.
func (v *Verifier) calibrate(encoded string) {
	cur := v.dummy.Load()
	if cur.settled || encoded == "" {
		return
	}
	p, err := v.hasher.parse(encoded)
	if err != nil {
		return
	}
	d, err := v.hasher.dummyLike(p)
	if err != nil {
		return
	}
	next := &dummy{p: d, source: "calibrated " + p.format + " " + p.params, settled: true}
	if v.dummy.CompareAndSwap(cur, next) {
		v.log.Info("unknown logins now cost a "+p.format+" verification", "params", p.params)
	}
}

// Verify returns the user for a correct login and password. Unknown user,
// wrong password and disabled account all give ErrInvalidCredentials after
// the same hashing work; a correct password on a suspended account gives
// ErrSuspended; no free hashing slot gives ErrBusy; a store that cannot answer
// gives an error wrapping auth.ErrUnavailable (or the store's own, such as
// ErrSQLConfig).
//
// Every account state Verify decides on is read after it was called: a
// caller that dates the login it creates (session, tokens) no later than the
// instant it called Verify can rely on a per-user revocation taken after a
// password change or a suspension to end that login. The account state is
// read again once the hash verified, because waiting for a slot and hashing
// take long (up to the queue timeout plus the hash): a change that landed
// meanwhile refuses the login here, whatever the instances' clocks say.
func (v *Verifier) Verify(ctx context.Context, login, password string) (*User, error) {
	if login == "" || password == "" || len(login) > MaxLoginBytes || len(password) > MaxPasswordBytes {
		if err := v.runDummy(ctx, password[:min(len(password), MaxPasswordBytes)]); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	u, err := v.store.Lookup(ctx, login)
	if err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			if err := v.runDummy(ctx, password); err != nil {
				return nil, err
			}
			return nil, ErrInvalidCredentials
		}
		return nil, fmt.Errorf("user lookup: %w", err)
	}
	v.calibrate(u.PasswordHash)
	var acct AccountState
	if v.overlay != nil {
		if acct, err = v.overlay.Get(ctx, u.ID); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOverlay, err)
		}
	}
	encoded := u.PasswordHash
	if acct.PasswordHash != "" {
		// Changed through tokenshift: the legacy hash is stale.
		encoded = acct.PasswordHash
	}
	ok, err := v.checkHash(ctx, u.ID, encoded, password)
	if err != nil {
		return nil, err
	}
	if !ok || u.Disabled {
		return nil, ErrInvalidCredentials
	}
	if acct.Suspended {
		return nil, ErrSuspended
	}
	if v.overlay != nil {
		now, err := v.overlay.Get(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOverlay, err)
		}
		if err := changedSince(acct, now); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// changedSince says whether the account changed between the state a login
// was verified against (before) and the state after the hash (after).
func changedSince(before, after AccountState) error {
	switch {
	case after.Suspended:
		return ErrSuspended
	case after.PasswordHash != before.PasswordHash || !after.PasswordChangedAt.Equal(before.PasswordChangedAt):
		return ErrAccountChanged
	}
	return nil
}

// checkHash verifies in a slot. A hash that cannot be checked is reported
// and costs a dummy run, so it is as slow as a wrong password.
func (v *Verifier) checkHash(ctx context.Context, userID, encoded, password string) (bool, error) {
	release, err := v.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	p, err := v.hasher.parse(encoded)
	if err != nil {
		v.problems.report(userID, FormatOf(encoded), err)
		v.dummy.Load().p.check(password)
		return false, nil
	}
	return p.check(password), nil
}

func (v *Verifier) runDummy(ctx context.Context, password string) error {
	release, err := v.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	v.dummy.Load().p.check(password)
	return nil
}

// acquire takes a hashing slot, waiting at most the queue timeout and never
// past the request's end.
func (v *Verifier) acquire(ctx context.Context) (func(), error) {
	release := func() { <-v.sem }
	select {
	case v.sem <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(v.queueTimeout)
	defer t.Stop()
	select {
	case v.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		v.busy.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	case <-t.C:
		v.busy.Add(1)
		return nil, ErrBusy
	}
}

// VerifierStats are the Verifier's counters, for metrics.
type VerifierStats struct {
	// HashUnknownFormat and HashOverLimit count verifications against stored
	// hashes that could not be used: not a supported format, or beyond the
	// limits.
	HashUnknownFormat, HashOverLimit uint64
	// Busy counts logins refused because no hashing slot became free.
	Busy uint64
	// InFlight and Capacity are the slots in use and available.
	InFlight, Capacity int
	// Dummy says what unknown logins are verified against.
	Dummy string
}

// Stats returns the counters.
func (v *Verifier) Stats() VerifierStats {
	return VerifierStats{
		HashUnknownFormat: v.problems.unknown.Load(),
		HashOverLimit:     v.problems.overLimit.Load(),
		Busy:              v.busy.Load(),
		InFlight:          len(v.sem),
		Capacity:          cap(v.sem),
		Dummy:             v.dummy.Load().source,
	}
}
