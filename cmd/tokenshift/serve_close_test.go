package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/token"
)

// The machine's shared PostgreSQL (.ci/run starts it). These tests create
// nothing in it: they only count the connections tagged with their own
// application_name.
const closePGAddr = "127.0.0.1:5432"

// pgConnections counts the server-side connections whose application_name is
// app, i.e. what a user store opened with that name still holds.
func pgConnections(t *testing.T, app string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://postgres@"+closePGAddr+"/test?sslmode=disable")
	if err != nil {
		citest.Unavailable(t, "PostgreSQL at %s not reachable: %v", closePGAddr, err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// ownGoroutines maps the id of every goroutine running tokenshift library
// code (a background loop, the memory store's sweeper), serve's SQL probe or
// a database/sql pool to its top such frame. Test goroutines are not listed.
func ownGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(g, "\n")
		m := goroutineHeader.FindStringSubmatch(lines[0])
		if m == nil {
			continue
		}
		for _, l := range lines[1:] {
			if strings.HasPrefix(l, "github.com/tokenshift/tokenshift/") ||
				strings.HasPrefix(l, "database/sql.(*DB).connectionOpener") {
				out[m[1]] = l
				break
			}
		}
	}
	return out
}

// leftBehind waits up to limit for the goroutines started since before and
// the PostgreSQL connections tagged app to be gone, and describes what is
// still there.
func leftBehind(t *testing.T, before map[string]string, app string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var left []string
		for id, frame := range ownGoroutines() {
			if _, old := before[id]; !old {
				left = append(left, "goroutine "+id+" in "+frame)
			}
		}
		if n := pgConnections(t, app); n > 0 {
			left = append(left, fmt.Sprintf("%d PostgreSQL connection(s) of the user store", n))
		}
		if len(left) == 0 || time.Now().After(deadline) {
			slices.Sort(left)
			return strings.Join(left, "\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closeTestConfig is the development configuration with a keys directory (so
// the key rotator runs) and the SQL user store on the machine's PostgreSQL,
// its connections tagged app. The query needs no table.
func closeTestConfig(t *testing.T, app string) *config.Config {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := token.GenerateKeyFile(dir, "k1", "EdDSA"); err != nil {
		t.Fatal(err)
	}
	cfg.JWT.KeysDir = dir
	cfg.Users.SQL.Driver = "pgx"
	cfg.Users.SQL.DSN = "postgres://postgres@" + closePGAddr + "/test?sslmode=disable&application_name=" + app
	cfg.Users.SQL.Query = "SELECT ''::text AS id, $1::text AS email, ''::text AS password_hash, ''::text AS roles WHERE false"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func testAppName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "ts_build_" + hex.EncodeToString(b)
}

// TestBuildUndoesWhatItOpenedOnEveryFailure breaks each step of build after
// the first in turn and checks that nothing it opened outlives the failure:
// no store (the memory store's sweeper), no background loop (revocation
// mirror, key rotator, CSRF keys) and no PostgreSQL connection of the SQL
// user store, although the caller's context stays alive.
func TestBuildUndoesWhatItOpenedOnEveryFailure(t *testing.T) {
	pgConnections(t, "-") // skip (fail under CI) without PostgreSQL
	tests := []struct {
		name    string
		breakIt func(t *testing.T, cfg *config.Config)
		wantErr string // in the error build returns
	}{
		{name: "signing keys", wantErr: "jwt.keys_dir",
			breakIt: func(t *testing.T, c *config.Config) { c.JWT.KeysDir = filepath.Join(t.TempDir(), "missing") }},
		{name: "token service", wantErr: "Leeway",
			breakIt: func(_ *testing.T, c *config.Config) { c.JWT.Leeway = token.MaxLeeway + time.Second }},
		{name: "sessions", wantErr: "session:",
			breakIt: func(_ *testing.T, c *config.Config) { c.Session.IdleTimeout = -time.Minute }},
		{name: "user store query", wantErr: "users.sql",
			breakIt: func(_ *testing.T, c *config.Config) { c.Users.SQL.Query = "SELECT $1::text WHERE false" }},
		{name: "usage recorder", wantErr: "retention",
			breakIt: func(_ *testing.T, c *config.Config) { c.Usage.Retention = time.Minute }},
		{name: "migration flags", wantErr: "bogus",
			breakIt: func(_ *testing.T, c *config.Config) { c.Migration.Phase = "bogus" }},
		// A database down at start leaves a probe loop running, which the
		// failure must stop too.
		{name: "migration flags with the database down", wantErr: "bogus",
			breakIt: func(t *testing.T, c *config.Config) {
				c.Users.SQL.DSN = "postgres://postgres@" + closedAddr(t) + "/test?sslmode=disable&connect_timeout=1"
				c.Migration.Phase = "bogus"
			}},
		{name: "HTTP server", wantErr: "default client",
			breakIt: func(_ *testing.T, c *config.Config) { c.DefaultClient = "nobody" }},
		{name: "gateway routes", wantErr: "upstream",
			breakIt: func(_ *testing.T, c *config.Config) {
				c.Proxy.Routes = []config.RouteConfig{{Prefix: "/app", Upstream: "ftp://app.internal", Auth: "required"}}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := testAppName(t)
			cfg := closeTestConfig(t, app)
			tc.breakIt(t, cfg)
			before := ownGoroutines()
			// The caller's context outlives the failed build, as a test's
			// or an embedder's would: build must not rely on its end.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
			if err == nil {
				a.store.Close()
				t.Fatalf("build succeeded; want it to fail at %s", tc.name)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("build error = %v, want it to name %q (did it fail at another step?)", err, tc.wantErr)
			}
			if left := leftBehind(t, before, app, 5*time.Second); left != "" {
				t.Errorf("after build failed at %s, still open:\n%s", tc.name, left)
			}
		})
	}
}

// TestAppCloseUndoesASuccessfulBuild: Close releases everything a complete
// build opened, and a second Close changes nothing.
func TestAppCloseUndoesASuccessfulBuild(t *testing.T) {
	app := testAppName(t)
	cfg := closeTestConfig(t, app)
	before := ownGoroutines()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n := pgConnections(t, app); n == 0 {
		t.Fatal("the built app holds no PostgreSQL connection; the test would prove nothing")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if left := leftBehind(t, before, app, 5*time.Second); left != "" {
		t.Errorf("after Close, still open:\n%s", left)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestPhaseGaugeFollowsEveryChange: the tokenshift_phase gauge follows a
// change of the flag state as soon as it is installed, whatever made it,
// with no loop polling the snapshot (none runs here: only build).
func TestPhaseGaugeFollowsEveryChange(t *testing.T) {
	cfg := serveConfig(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	gauge := func(client, phase string) bool {
		rec := httptest.NewRecorder()
		a.usage.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return strings.Contains(rec.Body.String(), fmt.Sprintf(`tokenshift_phase{client=%q,phase=%q} 1`, client, phase))
	}
	if !gauge("*", "dual") {
		t.Fatal(`tokenshift_phase{client="*",phase="dual"} is not 1 after build`)
	}
	cur := a.flags.Flags().Current()
	next := cur.Clone()
	next.Phase = featureflags.PhasePreferJWT
	next.Clients["mobile"] = featureflags.ClientRule{Phase: featureflags.PhaseJWTOnly}
	if _, err := a.flags.Apply(ctx, featureflags.Change{Expect: cur.Version, Next: next, Actor: "test", Reason: "test", Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ client, phase string }{{"*", "prefer-jwt"}, {"web", "prefer-jwt"}, {"mobile", "jwt-only"}} {
		if !gauge(w.client, w.phase) {
			t.Errorf("tokenshift_phase{client=%q,phase=%q} is not 1 right after the change", w.client, w.phase)
		}
	}
	if _, err := a.flags.Rollback(ctx, "test", "back"); err != nil {
		t.Fatal(err)
	}
	if !gauge("*", "dual") || !gauge("mobile", "dual") {
		t.Error("the gauge did not follow the rollback")
	}
}
