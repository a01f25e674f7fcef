package featureflags

import (
	"fmt"
	"testing"
	"time"
)

// findUser returns a user id whose bucket under seed satisfies want, so the
// rollout cases below do not depend on hand-picked magic ids.
func findUser(t testing.TB, seed string, want func(bucket uint64) bool) string {
	t.Helper()
	for i := range 1_000_000 {
		id := fmt.Sprintf("user-%d", i)
		if want(Bucket(seed, id)) {
			return id
		}
	}
	t.Fatalf("no user id found for the wanted bucket")
	return ""
}

func TestDecide(t *testing.T) {
	const seed = "s1"
	low := findUser(t, seed, func(b uint64) bool { return b < 50 })               // in at 1 %
	mid := findUser(t, seed, func(b uint64) bool { return b >= 100 && b < 5000 }) // in at 50 %, out at 1 %
	high := findUser(t, seed, func(b uint64) bool { return b >= 5000 })           // out at 50 %, in at 100 %

	dep := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	sunset := time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)
	base := State{
		Version: 3, RolloutSeed: seed, DeprecatedAt: &dep, Sunset: &sunset,
		DocsURL:       "https://docs.example.com/migrate",
		ExemptClients: []string{"kiosk"},
	}
	const (
		wantDep    = "@1772323200"
		wantSunset = "Wed, 30 Sep 2026 00:00:00 GMT"
		wantLink   = `<https://docs.example.com/migrate>; rel="deprecation"; type="text/html"`
	)
	with := func(phase Phase, rollout float64, clients map[string]ClientRule) State {
		s := base.Clone()
		s.Phase, s.Rollout, s.Clients = phase, rollout, clients
		return s
	}
	sessionOnly := Decision{IssueSession: true, AcceptSession: true}
	both := Decision{IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	deprecated := both
	deprecated.Deprecate, deprecated.DeprecationHeader, deprecated.SunsetHeader, deprecated.LinkHeader = true, wantDep, wantSunset, wantLink
	tokensOnly := Decision{IssueTokens: true, AcceptTokens: true}
	retired := Decision{IssueTokens: true, AcceptTokens: true, AllowExchange: true, InRollout: true}
	kept := deprecated // retiring, session kept
	keptExempt := kept
	keptExempt.Exempt = true
	keptExemptIn := keptExempt
	keptExemptIn.InRollout = true

	tests := []struct {
		name   string
		state  State
		client string
		user   string
		phase  Phase
		want   Decision // Phase is filled from the phase field
	}{
		{name: "legacy", state: with(PhaseLegacy, 0, nil), client: "web", user: low, phase: PhaseLegacy, want: sessionOnly},
		{name: "dual", state: with(PhaseDual, 0, nil), client: "web", user: low, phase: PhaseDual, want: both},
		{name: "prefer-jwt sends headers", state: with(PhasePreferJWT, 0, nil), client: "web", user: low, phase: PhasePreferJWT, want: deprecated},
		{name: "jwt-only", state: with(PhaseJWTOnly, 100, nil), client: "web", user: low, phase: PhaseJWTOnly, want: tokensOnly},
		{name: "jwt-only refuses exempt clients too", state: with(PhaseJWTOnly, 0, nil), client: "kiosk", user: high, phase: PhaseJWTOnly,
			want: Decision{IssueTokens: true, AcceptTokens: true, Exempt: true}},

		{name: "retiring at 0% keeps everyone", state: with(PhaseRetiring, 0, nil), client: "web", user: low, phase: PhaseRetiring, want: kept},
		{name: "retiring at 1% retires a low bucket", state: with(PhaseRetiring, 1, nil), client: "web", user: low, phase: PhaseRetiring, want: retired},
		{name: "retiring at 1% keeps a middle bucket", state: with(PhaseRetiring, 1, nil), client: "web", user: mid, phase: PhaseRetiring, want: kept},
		{name: "retiring at 50% retires a middle bucket", state: with(PhaseRetiring, 50, nil), client: "web", user: mid, phase: PhaseRetiring, want: retired},
		{name: "retiring at 50% keeps a high bucket", state: with(PhaseRetiring, 50, nil), client: "web", user: high, phase: PhaseRetiring, want: kept},
		{name: "retiring at 100% retires everyone", state: with(PhaseRetiring, 100, nil), client: "web", user: high, phase: PhaseRetiring, want: retired},
		{name: "retiring exempt client in rollout keeps session", state: with(PhaseRetiring, 100, nil), client: "kiosk", user: low, phase: PhaseRetiring, want: keptExemptIn},
		{name: "retiring exempt client outside rollout", state: with(PhaseRetiring, 0, nil), client: "kiosk", user: low, phase: PhaseRetiring, want: keptExempt},

		{name: "override wins over global", state: with(PhaseDual, 0, map[string]ClientRule{"mobile": {Phase: PhaseJWTOnly}}),
			client: "mobile", user: low, phase: PhaseJWTOnly, want: tokensOnly},
		{name: "other clients keep the global phase", state: with(PhaseDual, 0, map[string]ClientRule{"mobile": {Phase: PhaseJWTOnly}}),
			client: "web", user: low, phase: PhaseDual, want: both},
		{name: "override can lag behind global", state: with(PhaseJWTOnly, 0, map[string]ClientRule{"web": {Phase: PhaseLegacy}}),
			client: "web", user: low, phase: PhaseLegacy, want: sessionOnly},
		{name: "override into retiring uses the rollout", state: with(PhaseDual, 50, map[string]ClientRule{"web": {Phase: PhaseRetiring}}),
			client: "web", user: mid, phase: PhaseRetiring, want: retired},
		{name: "invalid phase fails closed", state: with(Phase(9), 0, nil), client: "web", user: low, phase: 0, want: Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Phase = tt.phase
			// Unprepared (built by hand) and prepared (installed) must agree.
			unprepared := tt.state
			if got := unprepared.Decide(tt.client, tt.user); got != want {
				t.Errorf("unprepared Decide(%q, %q)\n got %+v\nwant %+v", tt.client, tt.user, got, want)
			}
			prepared := tt.state.Clone()
			prepared.prepare()
			if got := prepared.Decide(tt.client, tt.user); got != want {
				t.Errorf("prepared Decide(%q, %q)\n got %+v\nwant %+v", tt.client, tt.user, got, want)
			}
		})
	}
}

func TestDecideHeaders(t *testing.T) {
	updated := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name                     string
		state                    State
		wantDep, wantSun, wantLn string
	}{
		{name: "nothing configured, no update time", state: State{Phase: PhasePreferJWT}},
		{name: "deprecation falls back to the update time", state: State{Phase: PhasePreferJWT, UpdatedAt: updated}, wantDep: "@1767323045"},
		{name: "sunset is an HTTP-date in GMT", state: State{Phase: PhasePreferJWT, UpdatedAt: updated,
			Sunset: ptr(time.Date(2026, 12, 31, 23, 0, 0, 0, time.FixedZone("CET", 3600)))},
			wantDep: "@1767323045", wantSun: "Thu, 31 Dec 2026 22:00:00 GMT"},
		{name: "link", state: State{Phase: PhasePreferJWT, DocsURL: "https://x.test/d"},
			wantLn: `<https://x.test/d>; rel="deprecation"; type="text/html"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.state.Clone()
			s.prepare()
			d := s.Decide("web", "u")
			if !d.Deprecate || d.DeprecationHeader != tt.wantDep || d.SunsetHeader != tt.wantSun || d.LinkHeader != tt.wantLn {
				t.Errorf("got deprecate=%v %q %q %q, want %q %q %q", d.Deprecate, d.DeprecationHeader, d.SunsetHeader, d.LinkHeader, tt.wantDep, tt.wantSun, tt.wantLn)
			}
		})
	}
	t.Run("no headers outside deprecation", func(t *testing.T) {
		s := State{Phase: PhaseDual, UpdatedAt: updated, DocsURL: "https://x.test/d"}
		s.prepare()
		if d := s.Decide("web", "u"); d.Deprecate || d.DeprecationHeader != "" || d.LinkHeader != "" {
			t.Errorf("dual decision carries deprecation: %+v", d)
		}
	})
}

func TestRolloutIsSticky(t *testing.T) {
	const users = 10_000
	at := func(percent float64) map[string]bool {
		s := State{Phase: PhaseRetiring, Rollout: percent, RolloutSeed: "sticky"}
		s.prepare()
		in := make(map[string]bool)
		for i := range users {
			id := fmt.Sprintf("u%d@example.com", i)
			if s.Decide("web", id).InRollout {
				in[id] = true
			}
		}
		return in
	}
	in20, in40, in50 := at(20), at(40), at(50)
	for id := range in20 {
		if !in40[id] {
			t.Fatalf("user %s was in the rollout at 20%% but not at 40%%", id)
		}
	}
	for id := range in40 {
		if !in50[id] {
			t.Fatalf("user %s was in the rollout at 40%% but not at 50%%", id)
		}
	}
	share := float64(len(in50)) / users * 100
	t.Logf("share in at 20%%: %.2f%%, 40%%: %.2f%%, 50%%: %.2f%%", float64(len(in20))/users*100, float64(len(in40))/users*100, share)
	if share < 48 || share > 52 {
		t.Errorf("share in the rollout at 50%% = %.2f%%, want 50±2%%", share)
	}
	if len(in20) == 0 || len(in20) >= len(in40) {
		t.Errorf("rollout did not grow: %d users at 20%%, %d at 40%%", len(in20), len(in40))
	}
}

func TestRolloutLimitRounds(t *testing.T) {
	tests := []struct {
		percent float64
		want    uint64
	}{
		{percent: 0, want: 0}, {percent: 0.01, want: 1}, {percent: 0.29, want: 29}, {percent: 1, want: 100},
		{percent: 33.33, want: 3333}, {percent: 100, want: 10000}, {percent: 150, want: 10000}, {percent: -1, want: 0},
	}
	for _, tt := range tests {
		if got := rolloutLimit(tt.percent); got != tt.want {
			t.Errorf("rolloutLimit(%v) = %d, want %d", tt.percent, got, tt.want)
		}
	}
}

func TestBucketSeparatesSeedAndUser(t *testing.T) {
	if Bucket("ab", "c") == Bucket("a", "bc") && Bucket("ab", "cd") == Bucket("a", "bcd") {
		t.Errorf("seed and user id run together: the hash needs a separator")
	}
	if Bucket("s", "alice") != Bucket("s", "alice") {
		t.Errorf("Bucket is not deterministic")
	}
}

// decideCases are the hot-path situations, one per phase and rollout edge,
// on a realistic state: overrides, an exempt list, a sunset, a docs link and
// per-client deprecation dates (so the per-client lookup is exercised).
func decideCases(tb testing.TB) []struct {
	name, client, user string
	flags              *Flags
	want               Phase
} {
	tb.Helper()
	const seed = "2026-migration"
	in := findUser(tb, seed, func(b uint64) bool { return b < 3750 })   // in a 37.5 % rollout
	out := findUser(tb, seed, func(b uint64) bool { return b >= 3750 }) // outside it
	dep := time.Unix(1_750_000_000, 0).UTC()
	spaDep := dep.Add(72 * time.Hour)
	sunset := time.Unix(1_790_000_000, 0).UTC()
	state := func(global Phase, rollout float64) *Flags {
		s := State{Phase: global, Rollout: rollout, RolloutSeed: seed, Sunset: &sunset,
			Clients:       map[string]ClientRule{"mobile": {Phase: PhaseJWTOnly}, "partner": {Phase: PhaseDual}},
			ExemptClients: []string{"kiosk", "partner"}, DocsURL: "https://docs.example.com/jwt"}
		if global >= PhasePreferJWT {
			s.DeprecatedAt = &dep
			s.ClientsDeprecatedAt = map[string]time.Time{"web": dep, "spa": spaDep, "kiosk": dep, "mobile": dep}
		}
		f, err := NewFlags(s)
		if err != nil {
			tb.Fatal(err)
		}
		return f
	}
	return []struct {
		name, client, user string
		flags              *Flags
		want               Phase
	}{
		{name: "legacy", client: "web", user: in, flags: state(PhaseLegacy, 0), want: PhaseLegacy},
		{name: "dual", client: "web", user: in, flags: state(PhaseDual, 0), want: PhaseDual},
		{name: "prefer-jwt with headers", client: "spa", user: in, flags: state(PhasePreferJWT, 0), want: PhasePreferJWT},
		{name: "retiring 37.5% user in", client: "web", user: in, flags: state(PhaseRetiring, 37.5), want: PhaseRetiring},
		{name: "retiring 37.5% user out (headers)", client: "web", user: out, flags: state(PhaseRetiring, 37.5), want: PhaseRetiring},
		{name: "retiring 0%", client: "web", user: in, flags: state(PhaseRetiring, 0), want: PhaseRetiring},
		{name: "retiring 100%", client: "web", user: out, flags: state(PhaseRetiring, 100), want: PhaseRetiring},
		{name: "retiring exempt client", client: "kiosk", user: in, flags: state(PhaseRetiring, 100), want: PhaseRetiring},
		{name: "jwt-only", client: "web", user: in, flags: state(PhaseJWTOnly, 0), want: PhaseJWTOnly},
		{name: "override jwt-only under dual", client: "mobile", user: in, flags: state(PhaseDual, 0), want: PhaseJWTOnly},
	}
}

func TestDecideAllocatesNothing(t *testing.T) {
	for _, tc := range decideCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if d := tc.flags.Decide(tc.client, tc.user); d.Phase != tc.want {
				t.Fatalf("phase = %v, want %v", d.Phase, tc.want)
			}
			allocs := testing.AllocsPerRun(1000, func() { sink = tc.flags.Decide(tc.client, tc.user) })
			if allocs != 0 {
				t.Errorf("Flags.Decide allocates %v times per call, want 0", allocs)
			}
		})
	}
	// The cases must exercise what they claim: headers, including a
	// per-client date, and both sides of the rollout.
	cases := decideCases(t)
	if d := cases[2].flags.Decide("spa", "u"); d.DeprecationHeader != "@1750259200" || d.SunsetHeader == "" || d.LinkHeader == "" {
		t.Errorf("prefer-jwt case lacks its headers: %+v", d)
	}
	if in, out := cases[3].flags.Decide("web", cases[3].user), cases[4].flags.Decide("web", cases[4].user); in.AcceptSession || !out.AcceptSession || !out.Deprecate {
		t.Errorf("rollout cases do not split: in %+v, out %+v", in, out)
	}
}

func TestZeroFlagsFailsClosed(t *testing.T) {
	var f Flags
	if d := f.Decide("web", "u"); d.AcceptSession || d.AcceptTokens {
		t.Errorf("zero Flags accepts credentials: %+v", d)
	}
}

var sink Decision

// BenchmarkDecide runs every hot-path case. Target: under 100 ns and no
// allocation on each.
func BenchmarkDecide(b *testing.B) {
	for _, tc := range decideCases(b) {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = tc.flags.Decide(tc.client, tc.user)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
