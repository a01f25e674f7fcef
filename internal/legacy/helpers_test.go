package legacy

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func cookieJar(m map[string]string) authn.CookieFunc {
	return func(n string) string { return m[n] }
}

func readFixture(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// redisHarness is a private redis-server plus an admin client that reads
// and writes session keys as the legacy app would.
type redisHarness struct {
	srv   *redistest.Server
	admin *redis.Client
}

func startRedis(t *testing.T) *redisHarness { return startRedisB(t) }

func startRedisB(t testing.TB) *redisHarness {
	t.Helper()
	srv := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	return &redisHarness{srv: srv, admin: admin}
}

func (h *redisHarness) opts() store.RedisOptions {
	return store.RedisOptions{URL: h.srv.URL(), DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
}

// commandCalls is Redis's own count of commands of a kind (INFO
// commandstats), which a test reads before and after to prove the source
// sent none.
func (h *redisHarness) commandCalls(t *testing.T) map[string]int {
	t.Helper()
	info, err := h.admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.Atoi(calls)
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// sessionCommands counts the commands a source could send for a session.
func sessionCommands(m map[string]int) int {
	return m["get"] + m["pttl"] + m["del"] + m["ttl"] + m["exists"]
}

func mustSource(t *testing.T, o Options) Source {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
