package user

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// The example queries of docs/user-stores.md run here, against tables of the
// shapes they are written for, so the docs cannot drift from what works.

var exampleBlock = regexp.MustCompile("(?s)```sql\n-- example: ([a-z-]+)\n(.*?)```")

func docExamples(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/user-stores.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range exampleBlock.FindAllStringSubmatch(string(doc), -1) {
		out[m[1]] = strings.TrimSpace(m[2])
	}
	return out
}

// docFixture is one app's schema with one account that may log in and one
// the query must leave out.
type docFixture struct {
	pg, my    []string // DDL and rows
	login, pw string
	wantID    string
	wantEmail string
	wantRoles []string
	excluded  string // a login with the right password that must not log in
}

func docFixtures(t *testing.T) map[string]docFixture {
	bc := mustBcrypt(t, "express-pw")
	return map[string]docFixture{
		"express": {
			pg: []string{
				`CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL, password_hash text, role text, deleted_at timestamptz)`,
				`INSERT INTO users VALUES ('00000000-0000-4000-8000-000000000001', 'Alice@Example.com', '` + bc + `', 'admin', NULL),
				                         ('00000000-0000-4000-8000-000000000002', 'gone@example.com', '` + bc + `', 'user', now())`,
			},
			my: []string{
				`CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(320) NOT NULL, password_hash VARCHAR(255), role VARCHAR(50), deleted_at DATETIME NULL)`,
				`INSERT INTO users VALUES (1, 'Alice@Example.com', '` + bc + `', 'admin', NULL), (2, 'gone@example.com', '` + bc + `', 'user', NOW())`,
			},
			login: "alice@example.com", pw: "express-pw", wantEmail: "Alice@Example.com", wantRoles: []string{"admin"},
			excluded: "gone@example.com",
		},
		"spring": {
			pg: []string{
				`CREATE TABLE users (username varchar(50) PRIMARY KEY, password varchar(500) NOT NULL, enabled boolean NOT NULL)`,
				`CREATE TABLE authorities (username varchar(50) NOT NULL, authority varchar(50) NOT NULL)`,
				`INSERT INTO users VALUES ('bob@example.com', '{argon2}` + springTestArgon2 + `', true), ('off@example.com', '{argon2}` + springTestArgon2 + `', false)`,
				`INSERT INTO authorities VALUES ('bob@example.com', 'ROLE_USER'), ('bob@example.com', 'ROLE_ADMIN'), ('off@example.com', 'ROLE_USER')`,
			},
			my: []string{
				`CREATE TABLE users (username VARCHAR(50) PRIMARY KEY, password VARCHAR(500) NOT NULL, enabled BOOLEAN NOT NULL)`,
				`CREATE TABLE authorities (username VARCHAR(50) NOT NULL, authority VARCHAR(50) NOT NULL)`,
				`INSERT INTO users VALUES ('bob@example.com', '{argon2}` + springTestArgon2 + `', TRUE), ('off@example.com', '{argon2}` + springTestArgon2 + `', FALSE)`,
				`INSERT INTO authorities VALUES ('bob@example.com', 'ROLE_USER'), ('bob@example.com', 'ROLE_ADMIN'), ('off@example.com', 'ROLE_USER')`,
			},
			login: "bob@example.com", pw: "sometestpassword", wantID: "bob@example.com", wantEmail: "bob@example.com", wantRoles: []string{"admin", "user"},
			excluded: "off@example.com",
		},
		"django": {
			pg: []string{
				`CREATE TABLE auth_user (id serial PRIMARY KEY, password varchar(128) NOT NULL, is_superuser boolean NOT NULL, username varchar(150) NOT NULL UNIQUE, email varchar(254) NOT NULL, is_staff boolean NOT NULL, is_active boolean NOT NULL)`,
				`CREATE TABLE auth_group (id serial PRIMARY KEY, name varchar(150) NOT NULL UNIQUE)`,
				`CREATE TABLE auth_user_groups (id bigserial PRIMARY KEY, user_id integer NOT NULL, group_id integer NOT NULL)`,
				`INSERT INTO auth_user (id, password, is_superuser, username, email, is_staff, is_active) VALUES
				   (7, '` + djangoTestPBKDF2 + `', true, 'carol', 'carol@example.com', true, true),
				   (8, '` + djangoTestPBKDF2 + `', false, 'dan', 'dan@example.com', false, false)`,
				`INSERT INTO auth_group (id, name) VALUES (1, 'viewers'), (2, 'editors')`,
				`INSERT INTO auth_user_groups (user_id, group_id) VALUES (7, 1), (7, 2), (8, 1)`,
			},
			my: []string{
				`CREATE TABLE auth_user (id INT PRIMARY KEY, password VARCHAR(128) NOT NULL, is_superuser BOOLEAN NOT NULL, username VARCHAR(150) NOT NULL UNIQUE, email VARCHAR(254) NOT NULL, is_staff BOOLEAN NOT NULL, is_active BOOLEAN NOT NULL)`,
				`CREATE TABLE auth_group (id INT PRIMARY KEY, name VARCHAR(150) NOT NULL UNIQUE)`,
				`CREATE TABLE auth_user_groups (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, group_id INT NOT NULL)`,
				`INSERT INTO auth_user VALUES (7, '` + djangoTestPBKDF2 + `', TRUE, 'carol', 'carol@example.com', TRUE, TRUE),
				   (8, '` + djangoTestPBKDF2 + `', FALSE, 'dan', 'dan@example.com', FALSE, FALSE)`,
				`INSERT INTO auth_group VALUES (1, 'viewers'), (2, 'editors')`,
				`INSERT INTO auth_user_groups (user_id, group_id) VALUES (7, 1), (7, 2), (8, 1)`,
			},
			login: "carol@example.com", pw: "lètmein", wantID: "7", wantEmail: "carol@example.com",
			wantRoles: []string{"admin", "staff", "editors", "viewers"}, excluded: "dan@example.com",
		},
	}
}

// docSandbox makes an empty namespace on the shared server (a schema, or a
// database for MariaDB) and returns the DSN that lands in it.
func docSandbox(t *testing.T, b sqlBackend) string {
	t.Helper()
	var rnd [5]byte
	_, _ = rand.Read(rnd[:])
	name := "docs_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b.driver == "pgx" {
		c, err := pgx.Connect(ctx, pgDSN(pgAddr))
		if err != nil {
			unreachable(t, "PostgreSQL", err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if c, err := pgx.Connect(ctx, pgDSN(pgAddr)); err == nil {
				_, _ = c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
				_ = c.Close(ctx)
			}
		})
		// pgx passes unknown URL parameters to the server as settings.
		return pgDSN(pgAddr) + "&search_path=" + name
	}
	a := b.admin(t, myAddr)
	defer a.close()
	if err := a.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a := b.admin(t, myAddr)
		defer a.close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.exec(ctx, "DROP DATABASE "+name)
	})
	return strings.Replace(myDSN(myAddr), "/test?", "/"+name+"?", 1)
}

func sandboxExec(t *testing.T, driver, dsn string, stmts []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if driver == "pgx" {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		for _, s := range stmts {
			if _, err := c.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		return
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestDocExampleQueries(t *testing.T) {
	examples := docExamples(t)
	fixtures := docFixtures(t)
	for _, b := range sqlBackends {
		prefix := map[string]string{"pgx": "postgres-", "mysql": "mysql-"}[b.driver]
		for app, fx := range fixtures {
			name := prefix + app
			t.Run(name, func(t *testing.T) {
				query, ok := examples[name]
				if !ok {
					t.Fatalf("docs/user-stores.md has no example %q (found %v)", name, slices.Sorted(maps.Keys(examples)))
				}
				dsn := docSandbox(t, b)
				stmts := fx.pg
				if b.driver == "mysql" {
					stmts = fx.my
				}
				sandboxExec(t, b.driver, dsn, stmts)
				s, err := OpenSQL(context.Background(), SQLOptions{Driver: b.driver, DSN: dsn, Query: query, QueryTimeout: 2 * time.Second})
				if err != nil {
					t.Fatalf("OpenSQL with the documented query: %v", err)
				}
				defer s.Close()
				v := NewVerifier(s, nil)
				u, err := v.Verify(context.Background(), fx.login, fx.pw)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				wantID := fx.wantID
				if wantID == "" { // uuid or int, per database
					wantID = map[string]string{"pgx": "00000000-0000-4000-8000-000000000001", "mysql": "1"}[b.driver]
				}
				if u.ID != wantID || u.Email != fx.wantEmail || !slices.Equal(u.Roles, fx.wantRoles) {
					t.Fatalf("user = %+v, want id %s, email %s, roles %v", u, wantID, fx.wantEmail, fx.wantRoles)
				}
				if _, err := v.Verify(context.Background(), fx.excluded, fx.pw); !errors.Is(err, ErrInvalidCredentials) {
					t.Fatalf("excluded account %s: %v, want ErrInvalidCredentials", fx.excluded, err)
				}
			})
		}
	}
}
