package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// TestRedisFlagBackendLogs: the Redis flag backend built by serve reports its
// problems through the service's logger. Here the announcement of a change
// fails (a Redis user without PUBLISH): the change stands, and the warning
// reaches the log instead of being discarded.
func TestRedisFlagBackendLogs(t *testing.T) {
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "flags", "on", ">flags-pass", "~*", "&*", "+@all", "-publish").Err(); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewRedis(store.RedisOptions{URL: "redis://flags:flags-pass@" + srv.Addr() + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := usage.New(usage.Options{Clients: []string{"web", "spa", "mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m, err := buildFlags(ctx, cfg, st, []string{"web", "spa", "mobile"}, rec, log)
	if err != nil {
		t.Fatal(err)
	}
	cur := m.Flags().Current()
	if _, err := m.Apply(ctx, featureflags.Change{Expect: cur.Version, Actor: "test", Reason: "log check",
		Edit: func(s *featureflags.State) error { s.Rollout = 7; return nil }}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "announcing a change failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the backend's warning did not reach the service log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
