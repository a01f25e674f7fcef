package featureflags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokenshift/tokenshift/internal/termsafe"
)

// Options configures NewManager. Zero values take the documented defaults.
type Options struct {
	// Backend holds the state. nil: an in-process memory backend, i.e. the
	// static source driven by the configuration file (see ReloadStatic).
	Backend Backend
	// Initial seeds the backend when it holds nothing yet (from config).
	Initial State
	// KnownClients are the registered client ids; overrides and exemptions may
	// name only these, and the guard counts them.
	KnownClients []string
	// Guard reads the usage figures; nil: changes are never guarded.
	Guard Guard
	// GuardMaxShare is the session share, within [0, 1], above which a
	// guarded change is refused. It is taken as given, zero included: 0
	// refuses any change while a single affected session request remains.
	// DefaultGuardMaxShare (1 %) is the usual value.
	GuardMaxShare float64
	// GuardWindow is how far back the guard looks. Default 24h
	// (DefaultGuardWindow). The usage data must reach back that far: the
	// guard refuses while it does not.
	GuardWindow time.Duration
	// Clock stamps changes and the audit log. Default time.Now.
	Clock func() time.Time
	// Logger receives watch and guard problems. Default: discard.
	Logger *slog.Logger
}

// Change is one operator's request to replace the state.
type Change struct {
	// Expect is the version the operator's change was made from; it must
	// still be current.
	Expect int64
	// Next is the complete new state. Its Version and Updated* fields are
	// ignored: the Manager sets them.
	Next State
	// Edit, when set, replaces Next: Apply reads the stored state, checks
	// that its version is Expect, and lets Edit change a copy of it. Partial
	// updates (the admin API's PUT) use it, so that the fields they do not
	// touch come from the stored version the caller named, never from this
	// instance's snapshot, which may lag behind another instance's change.
	// An error from Edit is returned as is and changes nothing.
	Edit func(s *State) error
	// Actor (required) and Reason go to the audit log.
	Actor, Reason string
	// Force overrides the usage guard; it requires a Reason.
	Force bool
}

// Manager is the only writer of the flag state: it validates, guards, writes
// with compare-and-swap, audits, and keeps Flags in step with the backend.
type Manager struct {
	backend  Backend
	flags    *Flags
	known    []string
	guard    Guard
	maxShare float64
	window   time.Duration
	clock    func() time.Time
	log      *slog.Logger
	static   bool

	// mu serialises "read or write the backend, then install the snapshot",
	// so an older read can never replace a newer snapshot.
	mu         sync.Mutex
	lastStatic *State // settings last read from the configuration file
	failing    bool   // the last refresh failed: log recovery once

	hooks changeHooks // OnChange funcs, run outside mu
}

// withDefaults fills zero fields and rejects settings that cannot work.
func (o Options) withDefaults() (Options, error) {
	if !(o.GuardMaxShare >= 0 && o.GuardMaxShare <= 1) { // NaN fails both
		return o, fmt.Errorf("featureflags: guard max share %v must be within [0, 1]", o.GuardMaxShare)
	}
	if o.GuardWindow == 0 {
		o.GuardWindow = DefaultGuardWindow
	}
	if o.GuardWindow < 0 {
		return o, fmt.Errorf("featureflags: guard window %v must be positive", o.GuardWindow)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Backend == nil {
		o.Backend = NewMemoryBackend()
	}
	return o, nil
}

// NewManager loads the state from the backend, seeding it from o.Initial when
// the backend holds none yet, and installs it in Flags. Call Run to follow
// changes made by other instances.
func NewManager(ctx context.Context, o Options) (*Manager, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	_, static := o.Backend.(*memoryBackend)
	m := &Manager{
		backend:  o.Backend,
		flags:    &Flags{},
		known:    append([]string(nil), o.KnownClients...),
		guard:    o.Guard,
		maxShare: o.GuardMaxShare,
		window:   o.GuardWindow,
		clock:    o.Clock,
		log:      o.Logger,
		static:   static,
	}

	cur, ok, err := m.backend.Load(ctx)
	if err != nil {
		return nil, err
	}
	if !ok || o.Initial.Phase != 0 {
		if err := o.Initial.Validate(m.known); err != nil {
			return nil, fmt.Errorf("featureflags: initial state: %w", err)
		}
		if err := o.Initial.checkHorizon(m.now()); err != nil {
			return nil, fmt.Errorf("featureflags: initial state: %w", err)
		}
		initial := o.Initial.Clone()
		m.lastStatic = &initial
	}
	if !ok {
		cur, err = m.seed(ctx, o.Initial, "config", "seeded from configuration")
		if errors.Is(err, ErrVersionConflict) {
			// Another instance seeded first: its state wins.
			cur, ok, err = m.backend.Load(ctx)
			if err == nil && !ok {
				err = fmt.Errorf("featureflags: state vanished right after being seeded: %w", ErrUnavailable)
			}
		}
		if err != nil {
			return nil, err
		}
	} else {
		if err := cur.Validate(nil); err != nil {
			return nil, fmt.Errorf("featureflags: stored state version %d: %w", cur.Version, err)
		}
		if err := cur.Validate(m.known); err != nil {
			m.log.Warn("featureflags: stored state names clients that are not registered; their rules are inert", "version", cur.Version, "err", err)
		}
	}
	m.flags.store(cur)
	return m, nil
}

// Flags is the snapshot holder requests decide from.
func (m *Manager) Flags() *Flags { return m.flags }

// now is the injected clock in UTC without its monotonic reading, so a time
// compares equal to itself after a trip through JSON.
func (m *Manager) now() time.Time { return m.clock().UTC().Round(0) }

// seed writes base as the first state (expecting nothing stored).
func (m *Manager) seed(ctx context.Context, base State, actor, reason string) (State, error) {
	next := base.Clone()
	next.Version = base.Version + 1
	next.UpdatedAt = m.now()
	next.UpdatedBy = actor
	stampDeprecation(nil, &next, next.UpdatedAt, m.known)
	entry := AuditEntry{At: next.UpdatedAt, Actor: actor, Action: ActionInit, To: next, Reason: reason}
	if err := m.backend.CompareAndSwap(ctx, 0, next, entry); err != nil {
		return State{}, err
	}
	return next, nil
}

// Run follows the backend until ctx is done, installing every new version in
// Flags. It blocks.
func (m *Manager) Run(ctx context.Context) {
	m.backend.Watch(ctx, func() { m.refresh(ctx) })
}

// refresh reloads the state and installs it when its version differs from the
// snapshot's. "Differs", not "is newer": if Redis lost the state and another
// instance re-seeded it, the backend is still the truth.
func (m *Manager) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	defer m.hooks.deliver() // deferred first, so it runs after the unlock
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok, err := m.backend.Load(ctx)
	if err != nil {
		if ctx.Err() == nil && !m.failing {
			m.log.Warn("featureflags: cannot read the flag state; deciding from the last snapshot", "err", err)
		}
		m.failing = ctx.Err() == nil
		return
	}
	if m.failing {
		m.log.Info("featureflags: flag state readable again")
		m.failing = false
	}
	cur := m.flags.Current()
	if !ok {
		// The backend lost the state (flushed, failed over without
		// persistence). Put ours back rather than fall back to config, so the
		// phase operators chose survives.
		restored, err := m.seed(ctx, *cur, "instance", "state missing from the backend; restored from this instance's snapshot")
		if err != nil {
			m.log.Warn("featureflags: restoring the missing flag state failed", "err", err)
			return
		}
		m.log.Warn("featureflags: flag state was missing from the backend; restored it", "version", restored.Version)
		m.install(restored)
		return
	}
	if s.Version == cur.Version {
		return
	}
	if err := s.Validate(nil); err != nil {
		m.log.Error("featureflags: ignoring invalid stored state", "version", s.Version, "err", err)
		return
	}
	m.install(s)
	m.log.Info("featureflags: flag state changed", "version", s.Version, "phase", s.Phase.String(), "by", s.UpdatedBy)
}

// Apply validates c, consults the guard, writes the new state if c.Expect is
// still the current version, audits it and installs it. A change the guard
// refuses is audited too (action "refused", with the figures), so the log
// shows what was attempted and why it did not happen. Errors: ErrInvalidState,
// *VersionConflictError (ErrVersionConflict), *GuardError (ErrGuardRefused),
// ErrGuardUnavailable, ErrUnavailable, or whatever c.Edit returns.
func (m *Manager) Apply(ctx context.Context, c Change) (State, error) {
	actor, reason, err := checkActor(c.Actor, c.Reason)
	if err != nil {
		return State{}, err
	}
	if c.Force && reason == "" {
		return State{}, fmt.Errorf("%w: reason: a forced change must say why", ErrInvalidState)
	}
	if c.Edit == nil {
		// Refuse a malformed state before any I/O.
		if err := c.Next.Validate(m.known); err != nil {
			return State{}, err
		}
	}
	cur, ok, err := m.backend.Load(ctx)
	if err != nil {
		return State{}, err
	}
	if !ok {
		cur = State{}
	}
	if c.Expect != cur.Version {
		return State{}, &VersionConflictError{Expected: c.Expect, Current: cur.Version}
	}
	next := c.Next.Clone()
	if c.Edit != nil {
		next = cur.Clone()
		if err := c.Edit(&next); err != nil {
			return State{}, err
		}
		if err := next.Validate(m.known); err != nil {
			return State{}, err
		}
	}
	now := m.now()
	if err := next.checkHorizon(now); err != nil {
		return State{}, err
	}
	figures, err := m.checkGuard(ctx, &cur, &next, c.Force)
	if err != nil {
		m.auditRefusal(ctx, cur, next, AuditEntry{At: now, Actor: actor, Reason: reason, Figures: figures}, err)
		return State{}, err
	}

	next.Version = cur.Version + 1
	next.UpdatedAt = now
	next.UpdatedBy = actor
	stampDeprecation(&cur, &next, now, m.known)
	entry := AuditEntry{At: now, Actor: actor, Action: ActionSet, From: cur, To: next, Reason: reason, Forced: c.Force, Figures: figures}

	defer m.hooks.deliver() // after the unlock below
	m.mu.Lock()
	defer m.mu.Unlock()
	// The backend re-checks the version atomically: the guard above may have
	// taken a while, and another instance may have written meanwhile.
	if err := m.backend.CompareAndSwap(ctx, cur.Version, next, entry); err != nil {
		return State{}, err
	}
	m.install(next)
	m.log.Info("featureflags: flag state set", "version", next.Version, "by", actor, "forced", c.Force)
	return next.Clone(), nil
}

// auditRefusal writes what the guard refused: To is the state that was asked
// for, at the unchanged version. A failure to write it is logged, not
// returned: the operator must still see the refusal itself.
func (m *Manager) auditRefusal(ctx context.Context, cur, next State, entry AuditEntry, refusal error) {
	next.Version = cur.Version
	next.UpdatedAt = entry.At
	next.UpdatedBy = entry.Actor
	entry.Action = ActionRefused
	entry.From, entry.To = cur, next
	if entry.Reason == "" {
		entry.Reason = "(none given)"
	}
	if errors.Is(refusal, ErrGuardUnavailable) {
		entry.Reason += "; refused: the usage figures could not be read"
	}
	if err := m.backend.AppendAudit(ctx, entry); err != nil {
		m.log.Warn("featureflags: could not audit a refused change", "err", err)
	}
	m.log.Warn("featureflags: change refused by the usage guard", "version", cur.Version, "by", entry.Actor, "err", refusal)
}

// Rollback returns to the state before the current one, exactly, under a new
// version number. It is never guarded: going back must always be possible.
// Successive rollbacks walk further back. ErrNoHistory when there is nothing
// to return to.
func (m *Manager) Rollback(ctx context.Context, actor, reason string) (State, error) {
	actor, reason, err := checkActor(actor, reason)
	if err != nil {
		return State{}, err
	}
	defer m.hooks.deliver() // after the unlock below
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok, err := m.backend.Load(ctx)
	if err != nil {
		return State{}, err
	}
	if !ok {
		return State{}, ErrNoHistory
	}
	hist, err := m.backend.History(ctx, 1)
	if err != nil {
		return State{}, err
	}
	if len(hist) == 0 {
		return State{}, ErrNoHistory
	}
	next := hist[0].Clone()
	if err := next.Validate(nil); err != nil {
		return State{}, fmt.Errorf("featureflags: earlier state version %d cannot be restored: %w", next.Version, err)
	}
	now := m.now()
	next.Version = cur.Version + 1
	next.UpdatedAt = now
	next.UpdatedBy = actor
	entry := AuditEntry{At: now, Actor: actor, Action: ActionRollback, From: cur, To: next, Reason: reason}
	if err := m.backend.CompareAndSwap(ctx, cur.Version, next, entry); err != nil {
		return State{}, err
	}
	m.install(next)
	m.log.Info("featureflags: flag state rolled back", "version", next.Version, "by", actor)
	return next.Clone(), nil
}

// Audit returns up to n audit entries, newest first (n <= 0: all kept).
func (m *Manager) Audit(ctx context.Context, n int) ([]AuditEntry, error) {
	return m.backend.Audit(ctx, n)
}

// History returns up to n states Rollback can return to, newest first.
func (m *Manager) History(ctx context.Context, n int) ([]State, error) {
	return m.backend.History(ctx, n)
}

// checkActor trims and checks who makes a change and why. Both end up in the
// audit log, which operators read in terminals (tokenshift audit) and on the
// dashboard, so control characters (an escape sequence, a carriage return
// that rewrites the line, a newline that forges an entry), Unicode format
// characters (bidirectional overrides) and invalid UTF-8 are refused rather
// than stored.
func checkActor(actor, reason string) (string, string, error) {
	actor, reason = strings.TrimSpace(actor), strings.TrimSpace(reason)
	switch {
	case actor == "":
		return "", "", fmt.Errorf("%w: actor: required, the audit log must say who", ErrInvalidState)
	case len(actor) > maxActorLen:
		return "", "", fmt.Errorf("%w: actor: longer than %d bytes", ErrInvalidState, maxActorLen)
	case len(reason) > maxReasonLen:
		return "", "", fmt.Errorf("%w: reason: longer than %d bytes", ErrInvalidState, maxReasonLen)
	}
	if err := checkPrintable("actor", actor); err != nil {
		return "", "", err
	}
	if err := checkPrintable("reason", reason); err != nil {
		return "", "", err
	}
	return actor, reason, nil
}

// checkPrintable refuses text an audit reader's terminal would not simply
// print (termsafe.Check, the rule every operator-written text follows),
// naming the first offending character and where it is.
func checkPrintable(field, s string) error {
	if err := termsafe.Check(s); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidState, field, err)
	}
	return nil
}

// deprecatesSessions reports whether any client is in a phase whose session
// responses carry deprecation headers.
func (s *State) deprecatesSessions() bool {
	if s.Phase >= PhasePreferJWT {
		return true
	}
	for _, r := range s.Clients {
		if r.Phase >= PhasePreferJWT {
			return true
		}
	}
	return false
}

// stampDeprecation maintains the deprecation dates of next, the state about
// to replace cur (nil when next is the first state), for the Deprecation
// header (RFC 9745), globally and for each client in known or overridden:
//   - a date is set when the phase (the global one, or a client's effective
//     one) enters prefer-jwt or later, and kept while it stays there, so the
//     header keeps naming the day sessions were first announced as going;
//   - it is cleared when the phase goes back below prefer-jwt, so moving
//     forward again later announces the new date, not a stale one;
//   - a date in next that differs from cur's was set on purpose (by the
//     configuration, migration.deprecated_at, or a caller of Apply) and is
//     kept while it applies.
//
// The first state gives every client the global date, so a configured
// migration.deprecated_at keeps the header stable across restarts of an
// instance whose state lives in memory. No date is later than the sunset,
// which RFC 9745 forbids.
func stampDeprecation(cur, next *State, now time.Time, known []string) {
	now = now.Truncate(time.Second)
	var curGlobal *time.Time
	wasGlobal := false
	if cur != nil {
		curGlobal, wasGlobal = cur.DeprecatedAt, cur.Phase >= PhasePreferJWT
	}
	next.DeprecatedAt = deprecationDate(wasGlobal, curGlobal, next.Phase >= PhasePreferJWT, next.DeprecatedAt, now, next.Sunset)

	ids := slices.Clone(known)
	for id := range next.Clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	dates := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		var curDate, nextDate *time.Time
		was := false
		if cur != nil {
			was = cur.EffectivePhase(id) >= PhasePreferJWT
			curDate = cur.DeprecatedAt
			if t, ok := cur.ClientsDeprecatedAt[id]; ok {
				curDate = &t
			}
		}
		if t, ok := next.ClientsDeprecatedAt[id]; ok {
			nextDate = &t
		}
		fallback := now
		if cur == nil && next.DeprecatedAt != nil {
			fallback = *next.DeprecatedAt
		}
		if t := deprecationDate(was, curDate, next.EffectivePhase(id) >= PhasePreferJWT, nextDate, fallback, next.Sunset); t != nil {
			dates[id] = *t
		}
	}
	next.ClientsDeprecatedAt = nil
	if len(dates) > 0 {
		next.ClientsDeprecatedAt = dates
	}
}

// deprecationDate is one date of stampDeprecation: was/is say whether sessions
// were and will be deprecated, curDate and nextDate are the dates in the old
// and new state, fallback is the date of a deprecation that begins now.
func deprecationDate(was bool, curDate *time.Time, is bool, nextDate *time.Time, fallback time.Time, sunset *time.Time) *time.Time {
	var t time.Time
	switch {
	case !is:
		return nil
	case nextDate != nil && (curDate == nil || !nextDate.Equal(*curDate)):
		t = *nextDate
	case was && curDate != nil:
		t = *curDate
	default:
		t = fallback
	}
	if sunset != nil && t.After(*sunset) {
		t = *sunset
	}
	return &t
}
