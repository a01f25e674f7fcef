// Package legacyapps starts the real legacy applications of issue 12's tests
// (an Express app with express-session + connect-redis, a Django project on
// PostgreSQL, a PHP script with phpredis sessions) on free loopback ports, so
// that a test can log users in through the legacy app's own login and hand
// the cookies to tokenshift.
//
// Each starter waits until the app answers and kills it (its whole process
// group) when the test ends. A missing runtime (node, php + php-redis,
// Debian's python3-django) is citest.Unavailable: a skip on a developer's
// machine, a failure under CI=true.
package legacyapps

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// App is one running legacy application.
type App struct {
	// URL is the app's base URL, http://127.0.0.1:<port>.
	URL string
	// CookieName is the name of the app's session cookie (connect.sid,
	// PHPSESSID, sessionid unless configured otherwise).
	CookieName string

	proc       *process
	client     *http.Client
	mePath     string
	logoutPath string
	login      func(t testing.TB, user, password string) (*http.Cookie, int)
}

// Login logs user in through the app's own login and returns its session
// cookie; the test fails when the app refuses.
func (a *App) Login(t testing.TB, user, password string) *http.Cookie {
	t.Helper()
	c, status := a.login(t, user, password)
	if c == nil {
		t.Fatalf("login of %q at %s: status %d, no %s cookie", user, a.URL, status, a.CookieName)
	}
	return c
}

// TryLogin is Login for a login that may be refused: it returns the cookie
// (nil when refused) and the status of the login response.
func (a *App) TryLogin(t testing.TB, user, password string) (*http.Cookie, int) {
	t.Helper()
	return a.login(t, user, password)
}

// Me asks the app who cookie belongs to, from its own session store: 200 and
// the user id, or the refusal's status (401) and "".
func (a *App) Me(t testing.TB, cookie *http.Cookie) (status int, userID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.URL+a.mePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, body := a.do(t, req)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, ""
	}
	var me struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal(body, &me); err != nil || me.UserID == "" {
		t.Fatalf("GET %s%s: 200 without a user_id: %q", a.URL, a.mePath, body)
	}
	return resp.StatusCode, me.UserID
}

// Logout ends cookie's session through the app's own logout (the app deletes
// it from its store); the test fails unless the app answers 2xx.
func (a *App) Logout(t testing.TB, cookie *http.Cookie) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.URL+a.logoutPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	resp, body := a.do(t, req)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s%s: status %d: %q", a.URL, a.logoutPath, resp.StatusCode, body)
	}
}

// Stop kills the app now (it is killed at cleanup anyway). Safe to call twice.
func (a *App) Stop() { a.proc.stop() }

// Output is what the app has written to stdout and stderr (its last 64 KiB).
func (a *App) Output() string { return a.proc.out.String() }

// do sends req and reads the whole answer; a transport error fails the test.
func (a *App) do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\napp output:\n%s", req.Method, req.URL, err, a.Output())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// jsonLogin is the login of the Express and PHP apps: POST /login with
// {"user_id","password"}, the session cookie in the answer.
func (a *App) jsonLogin(t testing.TB, user, password string) (*http.Cookie, int) {
	t.Helper()
	payload, _ := json.Marshal(map[string]string{"user_id": user, "password": password})
	req, err := http.NewRequest(http.MethodPost, a.URL+"/login", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, _ := a.do(t, req)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode
	}
	return cookieNamed(resp, a.CookieName), resp.StatusCode
}

// cookieNamed is the last cookie called name that resp sets (nil if none).
func cookieNamed(resp *http.Response, name string) *http.Cookie {
	var found *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			found = c
		}
	}
	return found
}

// newClient is an HTTP client that neither follows redirects (a login's 302
// carries the cookie) nor keeps cookies: every request says which cookie it
// sends.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// process is one legacy app process, in its own process group so that
// cleanup kills whatever it started as well.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}

	stopOnce sync.Once
}

// startProcess starts argv in dir with env added to the test's environment,
// and registers its kill at cleanup (its output is logged then if the test
// failed).
func startProcess(t testing.TB, name, dir string, env []string, argv ...string) *process {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	// Later entries win in os/exec, so env overrides the inherited values.
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{name: name, cmd: cmd, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
		}
	})
	return p
}

func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	})
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls url until it answers want, the process dies, or timeout.
func waitReady(t testing.TB, p *process, url string, want int, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited before answering %s:\n%s", p.name, url, p.out.String())
		}
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	t.Fatalf("%s did not answer GET %s with %d within %s (last: %s):\n%s", p.name, url, want, timeout, last, p.out.String())
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// errNoTestdata: the apps' sources were not found (a binary built with
// -trimpath run outside the module).
var errNoTestdata = errors.New("internal/e2e/testdata not found")

// TestdataDir is the absolute path of internal/e2e/testdata/<app>, where the
// Express and PHP apps live: found from this file's path at build time, or
// from the working directory up to go.mod.
func TestdataDir(app string) (string, error) {
	rel := filepath.Join("internal", "e2e", "testdata", app)
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(file))))
		if st, err := os.Stat(filepath.Join(root, rel)); err == nil && st.IsDir() {
			return filepath.Join(root, rel), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if st, err := os.Stat(filepath.Join(dir, rel)); err == nil && st.IsDir() {
				return filepath.Join(dir, rel), nil
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("%w (looked for %s)", errNoTestdata, rel)
}

// envList renders name=value pairs, skipping empty values.
func envList(kv ...string) []string {
	var out []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out = append(out, kv[i]+"="+kv[i+1])
		}
	}
	return out
}

// userTable renders a password table as USERS wants it: "id:password,...".
// Ids with ':' or ',' cannot be expressed; they fail the test.
func userTable(t testing.TB, users map[string]string) string {
	t.Helper()
	parts := make([]string, 0, len(users))
	for id, pw := range users {
		if id == "" || strings.ContainsAny(id, ":,") || strings.Contains(pw, ",") {
			t.Fatalf("user %q / its password cannot go into the USERS table (no ':' or ',' in ids, no ',' in passwords)", id)
		}
		parts = append(parts, id+":"+pw)
	}
	return strings.Join(parts, ",")
}
