package featureflags

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// SessionShareFunc reports, for clientIDs (nil: every client), how many
// authenticated requests over window used a session and how many there were
// in all. The usage package provides it.
type SessionShareFunc func(ctx context.Context, clientIDs []string, window time.Duration) (GuardFigures, error)

// Guard is the usage check consulted before a change that would refuse
// sessions to more users.
type Guard = SessionShareFunc

// GuardFigures are the numbers a guard decision rests on, returned to the
// operator with a refusal and kept in the audit log.
type GuardFigures struct {
	Window          string   `json:"window"`
	SessionRequests int64    `json:"session_requests"`
	TotalRequests   int64    `json:"total_requests"`
	SessionShare    float64  `json:"session_share"`
	MaxShare        float64  `json:"max_share"`
	Clients         []string `json:"clients"`
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
	if f.Window == "" {
		f.Window = formatWindow(m.window)
	}
	f.MaxShare = m.maxShare
	f.Clients = clients
	if f.SessionShare > m.maxShare && !force {
		return &f, &GuardError{Figures: f}
	}
	return &f, nil
}

// formatWindow writes 24h rather than 24h0m0s, as the usage API does.
func formatWindow(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
