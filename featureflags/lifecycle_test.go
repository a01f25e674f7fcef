package featureflags

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func depHeader(t time.Time) string { return "@" + strconv.FormatInt(t.Unix(), 10) }

// TestDeprecationDateLifecycle walks one deployment through the phases and
// checks the Deprecation date each client announces at every step.
func TestDeprecationDateLifecycle(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			m := newTestManager(t, k.new(t), clock, nil)
			apply := func(edit func(s *State)) State {
				t.Helper()
				clock.Advance(time.Hour)
				st, err := m.Apply(ctx, change(m, "ops", "", edit))
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			header := func(client string) string {
				t.Helper()
				return m.Flags().Decide(client, "u").DeprecationHeader
			}

			if st := m.Flags().Current(); st.DeprecatedAt != nil || st.ClientsDeprecatedAt != nil {
				t.Fatalf("dual carries deprecation dates: %v %v", st.DeprecatedAt, st.ClientsDeprecatedAt)
			}

			// mobile alone enters prefer-jwt: its own date, nobody else's.
			apply(func(s *State) { s.Clients["mobile"] = ClientRule{Phase: PhasePreferJWT} })
			mobileSince := clock.Now()
			if got := header("mobile"); got != depHeader(mobileSince) {
				t.Errorf("mobile Deprecation = %q, want %q", got, depHeader(mobileSince))
			}
			if st := m.Flags().Current(); st.DeprecatedAt != nil || len(st.ClientsDeprecatedAt) != 1 {
				t.Errorf("only mobile should carry a date: global %v, clients %v", st.DeprecatedAt, st.ClientsDeprecatedAt)
			}

			// Everyone follows a day later; mobile keeps its earlier date.
			clock.Advance(24 * time.Hour)
			apply(func(s *State) { s.Phase = PhasePreferJWT })
			globalSince := clock.Now()
			if got := header("web"); got != depHeader(globalSince) {
				t.Errorf("web Deprecation = %q, want %q (when the global phase moved)", got, depHeader(globalSince))
			}
			if got := header("mobile"); got != depHeader(mobileSince) {
				t.Errorf("mobile Deprecation = %q, want its own earlier %q", got, depHeader(mobileSince))
			}

			// Dropping mobile's override keeps it deprecated all along: same date.
			apply(func(s *State) { delete(s.Clients, "mobile") })
			if got := header("mobile"); got != depHeader(mobileSince) {
				t.Errorf("mobile after inherit = %q, want still %q", got, depHeader(mobileSince))
			}

			// Unrelated changes keep every date, even one that omits it.
			apply(func(s *State) { s.DeprecatedAt = nil; s.ClientsDeprecatedAt = nil; s.DocsURL = "https://d.test/" })
			if got := header("web"); got != depHeader(globalSince) {
				t.Errorf("web after an unrelated change = %q, want %q", got, depHeader(globalSince))
			}

			// Back to dual clears every date...
			apply(func(s *State) { s.Phase = PhaseDual })
			if st := m.Flags().Current(); st.DeprecatedAt != nil || st.ClientsDeprecatedAt != nil {
				t.Fatalf("dual again still carries dates: %v %v", st.DeprecatedAt, st.ClientsDeprecatedAt)
			}
			// ...so going forward again announces the new date, not the old one.
			apply(func(s *State) { s.Phase = PhaseRetiring })
			again := clock.Now()
			for _, c := range known {
				if got := header(c); got != depHeader(again) {
					t.Errorf("%s Deprecation after re-entering = %q, want %q", c, got, depHeader(again))
				}
			}

			// A sunset before the moment of entering pulls the date back to
			// it (RFC 9745 §3: deprecation is never after the sunset).
			apply(func(s *State) { s.Phase = PhaseDual })
			sunset := clock.Now().Add(30 * time.Minute)
			apply(func(s *State) { s.Sunset = &sunset })
			apply(func(s *State) { s.Phase = PhasePreferJWT }) // an hour later
			if got := header("web"); got != depHeader(sunset) {
				t.Errorf("Deprecation after entering past the sunset = %q, want %q", got, depHeader(sunset))
			}
			// Validation names the problem when a sunset moves before the date.
			if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { early := sunset.Add(-time.Hour); s.Sunset = &early })); !errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), "before deprecated_at") {
				t.Errorf("sunset before the deprecation date = %v, want ErrInvalidState naming deprecated_at", err)
			}

			// A date set on purpose is kept.
			chosen := time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)
			apply(func(s *State) { s.DeprecatedAt = &chosen; s.ClientsDeprecatedAt = nil })
			if got := header("other-client"); got != depHeader(chosen) {
				t.Errorf("an unregistered client's Deprecation = %q, want the chosen global %q", got, depHeader(chosen))
			}
		})
	}
}

// TestDeprecationDateStableAcrossRestarts: with the state in memory every
// start seeds it again; a configured date must come out the same each time.
func TestDeprecationDateStableAcrossRestarts(t *testing.T) {
	configured := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	initial := initialState()
	initial.Phase = PhasePreferJWT
	initial.Clients["mobile"] = ClientRule{Phase: PhaseJWTOnly}
	initial.Clients["spa"] = ClientRule{Phase: PhaseRetiring}
	initial.DeprecatedAt = &configured

	var headers []string
	for restart := range 3 {
		clock := newClock()
		clock.Advance(time.Duration(restart) * 37 * time.Hour)
		m, err := NewManager(context.Background(), Options{Initial: initial, KnownClients: known, Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		h := m.Flags().Decide("web", "u").DeprecationHeader + " " + m.Flags().Decide("spa", "u").DeprecationHeader
		headers = append(headers, h)
	}
	want := depHeader(configured) + " " + depHeader(configured)
	for i, h := range headers {
		if h != want {
			t.Errorf("start %d: Deprecation headers %q, want %q", i, h, want)
		}
	}

	// Without a configured date the seed stamps the start time: documented,
	// and the reason migration.deprecated_at exists.
	clock := newClock()
	initial.DeprecatedAt = nil
	m, err := NewManager(context.Background(), Options{Initial: initial, KnownClients: known, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Flags().Decide("web", "u").DeprecationHeader; got != depHeader(clock.Now()) {
		t.Errorf("unconfigured date = %q, want the start time %q", got, depHeader(clock.Now()))
	}
}

// TestApplyEditUsesStoredVersion: an instance whose snapshot lags behind
// (its watcher has not seen another instance's change yet) must not build a
// partial update from its own copy, or the other change would be reverted.
func TestApplyEditUsesStoredVersion(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			b := k.new(t)
			a := newTestManager(t, b, newClock(), nil)
			lagging := newTestManager(t, b, newClock(), nil) // never Run: stays at version 1

			v2, err := a.Apply(ctx, change(a, "alice", "exempt spa", func(s *State) {
				s.ExemptClients = []string{"spa"}
				s.Rollout = 30
			}))
			if err != nil {
				t.Fatal(err)
			}
			if lagging.Flags().Current().Version != 1 {
				t.Fatal("the lagging instance should still be at version 1")
			}

			// Bob read version 2 elsewhere and changes only the phase.
			got, err := lagging.Apply(ctx, Change{Expect: v2.Version, Actor: "bob", Edit: func(s *State) error {
				s.Phase = PhasePreferJWT
				return nil
			}})
			if err != nil {
				t.Fatalf("Apply with Edit: %v", err)
			}
			if got.Version != 3 || got.Phase != PhasePreferJWT || !reflect.DeepEqual(got.ExemptClients, []string{"spa"}) || got.Rollout != 30 {
				t.Errorf("bob's change lost alice's fields: %+v", got)
			}

			// An Edit from a stale version is refused with the current one.
			_, err = lagging.Apply(ctx, Change{Expect: v2.Version, Actor: "carol", Edit: func(s *State) error { s.Phase = PhaseLegacy; return nil }})
			var vc *VersionConflictError
			if !errors.As(err, &vc) || !errors.Is(err, ErrVersionConflict) || vc.Expected != 2 || vc.Current != 3 {
				t.Errorf("stale Edit = %v, want a VersionConflictError 2 → 3", err)
			}

			// Edit's own error and an invalid result change nothing.
			boom := errors.New("bad request")
			if _, err := a.Apply(ctx, Change{Expect: 3, Actor: "dave", Edit: func(*State) error { return boom }}); !errors.Is(err, boom) {
				t.Errorf("Edit error = %v, want it returned", err)
			}
			if _, err := a.Apply(ctx, Change{Expect: 3, Actor: "dave", Edit: func(s *State) error { s.Rollout = -1; return nil }}); !errors.Is(err, ErrInvalidState) {
				t.Errorf("invalid edit = %v, want ErrInvalidState", err)
			}
			if st, _, _ := b.Load(ctx); st.Version != 3 {
				t.Errorf("stored version = %d after refused edits, want 3", st.Version)
			}
		})
	}
}

// TestGuardRefusalIsAudited: the audit log holds the refusal with its
// figures, the forced change and the rollback, in that order.
func TestGuardRefusalIsAudited(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			guard := &fakeGuard{share: 0.2}
			m := newTestManager(t, k.new(t), newClock(), guard.Func)
			c := change(m, "ops@example.com", "web is ready?", func(s *State) { s.Clients["web"] = ClientRule{Phase: PhaseJWTOnly} })
			if _, err := m.Apply(ctx, c); !errors.Is(err, ErrGuardRefused) {
				t.Fatalf("Apply = %v, want a guard refusal", err)
			}
			if _, err := m.Apply(ctx, c.with(true, "bots only, OPS-1")); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Rollback(ctx, "ops@example.com", "too early"); err != nil {
				t.Fatal(err)
			}
			guard.err = errors.New("usage store down")
			if _, err := m.Apply(ctx, change(m, "ops@example.com", "", func(s *State) { s.Phase = PhaseJWTOnly })); !errors.Is(err, ErrGuardUnavailable) {
				t.Fatalf("Apply without figures = %v", err)
			}

			entries, err := m.Audit(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range entries {
				actions = append(actions, e.Action)
			}
			if want := []string{ActionRefused, ActionRollback, ActionSet, ActionRefused, ActionInit}; !reflect.DeepEqual(actions, want) {
				t.Fatalf("audit actions = %v, want %v", actions, want)
			}
			refused := entries[3]
			if refused.Figures == nil || refused.Figures.SessionShare != 0.2 || refused.Figures.MaxShare != 0.01 || !reflect.DeepEqual(refused.Figures.Clients, []string{"web"}) {
				t.Errorf("refusal figures = %+v", refused.Figures)
			}
			if refused.From.Version != 1 || refused.To.Version != 1 || refused.To.EffectivePhase("web") != PhaseJWTOnly || refused.Forced || refused.Reason != "web is ready?" {
				t.Errorf("refusal entry = %+v", refused)
			}
			if forced := entries[2]; !forced.Forced || forced.Figures == nil || forced.Figures.SessionShare != 0.2 {
				t.Errorf("forced entry = %+v", forced)
			}
			if un := entries[0]; un.Figures != nil || !strings.Contains(un.Reason, "could not be read") {
				t.Errorf("refusal without figures = %+v", un)
			}
			if v := m.Flags().Current().Version; v != 3 {
				t.Errorf("refusals changed the version to %d", v)
			}
		})
	}
}

func TestSunsetIsAlwaysInJSON(t *testing.T) {
	s := initialState()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if v, ok := m["sunset"]; !ok || v != nil {
		t.Errorf("sunset in %s = %v (present %v), want null", raw, v, ok)
	}
}
