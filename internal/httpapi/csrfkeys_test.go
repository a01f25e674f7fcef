package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func newTestCSRF(t *testing.T, st store.Store, clk *fakeclock.Clock, interval time.Duration) *CSRF {
	t.Helper()
	x, err := NewCSRF(context.Background(), CSRFOptions{Store: st, Grace: time.Hour, SyncInterval: interval, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestCSRFKeySurvivesStoreDataLoss: the store loses the shared key, a new
// instance creates another; after one sync on each side, tokens made by
// either instance verify on both, new tokens agree, and the replaced key stops
// being accepted after the grace period.
func TestCSRFKeySurvivesStoreDataLoss(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Now())
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })

	a := newTestCSRF(t, st, clk, time.Hour)
	tokA := a.Token("sid-a")
	if err := st.DeleteCtx(ctx, csrfKeyName); err != nil { // the data loss
		t.Fatal(err)
	}
	b := newTestCSRF(t, st, clk, time.Hour)
	tokB := b.Token("sid-b")
	if b.ValidToken("sid-a", tokA) {
		t.Fatal("the new instance accepts a token of the lost key before any sync: the test does not set up a split")
	}

	if err := a.keys.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.keys.sync(ctx); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*CSRF{"A": a, "B": b} {
		if !x.ValidToken("sid-a", tokA) || !x.ValidToken("sid-b", tokB) {
			t.Errorf("instance %s: token of A valid %v, token of B valid %v; want both", name, x.ValidToken("sid-a", tokA), x.ValidToken("sid-b", tokB))
		}
		if x.ValidToken("sid-b", tokA) {
			t.Errorf("instance %s accepts A's token for another login", name)
		}
	}
	if a.Token("sid-c") != b.Token("sid-c") {
		t.Fatal("the instances did not converge on one key")
	}

	clk.Advance(time.Hour + time.Second)
	if a.ValidToken("sid-a", tokA) || b.ValidToken("sid-a", tokA) {
		t.Fatal("the replaced key is still accepted after the grace period")
	}
	if !a.ValidToken("sid-b", tokB) || !b.ValidToken("sid-b", tokB) {
		t.Fatal("the shared key stopped working")
	}
}

// TestCSRFKeyWrittenBack: when the store lost the key and no other instance
// replaced it, the running instance writes its own back, so an instance
// started later adopts it and nothing changes for anyone.
func TestCSRFKeyWrittenBack(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Now())
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	a := newTestCSRF(t, st, clk, time.Hour)
	tokA := a.Token("sid-a")
	if err := st.DeleteCtx(ctx, csrfKeyName); err != nil {
		t.Fatal(err)
	}
	if err := a.keys.sync(ctx); err != nil {
		t.Fatal(err)
	}
	b := newTestCSRF(t, st, clk, time.Hour)
	if !b.ValidToken("sid-a", tokA) || b.Token("sid-a") != tokA {
		t.Fatal("the key written back was not adopted by the new instance")
	}
}

// TestCSRFPreviousKeysBounded: at most two replaced keys stay accepted.
func TestCSRFPreviousKeysBounded(t *testing.T) {
	ctx := context.Background()
	clk := fakeclock.New(time.Now())
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	a := newTestCSRF(t, st, clk, time.Hour)
	var tokens []string
	for i := range 3 {
		tokens = append(tokens, a.Token("sid"))
		if err := st.DeleteCtx(ctx, csrfKeyName); err != nil {
			t.Fatal(err)
		}
		newTestCSRF(t, st, clk, time.Hour) // another instance wins the race
		clk.Advance(time.Duration(i+1) * time.Second)
		if err := a.keys.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.keys.load().previous); n != maxPreviousCSRFKeys {
		t.Fatalf("%d previous keys kept, want %d", n, maxPreviousCSRFKeys)
	}
	if a.ValidToken("sid", tokens[0]) || !a.ValidToken("sid", tokens[1]) || !a.ValidToken("sid", tokens[2]) {
		t.Fatal("want the two most recently replaced keys accepted and the oldest one dropped")
	}
}

// TestCSRFKeyAcrossRedisRestart: with a real redis-server that restarts
// empty, a token of instance A (made before the restart) verifies on an
// instance B started after it, a token of B verifies on A, and so does a
// login-form (pre-session) token, through the keepers' own loop (pub/sub and
// periodic sync), without calling sync by hand.
func TestCSRFKeyAcrossRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	open := func() store.Store {
		st, err := store.NewRedis(store.RedisOptions{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	clk := fakeclock.New(time.Now())

	a := newTestCSRF(t, open(), clk, 200*time.Millisecond)
	tokA := a.Token("sid-a")
	pre, preTok, _, err := a.newPreSession(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv.RestartEmpty()
	// B starts before A has synced: it creates a key of its own.
	b := newTestCSRF(t, open(), clk, 200*time.Millisecond)
	tokB := b.Token("sid-b")
	if tokB == b.Token("sid-a") || b.ValidToken("sid-a", tokA) {
		t.Fatal("B adopted A's key at once: the restart did not split the key")
	}
	go a.Run(ctx)
	go b.Run(ctx)

	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := b.ValidToken("sid-a", tokA) && a.ValidToken("sid-b", tokB) &&
			a.ValidToken("sid-a", tokA) && b.ValidToken("sid-b", tokB) &&
			b.checkPreSession(pre, preTok, clk.Now()) == nil
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: B accepts A's token %v, A accepts B's %v, B accepts A's login-form token %v",
				b.ValidToken("sid-a", tokA), a.ValidToken("sid-b", tokB), b.checkPreSession(pre, preTok, clk.Now()) == nil)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.Token("sid-c") != b.Token("sid-c") {
		t.Fatal("the instances did not converge on one key")
	}
}
