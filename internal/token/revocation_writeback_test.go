package token

import (
	"context"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// Redis restarts empty: the running instance still holds its revocations and
// must put them back, so that an instance started afterwards, which only
// loads the store, refuses the revoked credentials too. Expired entries are
// not resurrected.
func TestRevocationsWrittenBackAfterRedisRestartsEmpty(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	clock := newFakeClock()
	a := startRevocations(t, newRedisStore(t, srv.URL()), clock.Now)
	now := clock.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.RevokeJTI(ctx, "jti-live", now.Add(time.Hour)))
	must(a.RevokeSID(ctx, "sid-live", now.Add(time.Hour)))
	must(a.RevokeUser(ctx, "u-live", now, now.Add(time.Hour)))
	must(a.RevokeSID(ctx, "sid-short", now.Add(time.Minute)))
	clock.Advance(2 * time.Minute) // sid-short is over

	// A marker that nothing writes back proves the restart lost the data;
	// checking the revocation keys themselves would race the write-back.
	probe := newRedisStore(t, srv.URL())
	must(probe.SetCtx(ctx, "test:marker", []byte("x"), 0))
	srv.RestartEmpty()
	if v, err := probe.GetCtx(ctx, "test:marker"); err != nil || v != nil {
		t.Fatalf("the restarted Redis still has the marker: %q %v", v, err)
	}
	// a's subscription reconnects and its re-sync writes the entries back.
	if !waitUntil(20*time.Second, func() bool {
		all, err := probe.HGetAll(ctx, revKeyUser)
		return err == nil && len(all) == 1
	}) {
		t.Fatal("the running instance never wrote its revocations back")
	}

	c := startRevocations(t, newRedisStore(t, srv.URL()), clock.Now)
	switch {
	case !c.JTIRevoked("jti-live"):
		t.Fatal("a later instance does not know the revoked jti")
	case !c.SIDRevoked("sid-live"):
		t.Fatal("a later instance does not know the revoked sid")
	case !c.UserNotBefore("u-live").Equal(now):
		t.Fatalf("a later instance has user not-before %v; want %v", c.UserNotBefore("u-live"), now)
	}
	sids, err := probe.HGetAll(ctx, revKeySID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sids["sid-short"]; ok {
		t.Fatal("an expired revocation was written back")
	}
	if _, ok := sids["sid-live"]; !ok || len(sids) != 1 {
		t.Fatalf("stored sids after write-back: %v; want only sid-live", sids)
	}
}

// A revocation whose store write failed is stored by the next re-sync once
// the store is back (the same write-back path, without a restart).
func TestRevocationsWriteBackAfterFailedStore(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := startRevocations(t, newRedisStore(t, srv.URL()), time.Now)
	srv.Stop()
	if err := a.RevokeSID(ctx, "sid-while-down", time.Now().Add(time.Hour)); err == nil {
		t.Fatal("RevokeSID with Redis down reported success")
	}
	srv.RestartEmpty()
	probe := newRedisStore(t, srv.URL())
	if !waitUntil(20*time.Second, func() bool {
		all, err := probe.HGetAll(ctx, revKeySID)
		_, ok := all["sid-while-down"]
		return err == nil && ok
	}) {
		t.Fatal("a revocation applied while Redis was down never reached the store")
	}
	if c := startRevocations(t, newRedisStore(t, srv.URL()), time.Now); !c.SIDRevoked("sid-while-down") {
		t.Fatal("a later instance does not know it")
	}
}
