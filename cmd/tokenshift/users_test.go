package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenshift/tokenshift/internal/config"
)

// validateUsers adds the checks that need the user package to config
// validation, in its style, and never prints the DSN password.
func TestValidateUsers(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *config.Config)
		wantKey string // "" = valid
		wantVal string
	}{
		{name: "defaults"},
		{name: "pgx query with $1", mutate: func(c *config.Config) {
			c.Users.SQL.Driver, c.Users.SQL.DSN = "pgx", "postgres://app:pg-s3cret@db/app"
			c.Users.SQL.Query = "SELECT id, email, pw, roles FROM users WHERE lower(email) = $1"
		}},
		{name: "pgx query with $10", mutate: func(c *config.Config) {
			c.Users.SQL.Driver, c.Users.SQL.DSN = "pgx", "postgres://app:pg-s3cret@db/app"
			c.Users.SQL.Query = "SELECT id, email, pw, roles FROM users WHERE email = $1 OR name = $10"
		}, wantKey: "users.sql.query", wantVal: "$10"},
		{name: "mysql query with two ?", mutate: func(c *config.Config) {
			c.Users.SQL.Driver, c.Users.SQL.DSN = "mysql", "app:my-s3cret@tcp(db:3306)/app"
			c.Users.SQL.Query = "SELECT id, email, pw, roles FROM users WHERE email = ? OR name = ?"
		}, wantKey: "users.sql.query"},
		{name: "malformed pgx DSN", mutate: func(c *config.Config) {
			c.Users.SQL.Driver, c.Users.SQL.DSN = "pgx", "postgres://app:pg-s3cret@db:notaport/app"
			c.Users.SQL.Query = "SELECT id, email, pw, roles FROM users WHERE email = $1"
		}, wantKey: "users.sql.dsn", wantVal: `got "xxxxx"`},
		{name: "dummy hash beyond limits", mutate: func(c *config.Config) {
			c.Users.DummyHash = "$2b$20$abcdefghijklmnopqrstuuFiPhXf1sVd3pCCRO.uVh34H/qI/ZsuS"
		}, wantKey: "users.dummy_hash", wantVal: "bcrypt"},
		{name: "dummy hash of no known format", mutate: func(c *config.Config) { c.Users.DummyHash = "md5$salt$abc" }, wantKey: "users.dummy_hash"},
		{name: "usable dummy hash", mutate: func(c *config.Config) {
			c.Users.DummyHash = "$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(c)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("config.Validate: %v", err)
			}
			err = validateUsers(c)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("validateUsers: %v", err)
				}
				return
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("validateUsers = %v, want a ValidationError", err)
			}
			if len(ve.Fields) != 1 || ve.Fields[0].Key != tc.wantKey || !strings.Contains(ve.Fields[0].Error(), tc.wantVal) {
				t.Fatalf("fields %v, want one for %s showing %q", err, tc.wantKey, tc.wantVal)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "FiPhXf1sVd3") {
				t.Fatalf("secret or hash in %v", err)
			}
		})
	}
}
