package legacyapps

import (
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// PHPOptions configures the PHP app (internal/e2e/testdata/php/app.php, run
// by PHP's built-in server with phpredis's session handler).
type PHPOptions struct {
	// RedisURL is the session store, redis://host:port[/db], e.g. a
	// redistest.Server's URL(). Required.
	RedisURL string
	// Users is the app's password table, user id → password.
	Users map[string]string
	// SerializeHandler is session.serialize_handler: "php" (PHP's default)
	// or "php_serialize".
	SerializeHandler string
	// KeyPrefix is phpredis's key prefix; default PHPREDIS_SESSION:.
	KeyPrefix string
	// MaxLifetime is session.gc_maxlifetime, the Redis key's TTL; zero = PHP's
	// default, 1440 s.
	MaxLifetime time.Duration
	// NumericIDs stores the user ids as PHP ints instead of strings.
	NumericIDs bool
}

// StartPHP runs `php -S 127.0.0.1:<port> app.php` with
// session.save_handler=redis on a free loopback port.
func StartPHP(t testing.TB, o PHPOptions) *App {
	t.Helper()
	savePath, err := phpSavePath(o.RedisURL, o.KeyPrefix)
	if err != nil {
		t.Fatalf("legacyapps.StartPHP: %v", err)
	}
	php, err := exec.LookPath("php")
	if err != nil {
		citest.Unavailable(t, "php not found on PATH (Debian: apt-get install php-cli php-redis)")
	}
	if out, err := exec.Command(php, "-m").Output(); err != nil || !hasModule(string(out), "redis") {
		citest.Unavailable(t, "php has no redis module (Debian: apt-get install php-redis)")
	}
	switch o.SerializeHandler {
	case "", "php", "php_serialize":
	default:
		t.Fatalf("legacyapps.StartPHP: SerializeHandler %q (want php or php_serialize)", o.SerializeHandler)
	}
	dir, err := TestdataDir("php")
	if err != nil {
		t.Fatal(err)
	}
	port := redistest.FreePort(t)
	args := []string{php,
		"-S", "127.0.0.1:" + strconv.Itoa(port),
		"-d", "session.save_handler=redis",
		// Quoted: the query string's "=" would end an unquoted ini value.
		"-d", `session.save_path="` + savePath + `"`,
		// A hardened, common production setting: ids the store does not
		// know are replaced, not adopted.
		"-d", "session.use_strict_mode=1",
		"-d", "display_errors=stderr",
	}
	if o.SerializeHandler != "" {
		args = append(args, "-d", "session.serialize_handler="+o.SerializeHandler)
	}
	if o.MaxLifetime > 0 {
		args = append(args, "-d", "session.gc_maxlifetime="+strconv.Itoa(int(o.MaxLifetime/time.Second)))
	}
	args = append(args, filepath.Join(dir, "app.php"))
	env := []string{"USERS=" + userTable(t, o.Users), "ID_TYPE="}
	if o.NumericIDs {
		env = append(env, "ID_TYPE=number")
	}
	p := startProcess(t, "php app", dir, env, args...)
	a := &App{
		URL: "http://127.0.0.1:" + strconv.Itoa(port), CookieName: "PHPSESSID",
		proc: p, client: newClient(), mePath: "/me", logoutPath: "/logout",
	}
	a.login = a.jsonLogin
	waitReady(t, p, a.URL+"/me", 401, 10*time.Second)
	return a
}

// phpSavePath turns redis://[:password@]host:port[/db] into phpredis's
// session.save_path, tcp://host:port?database=db&prefix=...&auth=....
func phpSavePath(redisURL, prefix string) (string, error) {
	if redisURL == "" {
		return "", errors.New("RedisURL is required")
	}
	u, err := url.Parse(redisURL)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return "", fmt.Errorf("RedisURL %q is not redis://host:port[/db]", redisURL)
	}
	q := url.Values{}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if _, err := strconv.Atoi(db); err != nil {
			return "", fmt.Errorf("RedisURL %q: database %q is not a number", redisURL, db)
		}
		q.Set("database", db)
	}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if pw, ok := u.User.Password(); ok {
		q.Set("auth", pw)
	}
	out := "tcp://" + u.Host
	if len(q) > 0 {
		out += "?" + q.Encode()
	}
	return out, nil
}

func hasModule(list, name string) bool {
	for line := range strings.SplitSeq(list, "\n") {
		if strings.EqualFold(strings.TrimSpace(line), name) {
			return true
		}
	}
	return false
}
