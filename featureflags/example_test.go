package featureflags_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
)

func ExampleState_Decide() {
	sunset := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	deprecated := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s := featureflags.State{
		Phase:        featureflags.PhasePreferJWT,
		Clients:      map[string]featureflags.ClientRule{"mobile": {Phase: featureflags.PhaseJWTOnly}},
		Sunset:       &sunset,
		DeprecatedAt: &deprecated,
		DocsURL:      "https://docs.example.com/jwt",
	}

	web := s.Decide("web", "alice")
	fmt.Println(web.Phase, "session:", web.AcceptSession, "tokens:", web.AcceptTokens)
	fmt.Println("Deprecation:", web.DeprecationHeader)
	fmt.Println("Sunset:", web.SunsetHeader)
	fmt.Println("Link:", web.LinkHeader)

	mobile := s.Decide("mobile", "alice")
	fmt.Println(mobile.Phase, "session:", mobile.AcceptSession, "tokens:", mobile.AcceptTokens)
	// Output:
	// prefer-jwt session: true tokens: true
	// Deprecation: @1780272000
	// Sunset: Thu, 31 Dec 2026 00:00:00 GMT
	// Link: <https://docs.example.com/jwt>; rel="deprecation"; type="text/html"
	// jwt-only session: false tokens: true
}

func ExampleState_Decide_rollout() {
	s := featureflags.State{Phase: featureflags.PhaseRetiring, Rollout: 30, RolloutSeed: "wave-1", ExemptClients: []string{"kiosk"}}
	in := 0
	for i := range 1000 {
		if !s.Decide("web", fmt.Sprintf("user-%d", i)).AcceptSession {
			in++
		}
	}
	fmt.Printf("about 30%% of users lose sessions: %v\n", in > 250 && in < 350)
	fmt.Println("exempt client keeps them:", s.Decide("kiosk", "user-1").AcceptSession)
	// Output:
	// about 30% of users lose sessions: true
	// exempt client keeps them: true
}

func ExampleManager_Apply() {
	ctx := context.Background()
	usage := func(ctx context.Context, clients []string, window time.Duration) (featureflags.GuardFigures, error) {
		// In the service this reads the usage counters; here 4% of the
		// requests of the affected clients still use sessions, over data
		// that goes back a week (the guard refuses to judge a window its
		// data does not cover).
		since := time.Date(2026, 3, 25, 0, 0, 0, 0, time.UTC)
		return featureflags.GuardFigures{SessionRequests: 40, TotalRequests: 1000, DataSince: &since}, nil
	}
	m, err := featureflags.NewManager(ctx, featureflags.Options{
		Initial:       featureflags.State{Phase: featureflags.PhaseDual},
		KnownClients:  []string{"web", "mobile"},
		Guard:         usage,
		GuardMaxShare: featureflags.DefaultGuardMaxShare,
		Clock:         func() time.Time { return time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	cur := m.Flags().Current()
	next := cur.Clone()
	next.Clients["mobile"] = featureflags.ClientRule{Phase: featureflags.PhaseJWTOnly}
	c := featureflags.Change{Expect: cur.Version, Next: next, Actor: "ops@example.com"}

	_, err = m.Apply(ctx, c)
	var refused *featureflags.GuardError
	if errors.As(err, &refused) {
		fmt.Printf("refused: %.0f%% sessions on %v, max %.0f%%\n",
			refused.Figures.SessionShare*100, refused.Figures.Clients, refused.Figures.MaxShare*100)
	}

	c.Force, c.Reason = true, "remaining sessions are a test rig"
	applied, err := m.Apply(ctx, c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version", applied.Version, "mobile:", m.Flags().Decide("mobile", "alice").Phase)

	// Someone else working from the old version is stopped.
	_, err = m.Apply(ctx, featureflags.Change{Expect: cur.Version, Next: cur.Clone(), Actor: "bob"})
	fmt.Println(errors.Is(err, featureflags.ErrVersionConflict))
	// Output:
	// refused: 4% sessions on [mobile], max 1%
	// version 2 mobile: jwt-only
	// true
}

func ExampleManager_Rollback() {
	ctx := context.Background()
	m, err := featureflags.NewManager(ctx, featureflags.Options{
		Backend:      featureflags.NewMemoryBackend(),
		Initial:      featureflags.State{Phase: featureflags.PhaseDual},
		KnownClients: []string{"web"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	cur := m.Flags().Current()
	next := cur.Clone()
	next.Phase = featureflags.PhaseRetiring
	next.Rollout = 5
	if _, err := m.Apply(ctx, featureflags.Change{Expect: cur.Version, Next: next, Actor: "ops", Reason: "first wave"}); err != nil {
		fmt.Println(err)
		return
	}

	back, err := m.Rollback(ctx, "ops", "support tickets")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("version", back.Version, "phase", back.Phase)

	entries, _ := m.Audit(ctx, 0)
	for _, e := range entries {
		fmt.Println(e.Action, e.From.Version, "->", e.To.Version, e.Reason)
	}
	// Output:
	// version 3 phase dual
	// rollback 2 -> 3 support tickets
	// set 1 -> 2 first wave
	// init 0 -> 1 seeded from configuration
}

func ExampleManager_ReloadStatic() {
	m, err := featureflags.NewManager(context.Background(), featureflags.Options{
		Initial: featureflags.State{Phase: featureflags.PhaseDual}, // from the config file
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The config file changed: the binary hands the new settings over.
	if err := m.ReloadStatic(featureflags.State{Phase: featureflags.PhasePreferJWT}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Flags().Current().Version, m.Flags().Decide("web", "alice").Phase)
	// Output:
	// 2 prefer-jwt
}

// A partial update names the version it was read at and edits the stored
// state: fields it leaves alone keep the stored values, even when this
// instance's snapshot has not caught up with another instance's change yet.
func ExampleChange_edit() {
	ctx := context.Background()
	m, err := featureflags.NewManager(ctx, featureflags.Options{
		Initial:      featureflags.State{Phase: featureflags.PhaseDual},
		KnownClients: []string{"web", "kiosk"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	read := m.Flags().Current().Version // what the operator saw
	st, err := m.Apply(ctx, featureflags.Change{
		Expect: read,
		Actor:  "ops@example.com",
		Reason: "announce the sunset",
		Edit: func(s *featureflags.State) error {
			s.Phase = featureflags.PhasePreferJWT
			s.ExemptClients = append(s.ExemptClients, "kiosk")
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.Version, st.Phase, st.ExemptClients)

	// The same edit again, from the version read before: refused.
	_, err = m.Apply(ctx, featureflags.Change{Expect: read, Actor: "bob", Edit: func(*featureflags.State) error { return nil }})
	var conflict *featureflags.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Println("conflict: current version is", conflict.Current)
	}
	// Output:
	// 2 prefer-jwt [kiosk]
	// conflict: current version is 2
}

func ExampleManager_OnChange() {
	ctx := context.Background()
	m, err := featureflags.NewManager(ctx, featureflags.Options{
		Initial:      featureflags.State{Phase: featureflags.PhaseDual},
		KnownClients: []string{"web", "mobile"},
		Clock:        func() time.Time { return time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Keep something derived from the state in step, e.g. a metrics gauge:
	// start from the loaded state, then follow every change, whether it is
	// made here or, with a shared backend, seen from another instance.
	gauge := func(s featureflags.State) { fmt.Println("gauge: phase", s.Phase, "version", s.Version) }
	stop := m.OnChange(func(old, new featureflags.State) {
		fmt.Println("changed from", old.Phase, "to", new.Phase, "by", new.UpdatedBy)
		gauge(new)
	})
	defer stop()
	gauge(*m.Flags().Current())

	cur := m.Flags().Current()
	next := cur.Clone()
	next.Phase = featureflags.PhasePreferJWT
	if _, err := m.Apply(ctx, featureflags.Change{Expect: cur.Version, Next: next, Actor: "ops@example.com"}); err != nil {
		fmt.Println(err)
	}
	// A change that fails changes nothing and calls nothing.
	if _, err := m.Apply(ctx, featureflags.Change{Expect: cur.Version, Next: next, Actor: "ops@example.com"}); err != nil {
		fmt.Println("refused:", errors.Is(err, featureflags.ErrVersionConflict))
	}
	if _, err := m.Rollback(ctx, "ops@example.com", "too early"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// gauge: phase dual version 1
	// changed from dual to prefer-jwt by ops@example.com
	// gauge: phase prefer-jwt version 2
	// refused: true
	// changed from prefer-jwt to dual by ops@example.com
	// gauge: phase dual version 3
}
