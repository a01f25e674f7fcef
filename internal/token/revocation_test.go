package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func startRevocations(t *testing.T, st store.Store, clock func() time.Time) *Revocations {
	t.Helper()
	r := NewRevocations(st, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return r
}

// waitUntil polls cond for up to d.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return cond()
}

// subscribed waits until b hears what a announces: Start returns before the
// store has confirmed the subscription.
func subscribed(t *testing.T, a, b *Revocations, now func() time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		probe := fmt.Sprintf("probe-%d", i)
		if err := a.RevokeSID(ctx, probe, now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if waitUntil(200*time.Millisecond, func() bool { return b.SIDRevoked(probe) }) {
			return
		}
		if i == 50 {
			t.Fatal("the second mirror never heard the first")
		}
	}
}

func TestRevocationsLocal(t *testing.T) {
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	r := startRevocations(t, st, clock.Now)
	ctx := context.Background()
	now := clock.Now()

	tests := []struct {
		name    string
		revoke  func() error
		check   func() bool
		expires time.Duration
	}{
		{name: "jti", revoke: func() error { return r.RevokeJTI(ctx, "j1", now.Add(time.Hour)) }, check: func() bool { return r.JTIRevoked("j1") }, expires: time.Hour},
		{name: "sid", revoke: func() error { return r.RevokeSID(ctx, "s1", now.Add(2*time.Hour)) }, check: func() bool { return r.SIDRevoked("s1") }, expires: 2 * time.Hour},
		{name: "user", revoke: func() error { return r.RevokeUser(ctx, "u1", now, now.Add(3*time.Hour)) }, check: func() bool { return r.UserNotBefore("u1").Equal(now) }, expires: 3 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.check() {
				t.Fatal("revoked before revoking")
			}
			if err := tc.revoke(); err != nil {
				t.Fatal(err)
			}
			if !tc.check() {
				t.Fatal("not revoked at once")
			}
		})
	}
	if r.JTIRevoked("j2") || r.SIDRevoked("s2") || !r.UserNotBefore("u2").IsZero() {
		t.Fatal("an unrelated id is revoked")
	}
	// A later, shorter revocation cannot shorten or move back an earlier one.
	if err := r.RevokeUser(ctx, "u1", now.Add(-time.Hour), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !r.UserNotBefore("u1").Equal(now) {
		t.Fatalf("UserNotBefore = %v; want the later %v to stand", r.UserNotBefore("u1"), now)
	}
	// Entries lapse with their until, and re-sync prunes them from the store.
	clock.Advance(time.Hour + time.Second)
	if r.JTIRevoked("j1") || !r.SIDRevoked("s1") {
		t.Fatal("jti should have lapsed, sid not yet")
	}
	if err := r.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if all, _ := st.HGetAll(ctx, revKeyJTI); len(all) != 0 {
		t.Fatalf("expired jti entries left in the store: %v", all)
	}
	if _, ok := r.jti["j1"]; ok {
		t.Fatal("expired jti left in the mirror")
	}
	// An until already past revokes nothing and stores nothing.
	if err := r.RevokeJTI(ctx, "old", clock.Now().Add(-time.Second)); err != nil || r.JTIRevoked("old") {
		t.Fatalf("revoking with a past until: %v", err)
	}
	if err := r.RevokeSID(ctx, "", clock.Now().Add(time.Hour)); err == nil {
		t.Fatal("an empty sid was accepted")
	}
	if err := r.Start(ctx); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start = %v; want ErrAlreadyStarted", err)
	}
}

func TestRevocationsLoadAndPropagateInMemory(t *testing.T) {
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	a := startRevocations(t, st, clock.Now)
	if err := a.RevokeSID(ctx, "before-start", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Garbage in the store must not stop a load.
	if err := st.HSet(ctx, revKeySID, time.Hour, "junk", []byte("{")); err != nil {
		t.Fatal(err)
	}
	b := startRevocations(t, st, clock.Now)
	if !b.SIDRevoked("before-start") {
		t.Fatal("Start did not load the stored revocations")
	}
	subscribed(t, a, b, clock.Now)
	if err := b.RevokeUser(ctx, "u", clock.Now(), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(time.Second, func() bool { return !a.UserNotBefore("u").IsZero() }) {
		t.Fatal("a user revocation on b never reached a")
	}
	// Malformed messages are ignored, not fatal.
	for _, msg := range []string{"", "{", `{"k":"what","id":"x","until":1}`, `{"k":"jti","until":99999999999999999}`} {
		if err := st.Publish(ctx, RevocationChannel, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RevokeJTI(ctx, "after-junk", clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(time.Second, func() bool { return b.JTIRevoked("after-junk") }) {
		t.Fatal("b stopped listening after malformed messages")
	}
}

func TestRevocationsStoreDown(t *testing.T) {
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	r := startRevocations(t, st, clock.Now)
	_ = st.Close()
	err := r.RevokeSID(context.Background(), "s", clock.Now().Add(time.Hour))
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("RevokeSID with the store down = %v; want ErrUnavailable", err)
	}
	if !r.SIDRevoked("s") {
		t.Fatal("a revocation must apply locally even when the store is down")
	}
	if err := NewRevocations(st, clock.Now, nil).Start(context.Background()); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Start with the store down = %v; want ErrUnavailable", err)
	}
}

func newRedisStore(t *testing.T, url string) *store.Redis {
	t.Helper()
	st, err := store.NewRedis(store.RedisOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Two instances on one Redis: what one revokes the other refuses within
// milliseconds (DESIGN.md §5 asks for 100 ms).
func TestRevocationPropagationRedis(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := startRevocations(t, newRedisStore(t, srv.URL()), time.Now)
	b := startRevocations(t, newRedisStore(t, srv.URL()), time.Now)
	subscribed(t, a, b, time.Now)

	const trials = 200
	lat := make([]time.Duration, 0, trials)
	for i := range trials {
		id := fmt.Sprintf("sid-%d", i)
		start := time.Now()
		if err := a.RevokeSID(ctx, id, start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(time.Second, func() bool { return b.SIDRevoked(id) }) {
			t.Fatalf("trial %d: b never saw the revocation", i)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p50, p99 := lat[trials/2], lat[trials*99/100-1]
	t.Logf("revocation propagation over %d trials: p50 %v, p99 %v, max %v", trials, p50, p99, lat[trials-1])
	if p99 >= 100*time.Millisecond {
		t.Fatalf("p99 propagation %v; want < 100ms", p99)
	}

	// A fresh instance loads what is stored; and a restarted Redis (which
	// keeps nothing) loses no revocation already mirrored.
	c := startRevocations(t, newRedisStore(t, srv.URL()), time.Now)
	if !c.SIDRevoked("sid-0") || !c.SIDRevoked(fmt.Sprintf("sid-%d", trials-1)) {
		t.Fatal("a new instance did not load the stored revocations")
	}
	srv.Restart()
	if !b.SIDRevoked("sid-0") {
		t.Fatal("b forgot a revocation when Redis restarted empty")
	}
	if !waitUntil(15*time.Second, func() bool {
		_ = a.RevokeSID(ctx, "after-restart", time.Now().Add(time.Hour))
		return waitUntil(100*time.Millisecond, func() bool { return b.SIDRevoked("after-restart") })
	}) {
		t.Fatal("revocations stopped propagating after a Redis restart")
	}
}

// SIDRevokedBy orders a sid revocation against a moment (SIDEpoch): one known
// then counts, one learnt later does not; a re-revocation keeps the first.
func TestSIDRevokedBy(t *testing.T) {
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	r := startRevocations(t, st, clock.Now)
	ctx := context.Background()
	until := clock.Now().Add(time.Hour)

	if err := r.RevokeSID(ctx, "early", until); err != nil {
		t.Fatal(err)
	}
	mark := r.SIDEpoch()
	if err := r.RevokeSID(ctx, "late", until); err != nil {
		t.Fatal(err)
	}
	if err := r.RevokeSID(ctx, "early", until.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		sid   string
		epoch uint64
		want  bool
	}{
		{name: "revoked before the mark", sid: "early", epoch: mark, want: true},
		{name: "revoked after the mark", sid: "late", epoch: mark},
		{name: "revoked after the mark, seen now", sid: "late", epoch: r.SIDEpoch(), want: true},
		{name: "never revoked", sid: "other", epoch: r.SIDEpoch()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.SIDRevokedBy(tc.sid, tc.epoch); got != tc.want {
				t.Fatalf("SIDRevokedBy(%q, %d) = %v; want %v", tc.sid, tc.epoch, got, tc.want)
			}
		})
	}
	clock.Advance(3 * time.Hour)
	if r.SIDRevokedBy("early", r.SIDEpoch()) {
		t.Fatal("an expired revocation still counts")
	}
}
