package featureflags

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// SessionShareFunc reports, for clientIDs (nil: every client), how many
// authenticated requests over window used a session, how many there were in
// all, and since when the usage data goes back (DataSince, DataLostAt). The
// usage package provides it. The Manager fills Window, MaxShare, Clients,
// Covered and Reasons itself.
type SessionShareFunc func(ctx context.Context, clientIDs []string, window time.Duration) (GuardFigures, error)

// Guard is the usage check consulted before a change that would refuse
// sessions to more users.
type Guard = SessionShareFunc

// Defaults of the guard's Options.
const (
	// DefaultGuardMaxShare is the usual GuardMaxShare (1 %). It is not
	// applied to a zero GuardMaxShare, which means "no session at all".
	DefaultGuardMaxShare = 0.01
	// DefaultGuardWindow is the GuardWindow used when it is zero.
	DefaultGuardWindow = 24 * time.Hour
)

// GuardFigures are the numbers a guard decision rests on, returned to the
// operator with a refusal and kept in the audit log.
type GuardFigures struct {
	Window string `json:"window"`
	// SessionRequests counts the affected clients' requests that came with
	// a session; TotalRequests all of their requests. The usage package
	// counts sessions already refused by the phase (RetiredRequests) in
	// both: a client still sending them has not moved.
	SessionRequests int64    `json:"session_requests"`
	TotalRequests   int64    `json:"total_requests"`
	RetiredRequests int64    `json:"retired_requests"`
	SessionShare    float64  `json:"session_share"`
	MaxShare        float64  `json:"max_share"`
	Clients         []string `json:"clients"`
	// DataSince is when the usage data starts. nil means none was ever
	// recorded. A provider must set it: a guard that cannot tell how much of
	// the window it saw refuses, as it does for data that starts late.
	DataSince *time.Time `json:"data_since"`
	// DataLostAt is the last time the usage store was found to have lost
	// data it had acknowledged (Redis restarted empty or from an older
	// snapshot); nil when never.
	DataLostAt *time.Time `json:"data_lost_at,omitempty"`
	// Covered is how much of the window the data covers ("24h" when all of
	// it, "3h12m" for a deployment three hours old).
	Covered string `json:"covered"`
	// Reasons say, one line each, why the guard refuses; empty when the
	// figures allow the change.
	Reasons []string `json:"reasons"`
}

// judge fills Covered and Reasons: the guard refuses when the share is above
// max, when the window holds no traffic of the affected clients (no evidence
// either way), and when the data does not reach back to the start of the
// window (a fresh deployment, or Redis restarted empty, has not seen the
// clients that use sessions once a day).
func (f *GuardFigures) judge(now time.Time, window time.Duration) {
	start := now.Add(-window)
	f.Reasons = []string{}
	covered := window
	switch {
	case f.DataSince == nil:
		covered = 0
		f.Reasons = append(f.Reasons, fmt.Sprintf("no usage data has been recorded yet: the %s window is not observed", f.Window))
	case f.DataSince.After(start):
		covered = max(now.Sub(*f.DataSince), 0)
		f.Reasons = append(f.Reasons, fmt.Sprintf("usage data only covers %s of the %s window (it starts at %s): earlier session use is unknown",
			formatWindow(covered.Truncate(time.Minute)), f.Window, f.DataSince.UTC().Format(time.RFC3339)))
	}
	if f.DataLostAt != nil && f.DataLostAt.After(start) {
		covered = min(covered, max(now.Sub(*f.DataLostAt), 0))
		f.Reasons = append(f.Reasons, fmt.Sprintf("the usage store lost data inside the %s window (noticed at %s): counts before then are incomplete",
			f.Window, f.DataLostAt.UTC().Format(time.RFC3339)))
	}
	f.Covered = formatWindow(covered.Truncate(time.Minute))
	if f.TotalRequests == 0 {
		f.Reasons = append(f.Reasons, fmt.Sprintf("the affected clients sent no accepted request in the %s window: there is no evidence they stopped using sessions", f.Window))
	}
	if f.SessionShare > f.MaxShare {
		f.Reasons = append(f.Reasons, fmt.Sprintf("session share %.2f%% (%d of %d requests) is above the maximum %.2f%%",
			f.SessionShare*100, f.SessionRequests, f.TotalRequests, f.MaxShare*100))
	}
}

// guardedClients lists the clients for which moving from cur to next would
// refuse sessions to users who could use them before: a client entering
// retiring or jwt-only from a lower phase, or staying in retiring while the
// rollout grows, is reseeded, or loses its exemption. all is true when the
// global phase moves and there is no client registry to enumerate, so every
// client must be counted. guarded reports whether the guard applies at all.
func guardedClients(cur, next *State, known []string) (clients []string, all, guarded bool) {
	universe := slices.Clone(known)
	for id := range cur.Clients {
		universe = append(universe, id)
	}
	for id := range next.Clients {
		universe = append(universe, id)
	}
	universe = append(universe, cur.ExemptClients...)
	universe = append(universe, next.ExemptClients...)
	slices.Sort(universe)
	universe = slices.Compact(universe)

	for _, id := range universe {
		if sessionsShrink(cur.EffectivePhase(id), next.EffectivePhase(id),
			slices.Contains(cur.ExemptClients, id), slices.Contains(next.ExemptClients, id), cur, next) {
			clients = append(clients, id)
		}
	}
	if len(known) == 0 && sessionsShrink(cur.Phase, next.Phase, false, false, cur, next) {
		return nil, true, true
	}
	return clients, false, len(clients) > 0
}

func sessionsShrink(from, to Phase, wasExempt, isExempt bool, cur, next *State) bool {
	if to >= PhaseRetiring && to > from {
		return true
	}
	if from != PhaseRetiring || to != PhaseRetiring || isExempt || next.Rollout <= 0 {
		return false
	}
	return next.Rollout > cur.Rollout || next.RolloutSeed != cur.RolloutSeed || wasExempt
}

// checkGuard consults the guard for a change from cur to next. It returns the
// figures it read (nil when the guard did not apply) and a *GuardError when
// they forbid the change and force is false.
func (m *Manager) checkGuard(ctx context.Context, cur, next *State, force bool) (*GuardFigures, error) {
	if m.guard == nil {
		return nil, nil
	}
	clients, _, guarded := guardedClients(cur, next, m.known)
	if !guarded {
		return nil, nil
	}
	f, err := m.guard(ctx, clients, m.window)
	if err != nil {
		if force {
			m.log.Warn("featureflags: usage guard unavailable; forced change goes ahead", "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("%w: %w", ErrGuardUnavailable, err)
	}
	f.Window = formatWindow(m.window)
	f.MaxShare = m.maxShare
	f.Clients = clients
	if f.TotalRequests > 0 {
		f.SessionShare = float64(f.SessionRequests) / float64(f.TotalRequests)
	}
	f.judge(m.clock(), m.window)
	if len(f.Reasons) > 0 && !force {
		return &f, &GuardError{Figures: f}
	}
	return &f, nil
}

// formatWindow writes 24h rather than 24h0m0s, as the usage API does.
func formatWindow(d time.Duration) string {
	switch {
	case d == 0:
		return "0m"
	case d%time.Hour != 0 && d > time.Hour && d%time.Minute == 0:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
