package featureflags

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestManagerSeedsOnce(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			b := k.new(t)
			m1 := newTestManager(t, b, newClock(), nil)
			cur := m1.Flags().Current()
			if cur.Version != 1 || cur.Phase != PhaseDual || cur.UpdatedBy != "config" {
				t.Fatalf("seeded state = %+v, want version 1, dual, by config", cur)
			}
			// A second instance with a different config must adopt what is
			// stored, not overwrite it.
			other := initialState()
			other.Phase = PhaseLegacy
			m2, err := NewManager(ctx, Options{Backend: b, Initial: other, KnownClients: known})
			if err != nil {
				t.Fatal(err)
			}
			if got := m2.Flags().Current(); got.Version != 1 || got.Phase != PhaseDual {
				t.Errorf("second manager installed %+v, want the stored version 1 (dual)", got)
			}
			entries, err := m1.Audit(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Action != ActionInit || entries[0].To.Version != 1 {
				t.Errorf("audit after seeding = %+v, want one init entry", entries)
			}
		})
	}
}

func TestManagerRejectsInvalidInitial(t *testing.T) {
	bad := initialState()
	bad.Clients["tv"] = ClientRule{Phase: PhaseJWTOnly}
	_, err := NewManager(context.Background(), Options{Initial: bad, KnownClients: known})
	if !errors.Is(err, ErrInvalidState) {
		t.Fatalf("NewManager with an unknown client = %v, want ErrInvalidState", err)
	}
}

func TestApplyGuard(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			guard := &fakeGuard{share: 0.05}
			m := newTestManager(t, k.new(t), newClock(), guard.Func)

			toRetiring := change(m, "ops@example.com", "", func(s *State) {
				s.Clients["web"] = ClientRule{Phase: PhaseRetiring}
				s.Rollout = 10
			})
			_, err := m.Apply(ctx, toRetiring)
			var ge *GuardError
			if !errors.As(err, &ge) || !errors.Is(err, ErrGuardRefused) {
				t.Fatalf("Apply into retiring with 5%% sessions = %v, want a *GuardError", err)
			}
			want := GuardFigures{Window: "24h", SessionRequests: 500, TotalRequests: 10_000, SessionShare: 0.05, MaxShare: 0.01, Clients: []string{"web"},
				DataSince: &historyStart, Covered: "24h", Reasons: []string{"session share 5.00% (500 of 10000 requests) is above the maximum 1.00%"}}
			if !reflect.DeepEqual(ge.Figures, want) {
				t.Errorf("figures = %+v, want %+v", ge.Figures, want)
			}
			if v := m.Flags().Current().Version; v != 1 {
				t.Errorf("a refused change was installed: version %d", v)
			}

			forcedNoReason := toRetiring
			forcedNoReason.Force = true
			if _, err := m.Apply(ctx, forcedNoReason); !errors.Is(err, ErrInvalidState) {
				t.Errorf("Force without a reason = %v, want ErrInvalidState", err)
			}

			forced := forcedNoReason
			forced.Reason = "web sessions are bots, ticket OPS-12"
			got, err := m.Apply(ctx, forced)
			if err != nil {
				t.Fatalf("forced Apply: %v", err)
			}
			if got.Version != 2 || got.EffectivePhase("web") != PhaseRetiring {
				t.Errorf("forced change = %+v, want version 2 with web retiring", got)
			}
			if d := m.Flags().Decide("web", "u"); d.Phase != PhaseRetiring {
				t.Errorf("Flags not updated after Apply: %+v", d)
			}
			entries, err := m.Audit(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if e := entries[0]; !e.Forced || e.Reason != forced.Reason || e.Figures == nil || e.Figures.SessionShare != 0.05 || e.From.Version != 1 || e.To.Version != 2 {
				t.Errorf("audit of the forced change = %+v", e)
			}

			// Below the threshold the same kind of move goes through unforced.
			guard.share = 0.001
			next, err := m.Apply(ctx, change(m, "ops@example.com", "mobile is ready", func(s *State) {
				s.Clients["mobile"] = ClientRule{Phase: PhaseJWTOnly}
			}))
			if err != nil {
				t.Fatalf("Apply under the threshold: %v", err)
			}
			if last := guard.clients[len(guard.clients)-1]; !slices.Equal(last, []string{"mobile"}) {
				t.Errorf("guard asked about %v, want [mobile]", last)
			}
			if next.Version != 3 {
				t.Errorf("version = %d, want 3", next.Version)
			}
		})
	}
}

func TestApplyGuardUnavailable(t *testing.T) {
	ctx := context.Background()
	guard := &fakeGuard{err: errors.New("usage store down")}
	m := newTestManager(t, nil, newClock(), guard.Func)
	c := change(m, "ops", "", func(s *State) { s.Phase = PhaseJWTOnly })
	if _, err := m.Apply(ctx, c); !errors.Is(err, ErrGuardUnavailable) {
		t.Fatalf("Apply without figures = %v, want ErrGuardUnavailable", err)
	}
	c.Force, c.Reason = true, "incident 7: usage store down, moving anyway"
	if _, err := m.Apply(ctx, c); err != nil {
		t.Fatalf("forced Apply without figures: %v", err)
	}
	// Moves that refuse nobody never consult the guard.
	calls := guard.calls
	if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { s.Phase = PhaseDual })); err != nil {
		t.Fatalf("going back to dual: %v", err)
	}
	if guard.calls != calls {
		t.Errorf("the guard was consulted for a backward move")
	}
}

func TestGuardedClients(t *testing.T) {
	st := func(phase Phase, rollout float64, seed string, exempt []string, rules map[string]Phase) *State {
		s := &State{Phase: phase, Rollout: rollout, RolloutSeed: seed, ExemptClients: exempt, Clients: map[string]ClientRule{}}
		for id, p := range rules {
			s.Clients[id] = ClientRule{Phase: p}
		}
		return s
	}
	tests := []struct {
		name        string
		cur, next   *State
		known       []string
		wantClients []string
		wantAll     bool
		wantGuarded bool
	}{
		{name: "dual to prefer-jwt is free", cur: st(PhaseDual, 0, "", nil, nil), next: st(PhasePreferJWT, 0, "", nil, nil), known: known},
		{name: "global into retiring guards every client", cur: st(PhaseDual, 0, "", nil, nil), next: st(PhaseRetiring, 5, "", nil, nil), known: known,
			wantClients: []string{"mobile", "spa", "web"}, wantGuarded: true},
		{name: "retiring to jwt-only is guarded", cur: st(PhaseRetiring, 100, "", nil, nil), next: st(PhaseJWTOnly, 100, "", nil, nil), known: known,
			wantClients: []string{"mobile", "spa", "web"}, wantGuarded: true},
		{name: "clients held back by an override are not affected", cur: st(PhaseDual, 0, "", nil, nil), next: st(PhaseJWTOnly, 0, "", nil, map[string]Phase{"web": PhaseDual}), known: known,
			wantClients: []string{"mobile", "spa"}, wantGuarded: true},
		{name: "one override forward", cur: st(PhaseDual, 0, "", nil, nil), next: st(PhaseDual, 0, "", nil, map[string]Phase{"mobile": PhaseJWTOnly}), known: known,
			wantClients: []string{"mobile"}, wantGuarded: true},
		{name: "backward is free", cur: st(PhaseJWTOnly, 0, "", nil, nil), next: st(PhaseRetiring, 50, "", nil, nil), known: known},
		{name: "raising the rollout in retiring", cur: st(PhaseRetiring, 10, "s", nil, map[string]Phase{"mobile": PhaseDual}), next: st(PhaseRetiring, 20, "s", nil, map[string]Phase{"mobile": PhaseDual}), known: known,
			wantClients: []string{"spa", "web"}, wantGuarded: true},
		{name: "raising the rollout skips exempt clients", cur: st(PhaseRetiring, 10, "s", []string{"web"}, nil), next: st(PhaseRetiring, 20, "s", []string{"web"}, nil), known: known,
			wantClients: []string{"mobile", "spa"}, wantGuarded: true},
		{name: "lowering the rollout is free", cur: st(PhaseRetiring, 20, "s", nil, nil), next: st(PhaseRetiring, 10, "s", nil, nil), known: known},
		{name: "raising the rollout outside retiring is free", cur: st(PhaseDual, 10, "s", nil, nil), next: st(PhaseDual, 90, "s", nil, nil), known: known},
		{name: "reseeding in retiring", cur: st(PhaseRetiring, 10, "s", nil, nil), next: st(PhaseRetiring, 10, "t", nil, nil), known: known,
			wantClients: []string{"mobile", "spa", "web"}, wantGuarded: true},
		{name: "losing an exemption in retiring", cur: st(PhaseRetiring, 10, "s", []string{"web"}, nil), next: st(PhaseRetiring, 10, "s", nil, nil), known: known,
			wantClients: []string{"web"}, wantGuarded: true},
		{name: "no registry: a global move counts all traffic", cur: st(PhaseDual, 0, "", nil, nil), next: st(PhaseJWTOnly, 0, "", nil, nil),
			wantAll: true, wantGuarded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clients, all, guarded := guardedClients(tt.cur, tt.next, tt.known)
			if !slices.Equal(clients, tt.wantClients) || all != tt.wantAll || guarded != tt.wantGuarded {
				t.Errorf("guardedClients = %v, all=%v, guarded=%v; want %v, all=%v, guarded=%v",
					clients, all, guarded, tt.wantClients, tt.wantAll, tt.wantGuarded)
			}
		})
	}
}

func TestApplyStaleVersion(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			m := newTestManager(t, k.new(t), newClock(), nil)
			first := change(m, "alice", "", func(s *State) { s.Phase = PhasePreferJWT })
			second := change(m, "bob", "", func(s *State) { s.Phase = PhaseLegacy }) // made from the same version
			if _, err := m.Apply(ctx, first); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Apply(ctx, second); !errors.Is(err, ErrVersionConflict) {
				t.Fatalf("Apply from a stale version = %v, want ErrVersionConflict", err)
			}
			if cur := m.Flags().Current(); cur.Version != 2 || cur.Phase != PhasePreferJWT {
				t.Errorf("state after the refused change = %+v, want alice's version 2", cur)
			}
		})
	}
}

func TestApplyNeedsActor(t *testing.T) {
	m := newTestManager(t, nil, newClock(), nil)
	if _, err := m.Apply(context.Background(), change(m, "  ", "x", func(*State) {})); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Apply without actor = %v, want ErrInvalidState", err)
	}
	if _, err := m.Apply(context.Background(), change(m, "ops", "", func(s *State) { s.Rollout = 300 })); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Apply of an invalid state = %v, want ErrInvalidState", err)
	}
}

func TestRollbackRestoresExactly(t *testing.T) {
	for _, k := range backendKinds() {
		t.Run(k.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			guard := &fakeGuard{share: 0.5}
			m := newTestManager(t, k.new(t), clock, guard.Func)
			v1 := *m.Flags().Current()

			sunset := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
			clock.Advance(time.Hour)
			v2, err := m.Apply(ctx, change(m, "alice", "start retiring web", func(s *State) {
				s.Phase = PhasePreferJWT
				s.Clients["web"] = ClientRule{Phase: PhaseRetiring}
				s.Clients["mobile"] = ClientRule{Phase: PhaseDual}
				s.Rollout = 12.5
				s.RolloutSeed = "wave-2"
				s.ExemptClients = []string{"spa"}
				s.Sunset = &sunset
				s.DocsURL = "https://docs.example.com/jwt"
			}).with(true, "ramp approved in CAB-9"))
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Hour)
			if _, err := m.Apply(ctx, change(m, "bob", "all in", func(s *State) { s.Phase = PhaseJWTOnly; s.Clients = nil }).with(true, "all in")); err != nil {
				t.Fatal(err)
			}

			clock.Advance(time.Hour)
			back, err := m.Rollback(ctx, "carol", "login errors spiking")
			if err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			if back.Version != 4 || back.UpdatedBy != "carol" || !back.UpdatedAt.Equal(clock.Now()) {
				t.Errorf("rollback state version %d by %q at %v, want 4 by carol at %v", back.Version, back.UpdatedBy, back.UpdatedAt, clock.Now())
			}
			if diff := settingsDiff(back, v2); diff != "" {
				t.Errorf("rollback did not restore version 2:%s", diff)
			}
			// Compare every field, not only what EqualSettings looks at.
			a, b := back.Clone(), v2.Clone()
			a.Version, a.UpdatedAt, a.UpdatedBy = 0, time.Time{}, ""
			b.Version, b.UpdatedAt, b.UpdatedBy = 0, time.Time{}, ""
			if !reflect.DeepEqual(a, b) {
				t.Errorf("rollback differs from version 2:\n got %+v\nwant %+v", a, b)
			}
			if cur := m.Flags().Current(); cur.Version != 4 || cur.EffectivePhase("web") != PhaseRetiring {
				t.Errorf("Flags after rollback = %+v", cur)
			}

			// A second rollback goes further back instead of undoing the first.
			first, err := m.Rollback(ctx, "carol", "still bad")
			if err != nil {
				t.Fatal(err)
			}
			if diff := settingsDiff(first, v1); diff != "" || first.Version != 5 {
				t.Errorf("second rollback did not reach version 1 (got version %d):%s", first.Version, diff)
			}
			if _, err := m.Rollback(ctx, "carol", ""); !errors.Is(err, ErrNoHistory) {
				t.Errorf("rollback past the first state = %v, want ErrNoHistory", err)
			}

			entries, err := m.Audit(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				action, actor string
				forced        bool
				from, to      int64
			}
			var got []row
			for _, e := range entries {
				got = append(got, row{e.Action, e.Actor, e.Forced, e.From.Version, e.To.Version})
			}
			want := []row{
				{ActionRollback, "carol", false, 4, 5},
				{ActionRollback, "carol", false, 3, 4},
				{ActionSet, "bob", true, 2, 3},
				{ActionSet, "alice", true, 1, 2},
				{ActionInit, "config", false, 0, 1},
			}
			if !slices.Equal(got, want) {
				t.Errorf("audit = %+v\nwant %+v", got, want)
			}
			if entries[1].Reason != "login errors spiking" || entries[3].Reason != "ramp approved in CAB-9" {
				t.Errorf("audit reasons lost: %q, %q", entries[1].Reason, entries[3].Reason)
			}
		})
	}
}

// with sets Force and Reason, for compact change literals in tests.
func (c Change) with(force bool, reason string) Change {
	c.Force, c.Reason = force, reason
	return c
}

func TestRollbackIsNeverGuarded(t *testing.T) {
	ctx := context.Background()
	guard := &fakeGuard{share: 0.9}
	m := newTestManager(t, nil, newClock(), guard.Func)
	if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { s.Phase = PhaseRetiring; s.Rollout = 50 }).with(true, "pilot")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { s.Phase = PhaseLegacy })); err != nil {
		t.Fatalf("moving back to legacy: %v", err)
	}
	calls := guard.calls
	// Rolling back now moves forward into retiring with 90% session traffic:
	// exactly what Apply would refuse, and what Rollback must not.
	back, err := m.Rollback(ctx, "ops", "legacy was a mistake")
	if err != nil {
		t.Fatalf("Rollback into retiring: %v", err)
	}
	if back.Phase != PhaseRetiring || guard.calls != calls {
		t.Errorf("Rollback gave phase %v after %d guard calls; want retiring and no guard call", back.Phase, guard.calls-calls)
	}
}

func TestDeprecationDateIsStamped(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	m := newTestManager(t, nil, clock, nil)
	clock.Advance(90 * time.Minute)
	entered := clock.Now()
	if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { s.Phase = PhasePreferJWT })); err != nil {
		t.Fatal(err)
	}
	want := "@" + strconv.FormatInt(entered.Unix(), 10)
	if d := m.Flags().Decide("web", "u"); d.DeprecationHeader != want {
		t.Fatalf("Deprecation header = %q, want %q (when prefer-jwt began)", d.DeprecationHeader, want)
	}
	// A later change that omits the date keeps the original one.
	clock.Advance(24 * time.Hour)
	if _, err := m.Apply(ctx, change(m, "ops", "", func(s *State) { s.DeprecatedAt = nil; s.DocsURL = "https://d.test/" })); err != nil {
		t.Fatal(err)
	}
	if d := m.Flags().Decide("web", "u"); d.DeprecationHeader != want || d.LinkHeader == "" {
		t.Errorf("after a later change: Deprecation %q, Link %q; want %q and a link", d.DeprecationHeader, d.LinkHeader, want)
	}
}

func TestReloadStatic(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, nil, newClock(), nil)
	same := initialState()
	if err := m.ReloadStatic(same); err != nil {
		t.Fatal(err)
	}
	if v := m.Flags().Current().Version; v != 1 {
		t.Errorf("reloading unchanged settings bumped the version to %d", v)
	}
	changed := initialState()
	changed.Clients["mobile"] = ClientRule{Phase: PhaseJWTOnly}
	if err := m.ReloadStatic(changed); err != nil {
		t.Fatal(err)
	}
	if cur := m.Flags().Current(); cur.Version != 2 || cur.EffectivePhase("mobile") != PhaseJWTOnly {
		t.Errorf("after reload: %+v", cur)
	}
	entries, _ := m.Audit(ctx, 1)
	if len(entries) != 1 || entries[0].Action != ActionReload || entries[0].Actor != "config" {
		t.Errorf("reload audit = %+v", entries)
	}
	bad := initialState()
	bad.ExemptClients = []string{"tv"}
	if err := m.ReloadStatic(bad); !errors.Is(err, ErrInvalidState) {
		t.Errorf("reloading an invalid file = %v, want ErrInvalidState", err)
	}
	if v := m.Flags().Current().Version; v != 2 {
		t.Errorf("an invalid reload changed the state to version %d", v)
	}
}

func TestReloadStaticRefusedOnRedis(t *testing.T) {
	m := newTestManager(t, backendKinds()[1].new(t), newClock(), nil)
	if err := m.ReloadStatic(initialState()); !errors.Is(err, ErrNotStatic) {
		t.Errorf("ReloadStatic with Redis = %v, want ErrNotStatic", err)
	}
}

// TestAuditTextMustBePrintable: actors and reasons end up in operators'
// terminals (tokenshift audit) and on the dashboard, so text a terminal would
// interpret is refused, by Apply and by Rollback, and nothing changes.
func TestAuditTextMustBePrintable(t *testing.T) {
	ctx := context.Background()
	m := newTestManager(t, NewMemoryBackend(), newClock(), nil)
	if _, err := m.Apply(ctx, change(m, "ops@example.com", "first", func(s *State) { s.Phase = PhasePreferJWT })); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, actor, reason, want string
	}{
		{name: "escape in reason", actor: "ops@example.com", reason: "ok\x1b[2J\x1b[Hall good", want: "U+001B"},
		{name: "bell in reason", actor: "ops@example.com", reason: "ding\a", want: "U+0007"},
		{name: "line forged in reason", actor: "ops@example.com", reason: "fine\r\n2026-01-01 evil set jwt-only", want: "U+000D"},
		{name: "bidi override in reason", actor: "ops@example.com", reason: "abc\u202edef", want: "U+202E"},
		{name: "invalid UTF-8 in reason", actor: "ops@example.com", reason: "a\xffb", want: "not valid UTF-8"},
		{name: "escape in actor", actor: "ops\x1b]0;pwned\a@example.com", reason: "x", want: "actor"},
		{name: "tab in actor", actor: "ops\t@example.com", reason: "x", want: "U+0009"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.Flags().Current().Version
			_, err := m.Apply(ctx, change(m, tc.actor, tc.reason, func(s *State) { s.Rollout = 5 }))
			if !errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v; want ErrInvalidState naming %q", err, tc.want)
			}
			if _, err := m.Rollback(ctx, tc.actor, tc.reason); !errors.Is(err, ErrInvalidState) {
				t.Fatalf("Rollback = %v; want ErrInvalidState", err)
			}
			if v := m.Flags().Current().Version; v != before {
				t.Fatalf("version moved from %d to %d", before, v)
			}
		})
	}
	// Printable non-ASCII text is fine.
	if _, err := m.Apply(ctx, change(m, "opérateur@example.com", "déploiement validé — ticket №42", func(s *State) { s.Rollout = 5 })); err != nil {
		t.Fatalf("printable Unicode refused: %v", err)
	}
}

// TestSunsetBounds: year 0 and dates before 2000 are refused everywhere; a
// date more than ten years ahead is refused on changes; a past date after
// 2000 is allowed (RFC 8594: sessions may end at any time).
func TestSunsetBounds(t *testing.T) {
	ctx := context.Background()
	clock := newClock() // 2026-04-01
	m := newTestManager(t, NewMemoryBackend(), clock, nil)
	at := func(s string) *time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &ts
	}
	for _, tc := range []struct {
		name   string
		sunset *time.Time
		want   string // "" = accepted
	}{
		{name: "year 0", sunset: at("0000-01-01T00:00:00Z"), want: "before 2000-01-01"},
		{name: "1999", sunset: at("1999-12-31T23:59:59Z"), want: "before 2000-01-01"},
		{name: "past but plausible", sunset: at("2025-06-30T00:00:00Z")},
		{name: "next year", sunset: at("2027-06-30T00:00:00Z")},
		{name: "ten years ahead", sunset: at("2036-03-01T00:00:00Z")},
		{name: "eleven years ahead", sunset: at("2037-06-30T00:00:00Z"), want: "more than 10 years ahead"},
		{name: "year 9999", sunset: at("9999-12-31T00:00:00Z"), want: "more than 10 years ahead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Apply(ctx, change(m, "ops@example.com", "sunset", func(s *State) { s.Sunset = tc.sunset }))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Apply = %v; want accepted", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Apply = %v; want ErrInvalidState saying %q", err, tc.want)
			}
		})
	}
	init := initialState()
	init.Sunset = at("2099-01-01T00:00:00Z")
	if _, err := NewManager(ctx, Options{Initial: init, KnownClients: known, Clock: clock.Now}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("NewManager with a sunset in 2099 = %v; want ErrInvalidState", err)
	}
}
