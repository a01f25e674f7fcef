package config

import (
	"slices"
	"time"
)

// validateUsers checks users.*. What needs the user package (the SQL query's
// bind parameters, whether dummy_hash parses) is checked by cmd with
// user.CheckSQLOptions and user.NewHasher, which report in the same style.
func (c *Config) validateUsers(bad reporter) {
	u := c.Users
	if u.File != "" && u.SQL.Enabled() {
		bad("users.file", u.File, "users.file and users.sql.dsn are exclusive: choose one user store")
	}
	c.validateUsersSQL(bad)
	if !slices.Contains([]string{"auto", "true", "false"}, u.AllowPasswordChange) {
		bad("users.allow_password_change", u.AllowPasswordChange, "must be auto, true or false")
	}
	c.validateHashLimits(bad)
	if u.HashWarningInterval < time.Second {
		bad("users.hash_warning_interval", u.HashWarningInterval, "must be at least 1s")
	}
	c.validateSpringPBKDF2(bad)
}

// validateUsersSQL checks users.sql.*: set together with its dsn or not at all.
func (c *Config) validateUsersSQL(bad reporter) {
	s := c.Users.SQL
	if s.Enabled() {
		if s.Driver != "pgx" && s.Driver != "mysql" {
			bad("users.sql.driver", s.Driver, "must be pgx (PostgreSQL) or mysql (MySQL, MariaDB)")
		}
		if s.Query == "" {
			bad("users.sql.query", s.Query, "must select id, email, password_hash, roles for the login (see docs/user-stores.md)")
		}
	} else {
		if s.Driver != "" {
			bad("users.sql.driver", s.Driver, "is set but users.sql.dsn is empty")
		}
		if s.Query != "" {
			bad("users.sql.query", s.Query, "is set but users.sql.dsn is empty")
		}
	}
	if s.RolesSeparator == "" {
		bad("users.sql.roles_separator", s.RolesSeparator, "must not be empty")
	}
	if s.MaxOpenConns < 1 || s.MaxOpenConns > 1000 {
		bad("users.sql.max_open_conns", s.MaxOpenConns, "must be between 1 and 1000")
	}
	if s.MaxIdleConns < 0 || s.MaxIdleConns > s.MaxOpenConns {
		bad("users.sql.max_idle_conns", s.MaxIdleConns, "must be between 0 and users.sql.max_open_conns (%d)", s.MaxOpenConns)
	}
	positive(bad, "users.sql.conn_max_lifetime", s.ConnMaxLifetime)
	if s.QueryTimeout <= 0 || s.QueryTimeout > time.Minute {
		bad("users.sql.query_timeout", s.QueryTimeout, "must be between 1ms and 1m")
	}
}

// validateHashLimits checks users.hash_limits.* and users.password_cost,
// which must stay within the bcrypt limit that verification enforces.
func (c *Config) validateHashLimits(bad reporter) {
	u := c.Users
	l := u.HashLimits
	if l.BcryptMaxCost < 4 || l.BcryptMaxCost > 31 {
		bad("users.hash_limits.bcrypt_max_cost", l.BcryptMaxCost, "must be between 4 and 31")
	}
	if u.PasswordCost < 4 || u.PasswordCost > l.BcryptMaxCost {
		bad("users.password_cost", u.PasswordCost, "must be between 4 and users.hash_limits.bcrypt_max_cost (%d)", l.BcryptMaxCost)
	}
	if l.PBKDF2MaxWork < 1 {
		bad("users.hash_limits.pbkdf2_max_work", l.PBKDF2MaxWork, "must be positive (iterations x output blocks)")
	}
	if l.Argon2MaxMemoryKiB < 8 {
		bad("users.hash_limits.argon2_max_memory_kib", l.Argon2MaxMemoryKiB, "must be at least 8 (KiB)")
	}
	if l.Argon2MaxWork < 8 {
		bad("users.hash_limits.argon2_max_work", l.Argon2MaxWork, "must be at least 8 (KiB x passes)")
	}
	if l.Argon2MaxThreads < 1 || l.Argon2MaxThreads > 255 {
		bad("users.hash_limits.argon2_max_threads", l.Argon2MaxThreads, "must be between 1 and 255")
	}
	if l.MaxConcurrent < 0 || l.MaxConcurrent > 4096 {
		bad("users.hash_limits.max_concurrent", l.MaxConcurrent, "must be 0 (two per CPU) or up to 4096")
	}
	positive(bad, "users.hash_limits.queue_timeout", l.QueueTimeout)
}

func (c *Config) validateSpringPBKDF2(bad reporter) {
	sp := c.Users.SpringPBKDF2
	if !slices.Contains([]string{"sha1", "sha256", "sha512"}, sp.Algorithm) {
		bad("users.spring_pbkdf2.algorithm", sp.Algorithm, "must be sha1, sha256 or sha512")
	}
	if sp.Iterations < 1 {
		bad("users.spring_pbkdf2.iterations", sp.Iterations, "must be positive")
	}
	if sp.SaltLength < 1 || sp.SaltLength > 64 {
		bad("users.spring_pbkdf2.salt_length", sp.SaltLength, "must be between 1 and 64 (bytes)")
	}
	if sp.Encoding != "hex" && sp.Encoding != "base64" {
		bad("users.spring_pbkdf2.encoding", sp.Encoding, "must be hex or base64")
	}
}
