package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const testDSN = "postgres://app:pg-s3cret@db:5432/legacy"

func withSQL(c *Config) {
	c.Users.SQL.Driver = "pgx"
	c.Users.SQL.DSN = testDSN
	c.Users.SQL.Query = "SELECT id, email, pw, roles FROM users WHERE lower(email) = $1"
}

func TestValidateUsers(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string // "" = valid
		wantVal string
	}{
		{name: "sql store", mutate: withSQL},
		{name: "file and sql", mutate: func(c *Config) { withSQL(c); c.Users.File = "/u.yaml" }, wantKey: "users.file", wantVal: "/u.yaml"},
		{name: "sql without driver", mutate: func(c *Config) { withSQL(c); c.Users.SQL.Driver = "" }, wantKey: "users.sql.driver"},
		{name: "sql unknown driver", mutate: func(c *Config) { withSQL(c); c.Users.SQL.Driver = "sqlite" }, wantKey: "users.sql.driver", wantVal: "sqlite"},
		{name: "sql without query", mutate: func(c *Config) { withSQL(c); c.Users.SQL.Query = "" }, wantKey: "users.sql.query"},
		{name: "query without dsn", mutate: func(c *Config) { c.Users.SQL.Query = "SELECT 1" }, wantKey: "users.sql.query"},
		{name: "driver without dsn", mutate: func(c *Config) { c.Users.SQL.Driver = "mysql" }, wantKey: "users.sql.driver", wantVal: "mysql"},
		{name: "empty separator", mutate: func(c *Config) { c.Users.SQL.RolesSeparator = "" }, wantKey: "users.sql.roles_separator"},
		{name: "no connections", mutate: func(c *Config) { c.Users.SQL.MaxOpenConns = 0 }, wantKey: "users.sql.max_open_conns", wantVal: "0"},
		{name: "idle above open", mutate: func(c *Config) { c.Users.SQL.MaxIdleConns = 11 }, wantKey: "users.sql.max_idle_conns", wantVal: "11"},
		{name: "lifetime", mutate: func(c *Config) { c.Users.SQL.ConnMaxLifetime = 0 }, wantKey: "users.sql.conn_max_lifetime"},
		{name: "query timeout", mutate: func(c *Config) { c.Users.SQL.QueryTimeout = time.Hour }, wantKey: "users.sql.query_timeout"},
		{name: "password change switch", mutate: func(c *Config) { c.Users.AllowPasswordChange = "yes" }, wantKey: "users.allow_password_change", wantVal: "yes"},
		{name: "password cost above the verify limit", mutate: func(c *Config) { c.Users.PasswordCost = 16 }, wantKey: "users.password_cost", wantVal: "16"},
		{name: "bcrypt limit", mutate: func(c *Config) { c.Users.HashLimits.BcryptMaxCost = 40 }, wantKey: "users.hash_limits.bcrypt_max_cost", wantVal: "40"},
		{name: "pbkdf2 limit", mutate: func(c *Config) { c.Users.HashLimits.PBKDF2MaxWork = 0 }, wantKey: "users.hash_limits.pbkdf2_max_work"},
		{name: "argon2 memory", mutate: func(c *Config) { c.Users.HashLimits.Argon2MaxMemoryKiB = 4 }, wantKey: "users.hash_limits.argon2_max_memory_kib"},
		{name: "argon2 work", mutate: func(c *Config) { c.Users.HashLimits.Argon2MaxWork = -1 }, wantKey: "users.hash_limits.argon2_max_work"},
		{name: "argon2 threads", mutate: func(c *Config) { c.Users.HashLimits.Argon2MaxThreads = 300 }, wantKey: "users.hash_limits.argon2_max_threads", wantVal: "300"},
		{name: "concurrency", mutate: func(c *Config) { c.Users.HashLimits.MaxConcurrent = -2 }, wantKey: "users.hash_limits.max_concurrent"},
		{name: "queue timeout", mutate: func(c *Config) { c.Users.HashLimits.QueueTimeout = 0 }, wantKey: "users.hash_limits.queue_timeout"},
		{name: "warning interval", mutate: func(c *Config) { c.Users.HashWarningInterval = time.Millisecond }, wantKey: "users.hash_warning_interval"},
		{name: "spring algorithm", mutate: func(c *Config) { c.Users.SpringPBKDF2.Algorithm = "md5" }, wantKey: "users.spring_pbkdf2.algorithm", wantVal: "md5"},
		{name: "spring iterations", mutate: func(c *Config) { c.Users.SpringPBKDF2.Iterations = 0 }, wantKey: "users.spring_pbkdf2.iterations"},
		{name: "spring salt", mutate: func(c *Config) { c.Users.SpringPBKDF2.SaltLength = 100 }, wantKey: "users.spring_pbkdf2.salt_length"},
		{name: "spring encoding", mutate: func(c *Config) { c.Users.SpringPBKDF2.Encoding = "b32" }, wantKey: "users.spring_pbkdf2.encoding"},
		{name: "production with sql instead of a file", mutate: func(c *Config) {
			withSQL(c)
			c.Env, c.JWT.KeysDir, c.Session.CookieSecure, c.Server.PublicURL = "production", "/k", true, "https://a.example"
		}},
		{name: "production password cost", mutate: func(c *Config) {
			withSQL(c)
			c.Env, c.JWT.KeysDir, c.Session.CookieSecure, c.Server.PublicURL = "production", "/k", true, "https://a.example"
			c.Users.PasswordCost = 8
		}, wantKey: "users.password_cost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(c)
			err = c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			var f *FieldError
			for _, fe := range ve.Fields {
				if fe.Key == tc.wantKey {
					f = fe
				}
			}
			if f == nil {
				t.Fatalf("no error for %s in:\n%v", tc.wantKey, err)
			}
			if tc.wantVal != "" && !strings.Contains(f.Error(), tc.wantVal) {
				t.Fatalf("%q does not show the value %q", f.Error(), tc.wantVal)
			}
			if strings.Contains(err.Error(), "pg-s3cret") {
				t.Fatalf("DSN password in %v", err)
			}
		})
	}
}

func TestUsersFromEnv(t *testing.T) {
	t.Setenv("TOKENSHIFT_USERS_SQL_DRIVER", "mysql")
	t.Setenv("TOKENSHIFT_USERS_SQL_DSN", "app:my-s3cret@tcp(db:3306)/legacy")
	t.Setenv("TOKENSHIFT_USERS_SQL_QUERY", "SELECT id, email, pw, roles FROM users WHERE email = ?")
	t.Setenv("TOKENSHIFT_USERS_HASH_LIMITS_BCRYPT_MAX_COST", "13")
	t.Setenv("TOKENSHIFT_USERS_PASSWORD_COST", "11")
	t.Setenv("TOKENSHIFT_USERS_SPRING_PBKDF2_SECRET", "pepper-s3cret")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Users.SQL.Enabled() || c.Users.SQL.Driver != "mysql" || c.Users.HashLimits.BcryptMaxCost != 13 || c.Users.SpringPBKDF2.Secret != "pepper-s3cret" {
		t.Fatalf("users = %+v", c.Users)
	}
	if c.Users.PasswordChangeAllowed() {
		t.Fatal("auto must mean off with a SQL store")
	}
	m := Redacted(c)
	users := m["users"].(map[string]any)
	if dsn := users["sql"].(map[string]any)["dsn"]; dsn != "app:xxxxx@tcp(db:3306)/legacy" {
		t.Fatalf("redacted dsn = %v", dsn)
	}
	if s := users["spring_pbkdf2"].(map[string]any)["secret"]; s != "xxxxx" {
		t.Fatalf("redacted secret = %v", s)
	}
}

func TestPasswordChangeAllowed(t *testing.T) {
	for _, tc := range []struct {
		setting string
		sql     bool
		want    bool
	}{
		{"auto", false, true}, {"auto", true, false}, {"true", true, true}, {"false", false, false},
	} {
		u := UsersConfig{AllowPasswordChange: tc.setting}
		if tc.sql {
			u.SQL.DSN = testDSN
		}
		if got := u.PasswordChangeAllowed(); got != tc.want {
			t.Errorf("%s with sql=%v: %v, want %v", tc.setting, tc.sql, got, tc.want)
		}
	}
}
