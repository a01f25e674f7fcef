package store

import (
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// TestRedisLogsGoThroughSlog: a line go-redis writes itself (here: it cannot
// dial a port nobody listens on) arrives in the service's JSON log as a JSON
// object, not as an unstructured "redis: ... pool.go" line on stderr.
func TestRedisLogsGoThroughSlog(t *testing.T) {
	var buf logbuf.Buffer
	RouteRedisLogs(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { RouteRedisLogs(slog.New(slog.NewTextHandler(os.Stderr, nil))) })

	dead := "redis://127.0.0.1:" + strconv.Itoa(redistest.FreePort(t)) + "/0"
	if st, err := Open(RedisOptions{URL: dead, DialTimeout: 200 * time.Millisecond}, time.Now); err == nil {
		_ = st.Close()
		t.Fatal("opening a Redis nobody listens on succeeded")
	}
	out := strings.TrimSpace(buf.String())
	if out == "" {
		t.Fatal("go-redis logged nothing through slog (its lines still go to its own stderr logger)")
	}
	for _, line := range strings.Split(out, "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if rec["msg"] != "redis client" || rec["level"] != "WARN" || rec["component"] != "go-redis" {
			t.Errorf("log record = %v", rec)
		}
	}
	if !strings.Contains(out, "failed to dial") {
		t.Errorf("the dial failure is missing from %s", out)
	}
}
