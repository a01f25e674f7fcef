package legacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Kinds of legacy session stores.
const (
	KindExpress = "express"
	KindDjango  = "django"
	KindPHP     = "php"
	KindCallout = "callout"
)

var (
	// ErrNoCookie: the request carries none of the source's cookies; the
	// source has nothing to say about it (try the next credential).
	ErrNoCookie = errors.New("legacy: no cookie of this source")
	// ErrForged: the cookie is present but fails its signature or id format.
	// It is decided without I/O and never reaches the legacy store.
	ErrForged = fmt.Errorf("legacy: cookie does not verify: %w", auth.ErrInvalid)
	// ErrNotFound: the legacy store has no live, logged-in session for the
	// id (absent, expired, logged out, or a session without a user).
	ErrNotFound = fmt.Errorf("legacy session %w", auth.ErrNotFound)
	// ErrMalformed: the store answered with data that cannot be decoded:
	// not JSON or PHP serialize, wrong types, too big, too deep, a bad
	// Django signature. The message never quotes the data.
	ErrMalformed = fmt.Errorf("legacy: session data malformed: %w", auth.ErrInvalid)
	// ErrEndUnsupported: the source cannot delete the session at its origin
	// (callout); the caller must refuse the id itself from now on.
	ErrEndUnsupported = fmt.Errorf("legacy: this source cannot end sessions in the legacy app: %w", errors.ErrUnsupported)
	// ErrOptions: New was given options it cannot use (*OptionError names
	// the field).
	ErrOptions = errors.New("legacy: invalid source options")
)

// OptionError is an ErrOptions about one field: Field is its config key
// under legacy.sources[] (secrets, redis_url, ...). Reason never quotes a
// secret or a DSN.
type OptionError struct {
	Source string // the source's name, may be empty
	Field  string
	Reason string
}

func (e *OptionError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("%s: source %q: %s: %s", ErrOptions, e.Source, e.Field, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", ErrOptions, e.Field, e.Reason)
}
func (e *OptionError) Unwrap() error { return ErrOptions }

// Session is one live legacy session, as read from the legacy store.
type Session struct {
	Source string // the source's name
	Client string // the registered client these sessions belong to
	// ID identifies the session in its store (express/django/php: the
	// session id; callout: the forwarded cookie header). It is a bearer
	// secret: never log it, use IDHash in logs and metrics.
	ID     string
	UserID string // the legacy user id, as a string (JSON numbers keep their digits)
	// Email and Roles come from the session data only for callout (its
	// email/roles paths); the other kinds leave them empty and the user
	// store supplies them.
	Email string
	Roles []string
	// ExpiresAt is when the legacy store forgets the session; never zero.
	ExpiresAt time.Time
	// IssuedAt is the last instant the legacy app is known to have saved the
	// session, so the login happened at or before it (zero when the store
	// keeps no time). express: the stored cookie.expires minus
	// cookie.originalMaxAge; django: the signing timestamp of session_data;
	// php and callout: zero. A session with IssuedAt before a revocation
	// instant was certainly created before it; a later or zero IssuedAt
	// proves nothing.
	IssuedAt time.Time
	// AuthHash is Django's _auth_user_hash (empty for other kinds): check it
	// with DjangoAuthHashMatches against the user's current password hash.
	AuthHash string
	// Handle is Handle(Source, ID) once the Verifier computed it (a cached
	// session's), so the checks of a cache hit need not hash again; empty
	// otherwise.
	Handle string
}

// Source reads and ends the sessions of one legacy store. Safe for
// concurrent use.
type Source interface {
	Name() string
	Kind() string
	Client() string
	// Cookies are the cookie names the source reads; the first one is the
	// session cookie (express/django/php have exactly one).
	Cookies() []string
	// Parse verifies the request's cookies without I/O and returns the id
	// to Load. cookie returns a cookie's value by name ("" when absent).
	// ErrNoCookie when the source's cookie is absent; ErrForged when the
	// signature (express: constant time, every secret verifies) or the id
	// format (django: 32 of [a-z0-9], php: 22-256 of [A-Za-z0-9,-]) fails.
	Parse(cookie func(name string) string) (id string, err error)
	// Load reads the session: ErrNotFound, ErrMalformed, or an error
	// wrapping auth.ErrUnavailable when the store does not answer within
	// the source's timeout. Exactly one store read per call (callout: at
	// most one, none on a cache hit).
	Load(ctx context.Context, id string) (*Session, error)
	// End deletes the session from its own store (logout); ending an
	// absent session is not an error. Callout: ErrEndUnsupported.
	End(ctx context.Context, id string) error
	// Forget drops any cached answer for id, ForgetUser every cached answer
	// for the user (only callout caches; no-ops elsewhere), so a
	// revocation is not outlived by the cache.
	Forget(id string)
	ForgetUser(userID string)
	// Ping checks the store answers (for /readyz and start-up).
	Ping(ctx context.Context) error
	Close() error
}

// IDHash is a stable, non-reversible name of a legacy session id for logs,
// metrics and index keys (32 hex digits of SHA-256 over source and id).
func IDHash(source, id string) string { return idHash(source, id) }

// withTimeout bounds one store call by the source's timeout, keeping an
// earlier deadline of the caller.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

// unavailable wraps a store error as auth.ErrUnavailable without repeating
// what the error might quote of the request.
func unavailable(source, op string, err error) error {
	if errors.Is(err, auth.ErrUnavailable) {
		return fmt.Errorf("legacy source %q: %s: %w", source, op, err)
	}
	return fmt.Errorf("legacy source %q: %s: %w: %w", source, op, auth.ErrUnavailable, err)
}
