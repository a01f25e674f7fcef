package e2e

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/faultproxy"
)

// The machine's shared PostgreSQL and MariaDB (.ci/run starts them). The
// tests only create and drop their own tables; outages go through a proxy.
const (
	pgAddr = "127.0.0.1:5432"
	myAddr = "127.0.0.1:3306"
	// Spring Security's own Argon2PasswordEncoderTests vector (v5.2 defaults).
	springArgon2   = "{argon2}$argon2id$v=19$m=4096,t=3,p=1$QUFBQUFBQUFBQUFBQUFBQQ$hmmTNyJlwbb6HAvFoHFWF+u03fdb0F2qA+39oPlcAqo"
	springArgon2PW = "sometestpassword"
	// Django's own test vector (tests/auth_tests/test_hashers.py).
	djangoPBKDF2   = "pbkdf2_sha256$390000$seasalt2$geC/uZ92nRXDSjSxeoiBqYyRcrLzMm8xK3ro1QS1uo8="
	djangoPBKDF2PW = "lètmein"
)

func needDB(t *testing.T, what string, err error) {
	t.Helper()
	citest.Unavailable(t, "%s not reachable: %v", what, err)
}

type legacyDB struct {
	name, driver string
	dsn          func(addr string) string
	query        string // %s is the table
	exec         func(t *testing.T, stmts ...string)
}

func pgExec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, "postgres://postgres@"+pgAddr+"/test?sslmode=disable")
	if err != nil {
		needDB(t, "PostgreSQL", err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func myExec(t *testing.T, stmts ...string) {
	t.Helper()
	cfg, _ := mysql.ParseDSN("root@tcp(" + myAddr + ")/test?timeout=2s")
	conn, _ := mysql.NewConnector(cfg)
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		needDB(t, "MariaDB", err)
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

var legacyDBs = []legacyDB{
	// Trust authentication ignores the password; it is there to show it
	// never reaches a log.
	{name: "postgres", driver: "pgx", dsn: func(a string) string { return "postgres://postgres:pw-s3cret@" + a + "/test?sslmode=disable" },
		query: "SELECT id::text, email, password, array_to_string(roles, ',') FROM %s WHERE lower(email) = $1 AND active",
		exec:  pgExec},
	{name: "mariadb", driver: "mysql", dsn: func(a string) string { return "root@tcp(" + a + ")/test?timeout=2s" },
		query: "SELECT id, email, password, roles FROM %s WHERE lower(email) = ? AND active",
		exec:  myExec},
}

// legacyUsers creates a users table the way the legacy app has it, with
// three hash formats, and drops it when the test ends.
func legacyUsers(t *testing.T, db legacyDB) string {
	t.Helper()
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	table := "e2e_users_" + hex.EncodeToString(rnd[:])
	bc, err := bcrypt.GenerateFromPassword([]byte("express-password"), 4)
	if err != nil {
		t.Fatal(err)
	}
	rolesType, roles := "text[]", []string{"'{admin,user}'", "'{user}'", "'{}'"}
	if db.driver == "mysql" {
		rolesType, roles = "VARCHAR(200)", []string{"'admin,user'", "'user'", "''"}
	}
	db.exec(t,
		fmt.Sprintf("CREATE TABLE %s (id INT PRIMARY KEY, email VARCHAR(320) NOT NULL, password VARCHAR(255), roles %s, active BOOLEAN NOT NULL)", table, rolesType),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'Express@Example.com', '%s', %s, true), (2, 'spring@example.com', '%s', %s, true), (3, 'django@example.com', '%s', %s, true), (4, 'gone@example.com', '%s', %s, false)",
			table, bc, roles[0], springArgon2, roles[1], djangoPBKDF2, roles[2], bc, roles[1]),
	)
	t.Cleanup(func() { db.exec(t, "DROP TABLE "+table) })
	return table
}

func sqlEnv(db legacyDB, addr, table string) []string {
	return []string{
		"TOKENSHIFT_USERS_SQL_DRIVER=" + db.driver,
		"TOKENSHIFT_USERS_SQL_DSN=" + db.dsn(addr),
		"TOKENSHIFT_USERS_SQL_QUERY=" + fmt.Sprintf(db.query, table),
		"TOKENSHIFT_USERS_SQL_QUERY_TIMEOUT=500ms",
		"TOKENSHIFT_LOG_LEVEL=info",
	}
}

// TestLegacyUsersTable runs the real binary on each database's users table:
// the three formats log in with their roles, a filtered-out account cannot,
// and password change is off (the table belongs to the legacy app).
func TestLegacyUsersTable(t *testing.T) {
	for _, db := range legacyDBs {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			table := legacyUsers(t, db)
			in := start(t, sqlEnv(db, db.addr(), table)...)
			for _, u := range []struct{ email, password, roles string }{
				{"express@example.com", "express-password", "admin,user"},
				{"SPRING@example.com", springArgon2PW, "user"},
				{"django@example.com", djangoPBKDF2PW, ""},
			} {
				m := in.login(t, u.email, u.password, "mobile").json(t)
				me := in.do(t, req{path: "/auth/me", bearer: m["access_token"].(string)}).json(t)
				var got []string
				for _, r := range me["roles"].([]any) {
					got = append(got, r.(string))
				}
				if strings.Join(got, ",") != u.roles {
					t.Errorf("%s: roles %v, want %s", u.email, got, u.roles)
				}
				expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": u.email, "password": u.password + "!"}}), 401, "invalid_credentials")
			}
			expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": "gone@example.com", "password": "express-password"}}), 401, "invalid_credentials")
			tok := in.login(t, "express@example.com", "express-password", "mobile").json(t)["access_token"].(string)
			expectProblem(t, in.do(t, req{method: "POST", path: "/auth/password", bearer: tok,
				json: map[string]string{"current_password": "express-password", "new_password": "something-new"}}), 403, "password_change_disabled")
			if logs := in.logs.String(); strings.Contains(logs, "s3cret") || !strings.Contains(logs, "user store: sql") {
				t.Fatalf("start-up log (DSN password must be masked):\n%s", logs)
			}
		})
	}
}

func (db legacyDB) addr() string {
	if db.driver == "mysql" {
		return myAddr
	}
	return pgAddr
}

// TestLegacyDatabaseOutage: with the database cut off mid-run (a proxy that
// refuses, as when the server is stopped), credentials already issued keep
// working, login answers 503 user_store_unavailable quickly, /readyz stays
// ready, and logins work again once the database is back.
func TestLegacyDatabaseOutage(t *testing.T) {
	t.Parallel()
	db := legacyDBs[0]
	table := legacyUsers(t, db)
	p := faultproxy.Start(t, pgAddr)
	in := start(t, sqlEnv(db, p.Addr(), table)...)
	lr := in.login(t, "express@example.com", "express-password", "web")
	sess := lr.cookie("ts_session")
	bearer := lr.json(t)["access_token"].(string)

	p.Set(faultproxy.Refuse)
	if r := in.do(t, req{path: "/auth/me", bearer: bearer}); r.status != 200 {
		t.Fatalf("bearer during the outage: %d %s", r.status, r.body)
	}
	if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
		t.Fatalf("session during the outage: %d %s", r.status, r.body)
	}
	began := time.Now()
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": "express@example.com", "password": "express-password"}}), 503, "user_store_unavailable")
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("503 took %s with a 500ms query timeout", d)
	}
	if r := in.do(t, req{path: "/readyz"}); r.status != 200 {
		t.Fatalf("/readyz during a user-store outage: %d %s", r.status, r.body)
	}

	p.Set(faultproxy.Forward)
	in.login(t, "express@example.com", "express-password", "web")
}

// TestLegacyDatabaseDownAtStart: serve starts while the database is down,
// answers 503 on login, and logs in as soon as the database is back.
func TestLegacyDatabaseDownAtStart(t *testing.T) {
	t.Parallel()
	db := legacyDBs[0]
	table := legacyUsers(t, db)
	p := faultproxy.Start(t, pgAddr)
	p.Set(faultproxy.Refuse)
	in := start(t, sqlEnv(db, p.Addr(), table)...)
	if !strings.Contains(in.logs.String(), "unreachable at start") || strings.Contains(in.logs.String(), "s3cret") {
		t.Fatalf("start-up log:\n%s", in.logs.String())
	}
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": "express@example.com", "password": "express-password"}}), 503, "user_store_unavailable")
	if r := in.do(t, req{path: "/readyz"}); r.status != 200 {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	p.Set(faultproxy.Forward)
	in.login(t, "express@example.com", "express-password", "web")
}

// TestLegacyQueryWrongAtStart: a database that answers and rejects the query
// stops start-up with the key to fix, exit code 2.
func TestLegacyQueryWrongAtStart(t *testing.T) {
	t.Parallel()
	db := legacyDBs[0]
	table := legacyUsers(t, db)
	for name, query := range map[string]string{
		"three columns":  "SELECT id::text, email, password FROM " + table + " WHERE email = $1",
		"missing column": "SELECT id::text, email, pw_hash, roles FROM " + table + " WHERE email = $1",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "TOKENSHIFT_USERS_SQL_DRIVER=pgx",
			"TOKENSHIFT_USERS_SQL_DSN=postgres://postgres:pw-s3cret@"+pgAddr+"/test?sslmode=disable",
			"TOKENSHIFT_USERS_SQL_QUERY="+query)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "users.sql") {
			t.Fatalf("%s: exit %v, want 2 naming users.sql:\n%s", name, err, out)
		}
		if strings.Contains(string(out), "pw-s3cret") {
			t.Fatalf("%s: the DSN password is in the output:\n%s", name, out)
		}
	}
}
