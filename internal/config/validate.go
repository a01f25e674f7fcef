package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every validation failure, so callers can exit 2.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the key, the value found and what is wrong with it.
type FieldError struct {
	Key    string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	if strings.Contains(e.Key, "[") {
		// A list entry (proxy.routes[2].auth): lists come only from a file.
		return fmt.Sprintf("%s: %s (got %q; set in a config file; no env variable)", e.Key, e.Reason, fmt.Sprint(e.Value))
	}
	return fmt.Sprintf("%s: %s (got %q; env %s)", e.Key, e.Reason, fmt.Sprint(e.Value), EnvName(e.Key))
}

// ValidationError lists every problem found, not just the first.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, f := range e.Fields {
		b.WriteString("\n  - ")
		b.WriteString(f.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// reporter records one bad key: its name, the value found and what is wrong
// with it (a format for fmt.Sprintf). Each section's validator reports
// through it, so Validate collects every problem, in order, not just the first.
type reporter = func(key string, val any, format string, args ...any)

// Validate checks every key and the production rules. The error, if any, is a
// *ValidationError listing each bad key with its value. Each section has its
// own validator (validate_<section>.go); the order here is the order of the
// report, and the production rules come last because they restate keys
// already checked for shape.
func (c *Config) Validate() error {
	var errs []*FieldError
	bad := func(key string, val any, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Value: val, Reason: fmt.Sprintf(format, args...)})
	}
	c.validateEnv(bad)
	c.validateServer(bad)
	c.validateLog(bad)
	c.validateStorage(bad)
	c.validateSession(bad)
	c.validateJWT(bad)
	c.validateClients(bad)
	c.validateMigration(bad)
	c.validateUsage(bad)
	c.validateGuard(bad)
	c.validateUsers(bad)
	c.validateRateLimit(bad)
	c.validateCORS(bad)
	c.validateForwardAuth(bad)
	c.validateProxy(bad)
	c.validateLegacy(bad)
	c.validateProduction(bad)
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

func positive(bad reporter, key string, d time.Duration) {
	if d <= 0 {
		bad(key, d, "must be a positive duration like 10s")
	}
}

func share(bad reporter, key string, v float64) {
	if v < 0 || v > 1 {
		bad(key, v, "must be a fraction between 0 and 1 (0.01 = 1%%)")
	}
}

// MaskURL hides the password of a URL for printing.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}
