package featureflags

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// instance is one running Manager, as one tokenshift process would have.
type instance struct {
	m *Manager
}

func startInstance(t *testing.T, srv *redistest.Server, opts RedisOptions) *instance {
	t.Helper()
	b := NewRedisBackend(newRedisClient(t, srv), opts)
	m, err := NewManager(context.Background(), Options{Backend: b, Initial: initialState(), KnownClients: known})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &instance{m: m}
}

// waitVersion polls the instance's snapshot until it reaches version or the
// deadline passes, and returns how long it took.
func waitVersion(t *testing.T, in *instance, version int64, deadline time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < deadline {
		if in.m.Flags().Current().Version == version {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("version %d not visible after %v (still %d)", version, deadline, in.m.Flags().Current().Version)
	return 0
}

func TestTwoInstancesSeeChangesWithinASecond(t *testing.T) {
	srv := redistest.Start(t)
	a := startInstance(t, srv, RedisOptions{})
	b := startInstance(t, srv, RedisOptions{})
	time.Sleep(50 * time.Millisecond) // let b subscribe

	next, err := a.m.Apply(context.Background(), change(a.m, "ops", "mobile to jwt-only", func(s *State) {
		s.Clients["mobile"] = ClientRule{Phase: PhaseJWTOnly}
	}))
	applied := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	took := waitVersion(t, b, next.Version, 3*time.Second)
	t.Logf("change visible on the other instance after %v", time.Since(applied).Round(time.Microsecond))
	if took >= time.Second {
		t.Errorf("propagation took %v, want < 1s", took)
	}
	if d := b.m.Flags().Decide("mobile", "u"); d.Phase != PhaseJWTOnly || d.AcceptSession {
		t.Errorf("other instance decides %+v after the change", d)
	}

	// b's operator worked from the version before a's change: refused.
	stale := Change{Expect: next.Version - 1, Next: initialState(), Actor: "bob", Reason: "revert"}
	stale.Next.Phase = PhaseLegacy
	if _, err := b.m.Apply(context.Background(), stale); !errors.Is(err, ErrVersionConflict) {
		t.Errorf("stale change on the other instance = %v, want ErrVersionConflict", err)
	}
}

func TestRacingChangesOneWins(t *testing.T) {
	srv := redistest.Start(t)
	a := startInstance(t, srv, RedisOptions{})
	b := startInstance(t, srv, RedisOptions{})
	base := a.m.Flags().Current().Version

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := initialState()
			next.Phase = []Phase{PhaseLegacy, PhasePreferJWT}[i]
			_, errs[i] = in.m.Apply(context.Background(), Change{Expect: base, Next: next, Actor: "op" + string(rune('a'+i))})
		}()
	}
	wg.Wait()
	ok, conflicts := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrVersionConflict):
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 || conflicts != 1 {
		t.Fatalf("racing changes from version %d: %d applied, %d conflicts; want exactly one of each (%v)", base, ok, conflicts, errs)
	}
	entries, err := a.m.Audit(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("audit holds %d entries, want init + the one winner", len(entries))
	}
}

func TestPollFallbackWhenAnnouncementsAreLost(t *testing.T) {
	srv := redistest.Start(t)
	// The writer never announces, so the reader only learns by re-reading.
	writer := startInstance(t, srv, RedisOptions{DisablePublish: true})
	reader := startInstance(t, srv, RedisOptions{PollInterval: 200 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)

	next, err := writer.m.Apply(context.Background(), change(writer.m, "ops", "", func(s *State) { s.Phase = PhasePreferJWT }))
	if err != nil {
		t.Fatal(err)
	}
	took := waitVersion(t, reader, next.Version, 2*time.Second)
	t.Logf("without pub/sub the change arrived by polling after %v", took)
	if took > time.Second {
		t.Errorf("poll fallback took %v with a 200ms interval", took)
	}
}

func TestSubscriptionKilledStillPropagates(t *testing.T) {
	srv := redistest.Start(t)
	writer := startInstance(t, srv, RedisOptions{})
	reader := startInstance(t, srv, RedisOptions{}) // default 5s poll: recovery must come from re-subscribing
	time.Sleep(50 * time.Millisecond)

	admin := newRedisClient(t, srv)
	if n, err := admin.ClientKillByFilter(context.Background(), "TYPE", "pubsub").Result(); err != nil || n == 0 {
		t.Fatalf("killing the pub/sub connections: n=%d err=%v", n, err)
	}
	next, err := writer.m.Apply(context.Background(), change(writer.m, "ops", "", func(s *State) { s.Phase = PhasePreferJWT }))
	if err != nil {
		t.Fatal(err)
	}
	took := waitVersion(t, reader, next.Version, 3*time.Second)
	t.Logf("after the subscription was killed the change arrived in %v", took)
	if took >= time.Second {
		t.Errorf("propagation after a killed subscription took %v, want < 1s", took)
	}
}

func TestLostStateIsRestored(t *testing.T) {
	srv := redistest.Start(t)
	in := startInstance(t, srv, RedisOptions{})
	next, err := in.m.Apply(context.Background(), change(in.m, "ops", "", func(s *State) { s.Phase = PhaseRetiring; s.Rollout = 30 }))
	if err != nil {
		t.Fatal(err)
	}
	admin := newRedisClient(t, srv)
	if err := admin.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	in.m.refresh(context.Background())
	stored, ok, err := in.m.backend.Load(context.Background())
	if err != nil || !ok {
		t.Fatalf("state not restored: ok=%v err=%v", ok, err)
	}
	if stored.Phase != PhaseRetiring || stored.Rollout != 30 || stored.Version != next.Version+1 {
		t.Errorf("restored %+v, want the instance's retiring 30%% snapshot at version %d", stored, next.Version+1)
	}
}

func TestRedisKeysShareOneClusterSlot(t *testing.T) {
	tests := []struct {
		prefix, want string
	}{
		{prefix: "", want: "{tokenshift:flags}"},
		{prefix: "myapp:flags", want: "{myapp:flags}"},
		{prefix: "{app}:flags", want: "{app}:flags"},
		{prefix: "{}flags", want: "{{}flags}"},
	}
	for _, tt := range tests {
		b := NewRedisBackend(nil, RedisOptions{Prefix: tt.prefix}).(*redisBackend)
		if b.opts.Prefix != tt.want {
			t.Errorf("prefix %q became %q, want %q", tt.prefix, b.opts.Prefix, tt.want)
		}
		for _, k := range []string{b.stateKey, b.histKey, b.log} {
			if !hasHashTag(k) || k[:len(tt.want)] != tt.want {
				t.Errorf("key %q lacks the hash tag of %q", k, tt.want)
			}
		}
	}
}
