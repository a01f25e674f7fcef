package legacyapps

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// DjangoPython is the interpreter of the Django project: Debian's, which has
// python3-django and python3-psycopg2 (a python3 earlier on PATH, such as a
// pyenv one, usually has neither).
const DjangoPython = "/usr/bin/python3"

// djangoProject is the project's source, copied into a temp dir per start
// (all: keeps __init__.py).
//
//go:embed all:djangoproject
var djangoProject embed.FS

// DjangoUser is one row of auth_user, created with Django's create_user (its
// default hasher, PBKDF2-SHA256).
type DjangoUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
}

// DjangoOptions configures the Django project.
type DjangoOptions struct {
	// Users are created before the app starts; their ids are in UserIDs.
	Users []DjangoUser
	// SecretKey is settings.SECRET_KEY; default a random one.
	SecretKey string
	// SessionCookieAge is settings.SESSION_COOKIE_AGE (expire_date of new
	// sessions); zero = Django's two weeks.
	SessionCookieAge time.Duration
	// PostgresAddr is the PostgreSQL server (trust authentication, user
	// postgres); default 127.0.0.1:5432. A database legacy_<random> is
	// created on it for this app and dropped at cleanup.
	PostgresAddr string
}

// DjangoApp is a running Django project. Its Login does Django's CSRF dance
// (GET /login/, then POST the form with csrfmiddlewaretoken and the
// csrftoken cookie); the session cookie is "sessionid".
type DjangoApp struct {
	*App
	// DSN reaches the app's database as user postgres (pgx form,
	// postgres://postgres@host:port/legacy_<random>?sslmode=disable): its
	// django_session and auth_user tables.
	DSN string
	// Database is the database's name, legacy_<random>.
	Database string
	// SecretKey is the project's SECRET_KEY, which signs session_data.
	SecretKey string
	// UserIDs maps each username to its auth_user.id (as a string).
	UserIDs map[string]string

	dir string
}

// StartDjango creates a fresh PostgreSQL database, writes the project into a
// temp dir, migrates it, creates o.Users, and runs `manage.py runserver
// --noreload` with Debian's python3 on a free loopback port.
func StartDjango(t testing.TB, o DjangoOptions) *DjangoApp {
	t.Helper()
	if _, err := os.Stat(DjangoPython); err != nil {
		citest.Unavailable(t, "%s not found (Debian: apt-get install python3-django python3-psycopg2)", DjangoPython)
	}
	if out, err := exec.Command(DjangoPython, "-c", "import django, psycopg2").CombinedOutput(); err != nil {
		citest.Unavailable(t, "%s cannot import django and psycopg2 (Debian: apt-get install python3-django python3-psycopg2): %v\n%s", DjangoPython, err, out)
	}
	if o.PostgresAddr == "" {
		o.PostgresAddr = "127.0.0.1:5432"
	}
	host, port, ok := strings.Cut(o.PostgresAddr, ":")
	if !ok {
		t.Fatalf("legacyapps.StartDjango: PostgresAddr %q is not host:port", o.PostgresAddr)
	}
	if o.SecretKey == "" {
		o.SecretKey = "django-insecure-" + randomHex(t, 24)
	}
	db := "legacy_" + randomHex(t, 6)
	createDatabase(t, o.PostgresAddr, db)

	dir := t.TempDir()
	if err := copyProject(dir); err != nil {
		t.Fatalf("write the Django project: %v", err)
	}
	config, _ := json.Marshal(map[string]any{
		"secret_key":         o.SecretKey,
		"db_name":            db,
		"db_user":            "postgres",
		"db_host":            host,
		"db_port":            port,
		"session_cookie_age": int(o.SessionCookieAge / time.Second),
	})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &DjangoApp{
		DSN:       "postgres://postgres@" + o.PostgresAddr + "/" + db + "?sslmode=disable",
		Database:  db,
		SecretKey: o.SecretKey,
		UserIDs:   map[string]string{},
		dir:       dir,
	}
	d.runSetup(t, true, o.Users)

	httpPort := redistest.FreePort(t)
	p := startProcess(t, "django app", dir, pythonEnv(),
		DjangoPython, "manage.py", "runserver", "--noreload", "127.0.0.1:"+strconv.Itoa(httpPort))
	d.App = &App{
		URL: "http://127.0.0.1:" + strconv.Itoa(httpPort), CookieName: "sessionid",
		proc: p, client: newClient(), mePath: "/me", logoutPath: "/logout",
	}
	d.login = d.formLogin
	waitReady(t, p, d.URL+"/login/", 200, 20*time.Second)
	return d
}

// AddUser creates one more user with Django's create_user and returns its id.
func (d *DjangoApp) AddUser(t testing.TB, u DjangoUser) string {
	t.Helper()
	d.runSetup(t, false, []DjangoUser{u})
	return d.UserIDs[u.Username]
}

// PasswordChange is one call of the app's POST /password: set_password +
// save, as a password-change or reset form does.
type PasswordChange struct {
	// Cookie is the session the request carries (nil: none).
	Cookie *http.Cookie
	// Username names the user; empty = the session's user.
	Username string
	// Password is the new password.
	Password string
	// KeepSession calls update_session_auth_hash: the changing session (the
	// Cookie's) stays logged in under a new key; without it every session of
	// the user ends.
	KeepSession bool
}

// ChangePassword changes a user's password through the Django app and
// returns the new session cookie when KeepSession made one (else nil); the
// test fails unless the app answers 200.
func (d *DjangoApp) ChangePassword(t testing.TB, c PasswordChange) *http.Cookie {
	t.Helper()
	payload, _ := json.Marshal(map[string]any{"username": c.Username, "password": c.Password, "keep_session": c.KeepSession})
	req, err := http.NewRequest(http.MethodPost, d.URL+"/password", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Cookie != nil {
		req.AddCookie(&http.Cookie{Name: c.Cookie.Name, Value: c.Cookie.Value})
	}
	resp, body := d.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/password: status %d: %q", d.URL, resp.StatusCode, body)
	}
	return cookieNamed(resp, d.CookieName)
}

var csrfInput = regexp.MustCompile(`name="csrfmiddlewaretoken" value="([^"]+)"`)

// formLogin is Django's LoginView as a browser uses it. A refused login
// re-renders the form (200, no session cookie).
func (d *DjangoApp) formLogin(t testing.TB, user, password string) (*http.Cookie, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.URL+"/login/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := d.do(t, req)
	csrfCookie := cookieNamed(resp, "csrftoken")
	m := csrfInput.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || csrfCookie == nil || m == nil {
		t.Fatalf("GET %s/login/: status %d, csrftoken cookie %v, form %q", d.URL, resp.StatusCode, csrfCookie != nil, body)
	}
	form := url.Values{
		"username":            {user},
		"password":            {password},
		"csrfmiddlewaretoken": {html.UnescapeString(string(m[1]))},
	}
	req, err = http.NewRequest(http.MethodPost, d.URL+"/login/", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrfCookie.Name, Value: csrfCookie.Value})
	resp, body = d.do(t, req)
	if resp.StatusCode == http.StatusForbidden {
		t.Fatalf("POST %s/login/: 403 (CSRF refused): %q", d.URL, body)
	}
	if resp.StatusCode != http.StatusFound {
		return nil, resp.StatusCode
	}
	return cookieNamed(resp, d.CookieName), resp.StatusCode
}

// runSetup runs tssetup.py: the migrations (migrate) and the users' creation,
// in one interpreter.
func (d *DjangoApp) runSetup(t testing.TB, migrate bool, users []DjangoUser) {
	t.Helper()
	if users == nil {
		users = []DjangoUser{}
	}
	in, _ := json.Marshal(users)
	args := []string{"tssetup.py"}
	if migrate {
		args = append(args, "migrate")
	}
	cmd := exec.Command(DjangoPython, args...)
	cmd.Dir = d.dir
	cmd.Env = append(os.Environ(), pythonEnv()...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("django tssetup.py %v: %v\n%s", args[1:], err, stderr.String())
	}
	var ids map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(lastLine(out)), &ids); err != nil {
		t.Fatalf("django tssetup.py: want the users' ids as JSON, got %q (%v)", out, err)
	}
	for name, id := range ids {
		d.UserIDs[name] = id
	}
	t.Logf("django setup (migrate=%v, %d users): %s", migrate, len(users), time.Since(start).Round(time.Millisecond))
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// pythonEnv keeps a developer's Python environment (a pyenv's PYTHONPATH,
// PYTHONHOME) out of Debian's interpreter.
func pythonEnv() []string {
	return []string{
		"PYTHONPATH=", "PYTHONHOME=", "PYTHONSTARTUP=",
		"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
		"DJANGO_SETTINGS_MODULE=legacyproj.settings",
	}
}

// createDatabase makes db on the PostgreSQL server at addr and drops it at
// cleanup (WITH (FORCE): a tokenshift under test may still hold connections).
func createDatabase(t testing.TB, addr, db string) {
	t.Helper()
	admin := "postgres://postgres@" + addr + "/postgres?sslmode=disable&connect_timeout=5"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		citest.Unavailable(t, "PostgreSQL not reachable at %s: %v", addr, err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", db, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", db, err)
		}
	})
}

// copyProject writes the embedded project into dir.
func copyProject(dir string) error {
	root := "djangoproject"
	return fs.WalkDir(djangoProject, root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := djangoProject.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
