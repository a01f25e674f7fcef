package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/tick"
	"github.com/tokenshift/tokenshift/internal/user"
)

// hashOptions are the Hasher settings of users.hash_limits and
// users.spring_pbkdf2.
func hashOptions(cfg *config.Config) user.HashOptions {
	l, sp := cfg.Users.HashLimits, cfg.Users.SpringPBKDF2
	return user.HashOptions{
		Limits: user.HashLimits{
			BcryptMaxCost: l.BcryptMaxCost, PBKDF2MaxWork: l.PBKDF2MaxWork,
			Argon2MaxMemoryKiB: l.Argon2MaxMemoryKiB, Argon2MaxWork: l.Argon2MaxWork, Argon2MaxThreads: l.Argon2MaxThreads,
		},
		SpringPBKDF2: user.SpringPBKDF2{Algorithm: sp.Algorithm, Iterations: sp.Iterations, SaltLength: sp.SaltLength, Secret: sp.Secret, Encoding: sp.Encoding},
	}
}

func sqlOptions(cfg *config.Config) user.SQLOptions {
	s := cfg.Users.SQL
	return user.SQLOptions{
		Driver: s.Driver, DSN: s.DSN, Query: s.Query, QueryByID: s.QueryByID, RolesSeparator: s.RolesSeparator,
		MaxOpenConns: s.MaxOpenConns, MaxIdleConns: s.MaxIdleConns, ConnMaxLifetime: s.ConnMaxLifetime, QueryTimeout: s.QueryTimeout,
	}
}

// validateUsers adds to config.Validate what needs the user package: the
// SQL query's bind parameters and DSN syntax, and whether users.dummy_hash is
// a hash we can use. It reports in config's style, key and value.
func validateUsers(cfg *config.Config) error {
	var fields []*config.FieldError
	h, err := user.NewHasher(hashOptions(cfg))
	if err != nil {
		fields = append(fields, &config.FieldError{Key: "users.hash_limits", Value: "", Reason: err.Error()})
	}
	if d := cfg.Users.DummyHash; d != "" && h != nil {
		if _, err := h.DummyFor(d); err != nil {
			// The format, not the value: a hash is not for logs.
			fields = append(fields, &config.FieldError{Key: "users.dummy_hash", Value: user.FormatOf(d) + " hash",
				Reason: "must be a supported hash within users.hash_limits: " + err.Error()})
		}
	}
	if cfg.Users.SQL.Enabled() {
		var oe *user.SQLOptionError
		if err := user.CheckSQLOptions(sqlOptions(cfg)); errors.As(err, &oe) {
			key := "users.sql." + oe.Field
			var val any = cfg.Users.SQL.Query
			switch oe.Field {
			case "query_by_id":
				val = cfg.Users.SQL.QueryByID
			case "dsn":
				val = config.MaskDSN(cfg.Users.SQL.Driver, cfg.Users.SQL.DSN)
			case "driver":
				val = cfg.Users.SQL.Driver
			case "max_open_conns", "max_idle_conns":
				val = fmt.Sprintf("%d/%d", cfg.Users.SQL.MaxOpenConns, cfg.Users.SQL.MaxIdleConns)
			}
			fields = append(fields, &config.FieldError{Key: key, Value: val, Reason: oe.Reason})
		}
	}
	if len(fields) > 0 {
		return &config.ValidationError{Fields: fields}
	}
	return nil
}

// loadUsers builds the user store and the Verifier over it, with the account
// overlay in the shared store. A SQL database that cannot be reached at start
// does not stop the service: sessions and tokens already issued keep working,
// logins answer 503 user_store_unavailable, and a background probe reports
// when the database is back (or, then, that the query is wrong). A database
// that answers and rejects the query stops start-up.
func loadUsers(ctx context.Context, cfg *config.Config, log *slog.Logger, st store.Store) (*user.Verifier, func() error, error) {
	hasher, err := user.NewHasher(hashOptions(cfg))
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("users.hash_limits: %w", err)}
	}
	closeStore := func() error { return nil }
	var base user.Store
	switch {
	case cfg.Users.File != "":
		fs, err := user.LoadFile(cfg.Users.File)
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("users.file: %w", err)}
		}
		log.Info("user store: file", "path", cfg.Users.File, "users", fs.Len())
		base = fs
	case cfg.Users.SQL.Enabled():
		s, closeSQL, err := openUserSQL(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		base, closeStore = s, closeSQL
	case cfg.Production():
		return nil, nil, usageError{errors.New("users.file: production never loads the dev users; set users.file or users.sql.dsn")}
	default:
		fs, err := user.ParseFile(configs.DevUsersYAML)
		if err != nil {
			return nil, nil, err
		}
		log.Warn("loaded the embedded DEV USERS (alice@example.com, ops@example.com) with public passwords; never expose this instance")
		base = fs
	}
	v := user.NewVerifier(base, &user.VerifierOptions{
		Hasher:              hasher,
		Overlay:             user.NewStoreOverlay(st),
		DummyHash:           cfg.Users.DummyHash,
		MaxConcurrent:       cfg.Users.HashLimits.MaxConcurrent,
		QueueTimeout:        cfg.Users.HashLimits.QueueTimeout,
		WarnInterval:        cfg.Users.HashWarningInterval,
		AllowPasswordChange: cfg.Users.PasswordChangeAllowed(),
		PasswordCost:        cfg.Users.PasswordCost,
		Logger:              log,
	})
	st2 := v.Stats()
	log.Info("password verification", "max_concurrent", st2.Capacity, "unknown_logins_cost", st2.Dummy,
		"password_change", v.PasswordChangeAllowed())
	return v, closeStore, nil
}

// openUserSQL opens the SQL user store and probes it. The returned func
// stops the probe loop (when the database was down) and closes the pool.
func openUserSQL(ctx context.Context, cfg *config.Config, log *slog.Logger) (*user.SQLStore, func() error, error) {
	dsn := config.MaskDSN(cfg.Users.SQL.Driver, cfg.Users.SQL.DSN)
	s, err := user.NewSQL(sqlOptions(cfg))
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("users.sql: %w", err)}
	}
	ctx, stopProbe := context.WithCancel(ctx)
	closeSQL := func() error { stopProbe(); return s.Close() }
	err = s.Probe(ctx)
	switch {
	case err == nil:
		log.Info("user store: sql", "driver", cfg.Users.SQL.Driver, "dsn", dsn)
	case errors.Is(err, auth.ErrUnavailable):
		log.Warn("user store: sql database unreachable at start; logins answer 503 user_store_unavailable until it is back, existing sessions and tokens keep working",
			"driver", cfg.Users.SQL.Driver, "dsn", dsn, "error", err)
		go probeUntilUp(ctx, s, log, 5*time.Second)
	default:
		_ = closeSQL()
		return nil, nil, usageError{fmt.Errorf("users.sql (%s): %w", dsn, err)}
	}
	return s, closeSQL, nil
}

// probeUntilUp reports when a database that was down at start answers, and
// whether the query then works: a wrong query found only now is logged as an
// error (logins keep failing with 503 and the same log line).
func probeUntilUp(ctx context.Context, s *user.SQLStore, log *slog.Logger, every time.Duration) {
	tick.Every(ctx.Done(), every, func() bool {
		err := s.Probe(ctx)
		switch {
		case err == nil:
			log.Info("user store: sql database reachable; logins work again")
			return false
		case errors.Is(err, auth.ErrUnavailable):
			return true
		default:
			log.Error("user store: sql database reachable but the setup is wrong; every login fails with 503 until users.sql is fixed", "error", err)
			return false
		}
	})
}

// verifierCollector exports the Verifier's counters.
type verifierCollector struct{ v *user.Verifier }

var (
	hashUnusableDesc = prometheus.NewDesc("tokenshift_user_hash_unusable_total",
		"Logins checked against a stored password hash that could not be used, by reason (unknown_format, over_limit).",
		[]string{"reason"}, nil)
	loginBusyDesc = prometheus.NewDesc("tokenshift_login_busy_total",
		"Logins refused with 503 login_busy: no password-verification slot became free in time.", nil, nil)
	verifyInFlightDesc = prometheus.NewDesc("tokenshift_password_verifications_in_flight",
		"Password verifications running now.", nil, nil)
	verifySlotsDesc = prometheus.NewDesc("tokenshift_password_verification_slots",
		"Password verifications allowed at once (users.hash_limits.max_concurrent).", nil, nil)
)

func (c verifierCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hashUnusableDesc
	ch <- loginBusyDesc
	ch <- verifyInFlightDesc
	ch <- verifySlotsDesc
}

func (c verifierCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.v.Stats()
	ch <- prometheus.MustNewConstMetric(hashUnusableDesc, prometheus.CounterValue, float64(s.HashUnknownFormat), "unknown_format")
	ch <- prometheus.MustNewConstMetric(hashUnusableDesc, prometheus.CounterValue, float64(s.HashOverLimit), "over_limit")
	ch <- prometheus.MustNewConstMetric(loginBusyDesc, prometheus.CounterValue, float64(s.Busy))
	ch <- prometheus.MustNewConstMetric(verifyInFlightDesc, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(verifySlotsDesc, prometheus.GaugeValue, float64(s.Capacity))
}
