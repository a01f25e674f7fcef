package user

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/faultproxy"
)

// The machine's shared PostgreSQL and MariaDB (.ci/run starts them). Tests
// never stop them: outages are simulated with tcpProxy.
const (
	pgAddr = "127.0.0.1:5432"
	myAddr = "127.0.0.1:3306"
)

func pgDSN(addr string) string { return "postgres://postgres@" + addr + "/test?sslmode=disable" }
func myDSN(addr string) string { return "root@tcp(" + addr + ")/test?parseTime=true&timeout=2s" }

// sqlBackend describes one database flavour: how to reach it, create the
// legacy table and query it.
type sqlBackend struct {
	name    string
	driver  string
	dsn     func(addr string) string
	addr    string
	sep     string
	admin   func(t *testing.T, addr string) adminConn
	ddl     string // %s is the table name
	query   string // %s is the table name
	insert  string // id, email, hash, roles, locked
	roles   func(r []string) any
	idOf    func(n int) string
	badCols string // a query with three columns
}

type adminConn interface {
	exec(ctx context.Context, query string, args ...any) error
	close()
}

type pgAdmin struct{ c *pgx.Conn }

func (a pgAdmin) exec(ctx context.Context, q string, args ...any) error {
	_, err := a.c.Exec(ctx, q, args...)
	return err
}
func (a pgAdmin) close() { _ = a.c.Close(context.Background()) }

type myAdmin struct{ db *sql.DB }

func (a myAdmin) exec(ctx context.Context, q string, args ...any) error {
	_, err := a.db.ExecContext(ctx, q, args...)
	return err
}
func (a myAdmin) close() { _ = a.db.Close() }

// unreachable skips the test, or fails it under CI=true, where .ci/run has
// started the databases and a skip would hide a broken suite.
func unreachable(t *testing.T, what string, err error) {
	t.Helper()
	citest.Unavailable(t, "%s not reachable: %v", what, err)
}

var postgresBackend = sqlBackend{
	name:   "postgres",
	driver: "pgx",
	dsn:    pgDSN,
	addr:   pgAddr,
	sep:    ",",
	admin: func(t *testing.T, addr string) adminConn {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgDSN(addr))
		if err != nil {
			unreachable(t, "PostgreSQL at "+addr, err)
		}
		return pgAdmin{c}
	},
	// uuid ids and a text[] of roles, as a Rails or Spring app might have.
	ddl:     `CREATE TABLE %s (id uuid PRIMARY KEY, email text NOT NULL, pw_hash text, roles text[], locked boolean NOT NULL DEFAULT false)`,
	query:   `SELECT id, email, pw_hash AS password_hash, array_to_string(roles, ',') AS roles FROM %s WHERE lower(email) = $1 AND NOT locked`,
	insert:  `INSERT INTO %s (id, email, pw_hash, roles, locked) VALUES ($1, $2, $3, $4, $5)`,
	roles:   func(r []string) any { return r },
	idOf:    func(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) },
	badCols: `SELECT id, email, pw_hash FROM %s WHERE lower(email) = $1`,
}

var mariadbBackend = sqlBackend{
	name:   "mariadb",
	driver: "mysql",
	dsn:    myDSN,
	addr:   myAddr,
	sep:    ";",
	admin: func(t *testing.T, addr string) adminConn {
		cfg, err := mysql.ParseDSN(myDSN(addr))
		if err != nil {
			t.Fatal(err)
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			unreachable(t, "MariaDB at "+addr, err)
		}
		return myAdmin{db}
	},
	// Integer ids and ';'-separated roles, as an Express app might have.
	ddl:     `CREATE TABLE %s (id INT PRIMARY KEY, email VARCHAR(320) NOT NULL, pw_hash VARCHAR(255), roles TEXT, locked BOOLEAN NOT NULL DEFAULT FALSE)`,
	query:   `SELECT id, email, pw_hash, roles FROM %s WHERE lower(email) = ? AND NOT locked`,
	insert:  `INSERT INTO %s (id, email, pw_hash, roles, locked) VALUES (?, ?, ?, ?, ?)`,
	roles:   func(r []string) any { return nullIfEmpty(strings.Join(r, "; ")) },
	idOf:    func(n int) string { return fmt.Sprint(n) },
	badCols: `SELECT id, email, pw_hash FROM %s WHERE lower(email) = ?`,
}

var sqlBackends = []sqlBackend{postgresBackend, mariadbBackend}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type legacyRow struct {
	n      int
	email  string
	hash   any // string or nil
	roles  []string
	locked bool
}

const (
	bcryptUserPassword = "express-bcrypt-pw"
)

// legacyRows are the accounts of the fixture table: one per hash format plus
// the awkward cases a legacy table holds.
func legacyRows(t *testing.T) []legacyRow {
	return []legacyRow{
		{n: 1, email: "Alice.Bcrypt@Example.com", hash: mustBcrypt(t, bcryptUserPassword), roles: []string{"user"}},
		{n: 2, email: "spring.argon@example.com", hash: refArgon2Vector, roles: []string{"admin", "user"}},
		{n: 3, email: "django@example.com", hash: pyDjangoVector},
		{n: 4, email: "sso-only@example.com", hash: nil, roles: []string{"user"}},
		{n: 5, email: "locked@example.com", hash: pyDjangoVector, locked: true},
		{n: 6, email: "twin@example.com", hash: pyDjangoVector},
		{n: 7, email: "TWIN@example.com", hash: pyDjangoVector},
		{n: 8, email: "spring.bcrypt@example.com", hash: "{bcrypt}" + cryptBcrypt2a, roles: []string{"user"}},
		{n: 9, email: "spring.argon2@example.com", hash: "{argon2}" + springTestArgon2},
		{n: 10, email: "spring.pbkdf2@example.com", hash: "{pbkdf2@SpringSecurity_v5_8}" + pySpringV58},
		{n: 11, email: "django.argon2@example.com", hash: djangoTestArgon2i},
		{n: 12, email: "django.bcrypt@example.com", hash: pyBcryptSHA256},
		{n: 13, email: "md5@example.com", hash: "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3"},
	}
}

// legacyTable creates a uniquely named users table, fills it and drops it when
// the test ends, so parallel runs and other engineers' data never collide.
func legacyTable(t *testing.T, b sqlBackend) string {
	t.Helper()
	return legacyTableAt(t, b, b.addr)
}

// legacyTableAt is legacyTable on the server at addr.
func legacyTableAt(t *testing.T, b sqlBackend, addr string) string {
	t.Helper()
	a := b.admin(t, addr)
	defer a.close()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	table := "users_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.exec(ctx, fmt.Sprintf(b.ddl, table)); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		// A fresh connection: the test may have restarted the server.
		a := b.admin(t, addr)
		defer a.close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.exec(ctx, "DROP TABLE "+table); err != nil {
			t.Errorf("drop table %s: %v", table, err)
		}
	})
	for _, r := range legacyRows(t) {
		if err := a.exec(ctx, fmt.Sprintf(b.insert, table), b.idOf(r.n), r.email, r.hash, b.roles(r.roles), r.locked); err != nil {
			t.Fatalf("insert %s: %v", r.email, err)
		}
	}
	return table
}

func openLegacy(t *testing.T, b sqlBackend, addr, table string, timeout time.Duration) *SQLStore {
	t.Helper()
	s, err := OpenSQL(context.Background(), SQLOptions{
		Driver:         b.driver,
		DSN:            b.dsn(addr),
		Query:          fmt.Sprintf(b.query, table),
		RolesSeparator: b.sep,
		QueryTimeout:   timeout,
	})
	if err != nil {
		t.Fatalf("OpenSQL: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLStoreLogin(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			table := legacyTable(t, b)
			s := openLegacy(t, b, b.addr, table, time.Second)
			v := NewVerifier(s, nil)
			ctx := context.Background()

			tests := []struct {
				name      string
				login     string
				password  string
				wantID    string
				wantEmail string
				wantRoles []string
				wantErr   error
			}{
				{name: "bcrypt", login: "alice.bcrypt@example.com", password: bcryptUserPassword,
					wantID: b.idOf(1), wantEmail: "Alice.Bcrypt@Example.com", wantRoles: []string{"user"}},
				{name: "argon2id", login: "spring.argon@example.com", password: vectorPassword,
					wantID: b.idOf(2), wantEmail: "spring.argon@example.com", wantRoles: []string{"admin", "user"}},
				{name: "django pbkdf2", login: "django@example.com", password: vectorPassword,
					wantID: b.idOf(3), wantEmail: "django@example.com"},
				{name: "login case and spaces ignored", login: "  ALICE.BCRYPT@example.COM ", password: bcryptUserPassword,
					wantID: b.idOf(1), wantEmail: "Alice.Bcrypt@Example.com", wantRoles: []string{"user"}},
				{name: "bcrypt wrong password", login: "alice.bcrypt@example.com", password: "express-bcrypt-PW", wantErr: ErrInvalidCredentials},
				{name: "argon2id wrong password", login: "spring.argon@example.com", password: bcryptUserPassword, wantErr: ErrInvalidCredentials},
				{name: "django wrong password", login: "django@example.com", password: vectorPassword + " ", wantErr: ErrInvalidCredentials},
				{name: "unknown user", login: "nobody@example.com", password: vectorPassword, wantErr: ErrInvalidCredentials},
				{name: "null password hash", login: "sso-only@example.com", password: vectorPassword, wantErr: ErrInvalidCredentials},
				{name: "filtered out by the query", login: "locked@example.com", password: vectorPassword, wantErr: ErrInvalidCredentials},
				{name: "two rows for one login", login: "twin@example.com", password: vectorPassword, wantErr: ErrSQLConfig},
				{name: "spring {bcrypt}", login: "spring.bcrypt@example.com", password: cryptBcrypt2aPW,
					wantID: b.idOf(8), wantEmail: "spring.bcrypt@example.com", wantRoles: []string{"user"}},
				{name: "spring {argon2}", login: "spring.argon2@example.com", password: "sometestpassword",
					wantID: b.idOf(9), wantEmail: "spring.argon2@example.com"},
				{name: "spring {pbkdf2@SpringSecurity_v5_8}", login: "spring.pbkdf2@example.com", password: pySpringV58PW,
					wantID: b.idOf(10), wantEmail: "spring.pbkdf2@example.com"},
				{name: "django argon2", login: "django.argon2@example.com", password: "secret",
					wantID: b.idOf(11), wantEmail: "django.argon2@example.com"},
				{name: "django bcrypt_sha256", login: "django.bcrypt@example.com", password: pyBcryptSHA256PW,
					wantID: b.idOf(12), wantEmail: "django.bcrypt@example.com"},
				{name: "unsupported format fails closed", login: "md5@example.com", password: "lètmein", wantErr: ErrInvalidCredentials},
				{name: "injection attempt is just a login", login: "' OR '1'='1", password: vectorPassword, wantErr: ErrInvalidCredentials},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					u, err := v.Verify(ctx, tc.login, tc.password)
					if tc.wantErr != nil {
						if !errors.Is(err, tc.wantErr) {
							t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
						}
						return
					}
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if u.ID != tc.wantID || u.Email != tc.wantEmail || !slices.Equal(u.Roles, tc.wantRoles) {
						t.Fatalf("user = %+v, want id %s email %s roles %v", u, tc.wantID, tc.wantEmail, tc.wantRoles)
					}
				})
			}

			for login, want := range map[string]error{
				"nobody@example.com":   auth.ErrNotFound,
				"sso-only@example.com": auth.ErrNotFound,
				"":                     auth.ErrNotFound,
				"twin@example.com":     ErrSQLConfig,
			} {
				if _, err := s.Lookup(ctx, login); !errors.Is(err, want) || errors.Is(err, auth.ErrUnavailable) {
					t.Errorf("Lookup(%q) error = %v, want %v", login, err, want)
				}
			}
		})
	}
}

func TestOpenSQLRejectsBadOptions(t *testing.T) {
	good := SQLOptions{Driver: "pgx", DSN: pgDSN(pgAddr), Query: "SELECT id, email, h, r FROM users WHERE email = $1"}
	tests := []struct {
		name   string
		change func(o *SQLOptions)
	}{
		{name: "empty driver", change: func(o *SQLOptions) { o.Driver = "" }},
		{name: "unknown driver", change: func(o *SQLOptions) { o.Driver = "sqlite" }},
		{name: "empty DSN", change: func(o *SQLOptions) { o.DSN = "" }},
		{name: "empty query", change: func(o *SQLOptions) { o.Query = "  " }},
		{name: "pgx query with ? placeholder", change: func(o *SQLOptions) { o.Query = "SELECT id, email, h, r FROM users WHERE email = ?" }},
		{name: "pgx query with two parameters", change: func(o *SQLOptions) { o.Query += " OR name = $2" }},
		{name: "pgx query with $10", change: func(o *SQLOptions) { o.Query = "SELECT id, email, h, r FROM users WHERE email = $10" }},
		{name: "pgx query with $1 only in a literal", change: func(o *SQLOptions) { o.Query = "SELECT id, email, h, r FROM users WHERE email = '$1'" }},
		{name: "mysql query with two ?", change: func(o *SQLOptions) {
			o.Driver, o.DSN, o.Query = "mysql", myDSN(myAddr), "SELECT id, email, h, r FROM users WHERE email = ? OR name = ?"
		}},
		{name: "mysql query with $1 placeholder", change: func(o *SQLOptions) { o.Driver, o.DSN = "mysql", myDSN(myAddr) }},
		{name: "negative max open", change: func(o *SQLOptions) { o.MaxOpenConns = -1 }},
		{name: "negative timeout", change: func(o *SQLOptions) { o.QueryTimeout = -time.Second }},
		{name: "negative lifetime", change: func(o *SQLOptions) { o.ConnMaxLifetime = -time.Second }},
		{name: "idle above open", change: func(o *SQLOptions) { o.MaxOpenConns, o.MaxIdleConns = 2, 3 }},
		{name: "malformed pgx DSN", change: func(o *SQLOptions) { o.DSN = "postgres://u:hunter2-secret@127.0.0.1:notaport/db" }},
		{name: "malformed mysql DSN", change: func(o *SQLOptions) {
			o.Driver, o.DSN, o.Query = "mysql", "root:hunter2-secret@tcp(127.0.0.1:3306/db", "SELECT 1, 2, 3, 4 FROM t WHERE e = ?"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			s, err := OpenSQL(context.Background(), o)
			if !errors.Is(err, ErrSQLConfig) || errors.Is(err, auth.ErrUnavailable) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("OpenSQL error = %v, want ErrSQLConfig", err)
			}
			if strings.Contains(err.Error(), "hunter2-secret") {
				t.Fatalf("error leaks the DSN password: %v", err)
			}
		})
	}
}

func TestOpenSQLServerRejectsQuery(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			table := legacyTable(t, b)
			ph := "$1"
			if b.driver == "mysql" {
				ph = "?"
			}
			tests := []struct {
				name  string
				dsn   string
				query string
			}{
				{name: "three columns", dsn: b.dsn(b.addr), query: fmt.Sprintf(b.badCols, table)},
				{name: "five columns", dsn: b.dsn(b.addr), query: fmt.Sprintf("SELECT id, email, pw_hash, roles, locked FROM %s WHERE email = %s", table, ph)},
				{name: "missing table", dsn: b.dsn(b.addr), query: fmt.Sprintf(b.query, table+"_missing")},
				{name: "missing column", dsn: b.dsn(b.addr), query: fmt.Sprintf("SELECT id, email, password, roles FROM %s WHERE email = %s", table, ph)},
				{name: "syntax error", dsn: b.dsn(b.addr), query: "SELEC id FROM x WHERE a = " + ph},
				{name: "unknown database", dsn: strings.Replace(b.dsn(b.addr), "/test?", "/no_such_db_tokenshift?", 1), query: fmt.Sprintf(b.query, table)},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					s, err := OpenSQL(context.Background(), SQLOptions{Driver: b.driver, DSN: tc.dsn, Query: tc.query})
					if err == nil {
						_ = s.Close()
					}
					if !errors.Is(err, ErrSQLConfig) || errors.Is(err, auth.ErrUnavailable) {
						t.Fatalf("OpenSQL error = %v, want ErrSQLConfig", err)
					}
				})
			}
		})
	}
}

func TestSQLStorePoolLimits(t *testing.T) {
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			table := legacyTable(t, b)
			s, err := OpenSQL(context.Background(), SQLOptions{
				Driver: b.driver, DSN: b.dsn(b.addr), Query: fmt.Sprintf(b.query, table), RolesSeparator: b.sep,
				MaxOpenConns: 2, MaxIdleConns: 1,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := s.db.Stats().MaxOpenConnections; got != 2 {
				t.Fatalf("MaxOpenConnections = %d, want 2", got)
			}
			if s.timeout != DefaultSQLQueryTimeout {
				t.Fatalf("query timeout = %v, want default %v", s.timeout, DefaultSQLQueryTimeout)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 20)
			for range 20 {
				wg.Go(func() {
					if _, err := s.Lookup(context.Background(), "django@example.com"); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("concurrent Lookup: %v", err)
			}
			if st := s.db.Stats(); st.OpenConnections > 2 || st.Idle > 1 {
				t.Fatalf("pool holds %d open, %d idle connections; limits 2 and 1", st.OpenConnections, st.Idle)
			}
		})
	}
}

func TestOpenSQLDatabaseDown(t *testing.T) {
	// A port nobody listens on: the listener is closed before OpenSQL dials.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			start := time.Now()
			_, err := OpenSQL(context.Background(), SQLOptions{
				Driver: b.driver, DSN: b.dsn(addr), Query: fmt.Sprintf(b.query, "users"), QueryTimeout: 500 * time.Millisecond,
			})
			if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, ErrSQLConfig) {
				t.Fatalf("OpenSQL error = %v, want auth.ErrUnavailable", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("OpenSQL took %v against a closed port", d)
			}
		})
	}
}

// TestSQLStoreDatabaseOutage cuts the network between the store and the
// database mid-test: first a black hole (packets vanish, the worst case: only
// the timeout ends a query), then refused connections (the server process
// gone), each followed by recovery.
func TestSQLStoreDatabaseOutage(t *testing.T) {
	const timeout = 500 * time.Millisecond
	for _, b := range sqlBackends {
		t.Run(b.name, func(t *testing.T) {
			table := legacyTable(t, b)
			p := faultproxy.Start(t, b.addr)
			s := openLegacy(t, b, p.Addr(), table, timeout)
			v := NewVerifier(s, nil)
			ctx := context.Background()

			login := func() error {
				_, err := v.Verify(ctx, "django@example.com", vectorPassword)
				return err
			}
			if err := login(); err != nil {
				t.Fatalf("login through the proxy: %v", err)
			}

			// A restart while the store is idle leaves the pool full of dead
			// connections; the next login must not fail on one of them.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() { _, _ = s.Lookup(ctx, "django@example.com") })
			}
			wg.Wait()
			if idle := s.db.Stats().Idle; idle < 2 {
				t.Fatalf("pool warm-up left %d idle connections, want at least 2", idle)
			}
			p.Set(faultproxy.Refuse)
			p.Set(faultproxy.Forward)
			for i := range 3 {
				if err := login(); err != nil {
					t.Fatalf("login %d after a restart while idle: %v", i, err)
				}
			}

			for _, mode := range []faultproxy.Mode{faultproxy.Blackhole, faultproxy.Refuse} {
				p.Set(mode)
				for i := range 2 { // the second attempt meets a fresh connection
					start := time.Now()
					_, err := s.Lookup(ctx, "django@example.com")
					d := time.Since(start)
					t.Logf("%s attempt %d: %v after %v", mode, i, err, d.Round(time.Millisecond))
					if !errors.Is(err, auth.ErrUnavailable) {
						t.Fatalf("%s attempt %d: Lookup error = %v, want auth.ErrUnavailable", mode, i, err)
					}
					if d > timeout+700*time.Millisecond {
						t.Fatalf("%s attempt %d: Lookup took %v, timeout is %v", mode, i, d, timeout)
					}
				}
				// What the login handler sees: not "invalid credentials", so it
				// answers 503 user_store_unavailable rather than blaming the user.
				if err := login(); !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("%s: Verify error = %v, want auth.ErrUnavailable", mode, err)
				}

				p.Set(faultproxy.Forward)
				if err := login(); err != nil {
					t.Fatalf("after %s healed: first login = %v", mode, err)
				}
				if err := login(); err != nil {
					t.Fatalf("after %s healed: second login = %v", mode, err)
				}
			}
		})
	}
}
