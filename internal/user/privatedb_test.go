package user

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/faultproxy"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// privateDB is a database server of the test's own, in a temporary data
// directory on a free port, that the test may stop and start at will. The
// machine's shared servers are never stopped.
//
// PostgreSQL and MariaDB refuse to run as root; a root test runs them as their
// system users (postgres, mysql), which own the data directory.
type privateDB struct {
	t    *testing.T
	name string
	dir  string
	port int
	cred *syscall.Credential
	// server builds the command that runs the server in the foreground.
	server func() *exec.Cmd
	// stopSig asks the server to shut down, closing client connections.
	stopSig os.Signal
	cmd     *exec.Cmd
	done    chan error
}

func (p *privateDB) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// unavailableHere skips, or fails under CI=true where nothing may skip.
func unavailableHere(t *testing.T, format string, args ...any) {
	t.Helper()
	citest.Unavailable(t, "private database server unavailable: "+format, args...)
}

// serviceUser is who runs the server: the current user, or sysUser for root.
func serviceUser(t *testing.T, sysUser string) *syscall.Credential {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(sysUser)
	if err != nil {
		unavailableHere(t, "running as root and there is no %s user: %v", sysUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// dataDir is a fresh directory the server's user owns. It is not under
// t.TempDir(), whose parents only root may enter.
func dataDir(t *testing.T, cred *syscall.Credential, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func (p *privateDB) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = p.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	return cmd
}

func (p *privateDB) run(name string, args ...string) {
	p.t.Helper()
	out, err := p.command(name, args...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// start runs the server and waits until ready answers.
func (p *privateDB) start(ready func(context.Context) error) {
	p.t.Helper()
	p.cmd = p.server()
	log, err := os.OpenFile(filepath.Join(p.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		_ = log.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait(); _ = log.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case werr := <-p.done:
			out, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
			p.t.Fatalf("%s exited at start: %v\n%s", p.name, werr, out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
			p.t.Fatalf("%s not ready after 30s: %v\n%s", p.name, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down the way an operator's restart does: it closes
// every client connection and exits.
func (p *privateDB) stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.t.Errorf("%s ignored %v for 20s and was killed", p.name, p.stopSig)
	}
	p.cmd = nil
}

func (p *privateDB) kill() {
	if p.cmd != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.cmd = nil
	}
}

func pgReady(addr, db string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, "postgres://postgres@"+addr+"/"+db+"?sslmode=disable")
		if err != nil {
			return err
		}
		return c.Close(ctx)
	}
}

func myReady(addr, db string) func(context.Context) error {
	return func(ctx context.Context) error {
		cfg, err := mysql.ParseDSN("root@tcp(" + addr + ")/" + db + "?timeout=1s")
		if err != nil {
			return err
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return err
		}
		d := sql.OpenDB(c)
		defer d.Close()
		return d.PingContext(ctx)
	}
}

// startPrivatePostgres runs initdb into a temporary directory and starts
// postgres on a free port with trust authentication, and a database "test".
func startPrivatePostgres(t *testing.T) *privateDB {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		unavailableHere(t, "no /usr/lib/postgresql/*/bin/initdb")
	}
	slices.Sort(bins) // the newest major version last
	bin := filepath.Dir(bins[len(bins)-1])
	p := &privateDB{t: t, name: "private postgres", port: redistest.FreePort(t), stopSig: syscall.SIGINT}
	p.cred = serviceUser(t, "postgres")
	p.dir = dataDir(t, p.cred, "tokenshift-pg-")
	data := filepath.Join(p.dir, "data")
	p.run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	p.server = func() *exec.Cmd {
		return p.command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(p.port), "-k", p.dir,
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=20")
	}
	t.Cleanup(p.kill)
	p.start(pgReady(p.addr(), "postgres"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://postgres@"+p.addr()+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE test"); err != nil {
		t.Fatal(err)
	}
	return p
}

// startPrivateMariaDB runs mariadb-install-db into a temporary directory and
// starts mariadbd on a free port, root without a password, and a database
// "test".
func startPrivateMariaDB(t *testing.T) *privateDB {
	t.Helper()
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		unavailableHere(t, "no mariadb-install-db: %v", err)
	}
	server := "/usr/sbin/mariadbd"
	if _, err := os.Stat(server); err != nil {
		unavailableHere(t, "no %s: %v", server, err)
	}
	p := &privateDB{t: t, name: "private mariadb", port: redistest.FreePort(t), stopSig: syscall.SIGTERM}
	p.cred = serviceUser(t, "mysql")
	p.dir = dataDir(t, p.cred, "tokenshift-my-")
	data := filepath.Join(p.dir, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}
	if p.cred != nil {
		args = append(args, "--user=mysql")
	}
	p.run(install, args...)
	p.server = func() *exec.Cmd {
		return p.command(server, "--no-defaults", "--datadir="+data, "--port="+strconv.Itoa(p.port), "--bind-address=127.0.0.1",
			"--socket="+filepath.Join(p.dir, "sock"), "--pid-file="+filepath.Join(p.dir, "pid"), "--skip-log-bin",
			"--innodb-buffer-pool-size=16M", "--skip-name-resolve")
	}
	t.Cleanup(p.kill)
	p.start(myReady(p.addr(), ""))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := mysql.ParseDSN("root@tcp(" + p.addr() + ")/?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := sql.OpenDB(c)
	defer d.Close()
	if _, err := d.ExecContext(ctx, "CREATE DATABASE test"); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSQLStoreServerStoppedMidTest stops a real server under the store, the
// outage the TCP-proxy tests imitate: the server closes its connections and
// exits. Logins must answer "unavailable" (503) within the query timeout,
// never "invalid credentials", and recover once the server is back, without a
// restart of ours.
func TestSQLStoreServerStoppedMidTest(t *testing.T) {
	const timeout = 500 * time.Millisecond
	backends := []struct {
		b     sqlBackend
		start func(*testing.T) *privateDB
		ready func(addr string) func(context.Context) error
	}{
		{postgresBackend, startPrivatePostgres, func(a string) func(context.Context) error { return pgReady(a, "test") }},
		{mariadbBackend, startPrivateMariaDB, func(a string) func(context.Context) error { return myReady(a, "test") }},
	}
	for _, be := range backends {
		t.Run(be.b.name, func(t *testing.T) {
			t.Parallel()
			db := be.start(t)
			table := legacyTableAt(t, be.b, db.addr())
			s := openLegacy(t, be.b, db.addr(), table, timeout)
			v := NewVerifier(s, nil)
			ctx := context.Background()
			login := func() error {
				_, err := v.Verify(ctx, "django@example.com", vectorPassword)
				return err
			}
			if err := login(); err != nil {
				t.Fatalf("login before the stop: %v", err)
			}

			db.stop()
			for i := range 2 {
				start := time.Now()
				_, err := s.Lookup(ctx, "django@example.com")
				d := time.Since(start)
				t.Logf("server stopped, lookup %d: %v after %v", i, err, d.Round(time.Millisecond))
				if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, ErrSQLConfig) {
					t.Fatalf("lookup %d with the server stopped = %v, want auth.ErrUnavailable", i, err)
				}
				if d > timeout+time.Second {
					t.Fatalf("lookup %d took %v, timeout %v", i, d, timeout)
				}
			}
			if err := login(); !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("login with the server stopped = %v, want auth.ErrUnavailable", err)
			}
			if err := s.Probe(ctx); !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("probe with the server stopped = %v", err)
			}

			db.start(be.ready(db.addr()))
			for i := range 3 {
				if err := login(); err != nil {
					t.Fatalf("login %d after the restart: %v", i, err)
				}
			}
			if err := s.Probe(ctx); err != nil {
				t.Fatalf("probe after the restart: %v", err)
			}
		})
	}
}

// A store opened while its database is down (NewSQL, as serve does) answers
// unavailable, then works as soon as the database is reachable.
func TestNewSQLWhileDatabaseDown(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			table := legacyTable(t, b)
			p := faultproxy.Start(t, b.addr)
			p.Set(faultproxy.Refuse)
			s, err := NewSQL(SQLOptions{Driver: b.driver, DSN: b.dsn(p.Addr()), Query: fmt.Sprintf(b.query, table),
				RolesSeparator: b.sep, QueryTimeout: 500 * time.Millisecond})
			if err != nil {
				t.Fatalf("NewSQL with the database down: %v", err)
			}
			defer s.Close()
			ctx := context.Background()
			if err := s.Probe(ctx); !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("Probe = %v, want auth.ErrUnavailable", err)
			}
			v := NewVerifier(s, nil)
			if _, err := v.Verify(ctx, "django@example.com", vectorPassword); !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("Verify = %v, want auth.ErrUnavailable", err)
			}
			p.Set(faultproxy.Forward)
			if err := s.Probe(ctx); err != nil {
				t.Fatalf("Probe after the database came up: %v", err)
			}
			if _, err := v.Verify(ctx, "django@example.com", vectorPassword); err != nil {
				t.Fatalf("Verify after the database came up: %v", err)
			}
		})
	}
}
