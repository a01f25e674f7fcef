package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// TestRedisSetsArePackedAndOldSetsKeepWorking: a set is stored as a small
// hash, which Redis keeps packed; a set written before (a Redis set) is read,
// shrunk and grown as it is, and the first SAdd turns it into a hash with its
// members and expiry.
func TestRedisSetsArePackedAndOldSetsKeepWorking(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.URL(), RedisOptions{})
	ctx := context.Background()
	c := r.Redis()

	must(t, r.SAdd(ctx, "new", time.Hour, "sid-1"))
	if enc, _ := c.ObjectEncoding(ctx, "new").Result(); enc != "listpack" {
		t.Fatalf("a one-member set is encoded %q; want listpack", enc)
	}

	if err := c.SAdd(ctx, "old", "a", "b", "c").Err(); err != nil {
		t.Fatal(err)
	}
	c.PExpire(ctx, "old", time.Hour)
	wantMembers(t, r, "old", "a", "b", "c")
	must(t, r.SRem(ctx, "old", "c"))
	wantMembers(t, r, "old", "a", "b")
	must(t, r.SAdd(ctx, "old", time.Minute, "d"))
	if typ, _ := c.Type(ctx, "old").Result(); typ != "hash" {
		t.Fatalf("after SAdd the old set is a %q; want hash", typ)
	}
	wantMembers(t, r, "old", "a", "b", "d")
	if ttl, _ := c.PTTL(ctx, "old").Result(); ttl < 59*time.Minute {
		t.Fatalf("expiry after the conversion = %v; want the old set's hour kept", ttl)
	}
	must(t, r.SRem(ctx, "old", "a", "b", "d"))
	if n, _ := c.Exists(ctx, "old").Result(); n != 0 {
		t.Fatal("removing the last member left the key")
	}
	if err := c.Set(ctx, "str", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"SAdd":     r.SAdd(ctx, "str", 0, "a"),
		"SRem":     r.SRem(ctx, "str", "a"),
		"SMembers": func() error { _, err := r.SMembers(ctx, "str"); return err }(),
	} {
		if !errors.Is(err, ErrWrongType) {
			t.Fatalf("%s on a string: %v; want ErrWrongType", name, err)
		}
	}
	got, err := r.SMembers(ctx, "missing")
	if err != nil || !slices.Equal(got, []string{}) && got != nil {
		t.Fatalf("SMembers(missing) = %q, %v", got, err)
	}
}
