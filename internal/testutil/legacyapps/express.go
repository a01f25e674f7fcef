package legacyapps

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// Express session layouts: where the app keeps the user id in the session.
const (
	LayoutUserID   = "userId"   // req.session.userId
	LayoutPassport = "passport" // req.session.passport = {user: id}, as passport.js does
)

// ExpressOptions configures the Express app (internal/e2e/testdata/express/app.js).
type ExpressOptions struct {
	// RedisURL is connect-redis's store, e.g. a redistest.Server's URL(). Required.
	RedisURL string
	// Secrets are express-session's cookie secrets: the first signs, every
	// one verifies. Default ["keyboard cat"].
	Secrets []string
	// Prefix is connect-redis's key prefix; default "sess:".
	Prefix string
	// Layout is LayoutUserID (default) or LayoutPassport.
	Layout string
	// Cookie is the session cookie's name; default connect.sid.
	Cookie string
	// MaxAge is the cookie's maxAge (then the Redis key's TTL); zero = a
	// browser-session cookie whose key lives connect-redis's default day.
	MaxAge time.Duration
	// Users is the app's password table, user id → password.
	Users map[string]string
	// NumericIDs stores the user ids as JSON numbers (an SQL app's integer
	// keys) instead of strings.
	NumericIDs bool
}

// StartExpress runs the Express app with node on a free loopback port, after
// `npm ci` in its folder if its node_modules is missing or older than the
// lockfile.
func StartExpress(t testing.TB, o ExpressOptions) *App {
	t.Helper()
	if o.RedisURL == "" {
		t.Fatal("legacyapps.StartExpress: RedisURL is required")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		citest.Unavailable(t, "node not found on PATH (Debian: apt-get install nodejs npm)")
	}
	dir, err := TestdataDir("express")
	if err != nil {
		t.Fatal(err)
	}
	EnsureNodeModules(t, dir)

	if o.Cookie == "" {
		o.Cookie = "connect.sid"
	}
	if o.Layout == "" {
		o.Layout = LayoutUserID
	}
	if o.Layout != LayoutUserID && o.Layout != LayoutPassport {
		t.Fatalf("legacyapps.StartExpress: Layout %q (want %q or %q)", o.Layout, LayoutUserID, LayoutPassport)
	}
	for _, s := range o.Secrets {
		if s == "" || strings.Contains(s, ",") {
			t.Fatalf("legacyapps.StartExpress: secret %q (must be non-empty, without ',')", s)
		}
	}
	port := redistest.FreePort(t)
	env := envList(
		"PORT", strconv.Itoa(port),
		"REDIS_URL", o.RedisURL,
		"SECRETS", strings.Join(o.Secrets, ","),
		"LAYOUT", o.Layout,
		"COOKIE", o.Cookie,
		"USERS", userTable(t, o.Users),
	)
	// app.js reads an empty PREFIX as unset ("sess:"): an empty prefix is
	// not supported.
	if o.Prefix != "" {
		env = append(env, "PREFIX="+o.Prefix)
	}
	if o.MaxAge > 0 {
		env = append(env, "MAX_AGE="+strconv.FormatInt(o.MaxAge.Milliseconds(), 10))
	}
	if o.NumericIDs {
		env = append(env, "ID_TYPE=number")
	}
	// NODE_OPTIONS from a developer's shell (a debugger, --require) must not
	// change the app.
	env = append(env, "NODE_OPTIONS=", "NODE_ENV=production")
	p := startProcess(t, "express app", dir, env, node, filepath.Join(dir, "app.js"))
	a := &App{
		URL: "http://127.0.0.1:" + strconv.Itoa(port), CookieName: o.Cookie,
		proc: p, client: newClient(), mePath: "/me", logoutPath: "/logout",
	}
	a.login = a.jsonLogin
	waitReady(t, p, a.URL+"/me", 401, 20*time.Second)
	return a
}

// EnsureNodeModules runs `npm ci --no-audit --no-fund` in dir unless its
// node_modules is at least as new as package-lock.json (npm ci writes
// node_modules/.package-lock.json last). A file lock keeps parallel tests,
// and parallel test binaries, from installing at once.
func EnsureNodeModules(t testing.TB, dir string) {
	t.Helper()
	if nodeModulesFresh(dir) {
		return
	}
	lock, err := os.OpenFile(filepath.Join(dir, "node_modules.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("npm ci lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("npm ci lock: %v", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if nodeModulesFresh(dir) { // another test installed them while we waited
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		citest.Unavailable(t, "npm not found on PATH and %s/node_modules is missing or stale (Debian: apt-get install npm)", dir)
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci in %s: %s", dir, time.Since(start).Round(time.Millisecond))
	if !nodeModulesFresh(dir) {
		t.Fatalf("npm ci in %s succeeded but node_modules/.package-lock.json is still older than package-lock.json", dir)
	}
}

func nodeModulesFresh(dir string) bool {
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil {
		return false
	}
	return !hidden.ModTime().Before(lock.ModTime())
}
