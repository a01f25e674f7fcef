// Package authn is the dual-credential authentication middleware: it extracts
// every credential a request carries (session cookie, Authorization: Bearer,
// JWT cookie), verifies each, asks the migration flags what this client and user
// may use, records one usage event, and stores a single auth.Principal for the
// handlers, which never care which scheme was used.
package authn

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
)

// SessionVerifier resolves a session cookie value. Errors wrap auth.ErrInvalid,
// auth.ErrExpired, auth.ErrRevoked or auth.ErrUnavailable.
//
// Verifying must not count the request as a use of the session: the request
// may still be refused (by the phase, by CSRF), and a refused request must not
// keep a session alive. When the session's activity record is due for an
// update (verifiers throttle those writes), touch is non-nil; the middleware
// calls it once the request is accepted with the session. Most requests get a
// nil touch, so the common path neither writes nor allocates for it. The
// principal may be shared between requests: nobody modifies it.
type SessionVerifier interface {
	VerifySession(ctx context.Context, cookieValue string) (p *auth.Principal, touch Touch, err error)
}

// Touch records a use of a verified credential (a session's idle timer). It is
// best effort and reports nothing: the credential was already proven.
type Touch func(ctx context.Context)

// TokenVerifier verifies a JWT access token without I/O. Errors wrap
// auth.ErrInvalid, auth.ErrExpired or auth.ErrRevoked.
//
// The principal answered may be shared between requests (the verified-token
// cache's): nobody modifies it.
type TokenVerifier interface {
	VerifyToken(raw string) (*auth.Principal, error)
}

// CookieTokenVerifier is optionally implemented by a TokenVerifier that knows
// how each client receives its tokens. The JWT cookie is then verified with
// VerifyCookieToken, which also refuses (auth.ErrInvalid) the token of a
// client that gets its tokens in the response body: such a token has no
// business in a cookie, and accepting it there would let it ride on a
// browser's cross-site requests.
type CookieTokenVerifier interface {
	VerifyCookieToken(raw string) (*auth.Principal, error)
}

// Decider answers what a client and user may use under the current phase.
type Decider interface {
	Decide(clientID, userID string) featureflags.Decision
}

// Recorder counts one authentication outcome; it must not block or allocate.
type Recorder interface {
	Record(scheme auth.Scheme, clientID, userID string, outcome auth.Outcome)
}

// CSRFChecker validates the CSRF token and origin of a cookie-authenticated
// unsafe request. It returns an *auth.Error with CodeCSRF on failure.
type CSRFChecker interface {
	CheckCSRF(c *fiber.Ctx, p *auth.Principal) error
}

// Config configures the middleware. Zero values take the documented defaults.
type Config struct {
	// Next skips the middleware when it returns true.
	Next func(c *fiber.Ctx) bool

	// Sessions and Tokens verify credentials. A nil verifier means that scheme
	// is never accepted.
	Sessions SessionVerifier
	Tokens   TokenVerifier
	// Legacy verifies the product's own session cookies (legacy.sources,
	// see legacy.go); nil = none configured, and the middleware does no
	// work for them.
	Legacy LegacyVerifier

	// Flags decides per client and user; nil means every credential is accepted
	// and nothing is deprecated (phase dual).
	Flags Decider

	// Usage receives one event per request: its credential's outcome, or
	// OutcomeMissing when a required credential is absent (Optional requests
	// without one are not counted); nil = off.
	Usage Recorder

	// CSRF checks cookie-authenticated unsafe requests; nil = no check.
	CSRF CSRFChecker

	// Method is the method the CSRF decision looks at. Default c.Method().
	// Forward-auth replaces it: there the request tokenshift sees is the
	// proxy's check (nginx's auth_request subrequest, Traefik's GET), and the
	// method that matters is the original one the proxy forwards in a header.
	Method func(c *fiber.Ctx) string

	// SessionCookie and AccessCookie are the cookie names (with any __Host-
	// prefix already applied). Default "ts_session" and "ts_access".
	SessionCookie string
	AccessCookie  string

	// Optional lets requests without any credential through with no principal.
	// Requests carrying a bad credential are still refused.
	Optional bool

	// AllowRetiredSession lets a session the phase no longer accepts through
	// when the phase still allows exchanging it for tokens (POST /auth/exchange,
	// and GET /auth/csrf, which hands out the token the exchange needs).
	AllowRetiredSession bool

	// IgnorePhase authenticates the credential without applying the migration
	// phase: a session the phase retired, or an access token the phase does
	// not accept (yet, or again after a rollback), still proves who is
	// calling. It is meant for the routes by which a caller ends or lists its
	// own logins (logout, GET and DELETE /auth/sessions): a credential that
	// can no longer be used must still be able to end itself, or a retired
	// session would stay live and come back with a rollback. CSRF and the
	// same-origin check still apply. Such a request does not count as a use of
	// a session the phase retired: its idle timer is not refreshed.
	IgnorePhase bool

	// Shadow compares the credentials of a request that carries several (all
	// are verified anyway) and reports each disagreement to OnShadowMismatch:
	// different users, one expired, revoked or invalid, different clients.
	// Only in phases dual and prefer-jwt, and only reported, never enforced
	// (two valid credentials of different users are refused either way).
	// Off by default. OnShadowMismatch runs on the request path: keep it cheap.
	Shadow           bool
	OnShadowMismatch func(c *fiber.Ctx, m ShadowMismatch)

	// ErrorHandler turns an authentication failure (an *auth.Error) into a
	// response. Default: the error is returned to Fiber's error handler.
	ErrorHandler fiber.ErrorHandler

	// cookieTokens is Tokens as a CookieTokenVerifier, when it is one.
	cookieTokens CookieTokenVerifier
	// legacyCookies are Legacy's cookie names; sourceUsage is Usage as a
	// SourceRecorder, when it is one.
	legacyCookies []string
	sourceUsage   SourceRecorder
}

// ConfigDefault holds the defaults applied to zero fields.
var ConfigDefault = Config{
	SessionCookie: "ts_session",
	AccessCookie:  "ts_access",
	ErrorHandler:  func(_ *fiber.Ctx, err error) error { return err },
}

func configDefault(config ...Config) Config {
	if len(config) < 1 {
		return ConfigDefault
	}
	cfg := config[0]
	if cfg.SessionCookie == "" {
		cfg.SessionCookie = ConfigDefault.SessionCookie
	}
	if cfg.AccessCookie == "" {
		cfg.AccessCookie = ConfigDefault.AccessCookie
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = ConfigDefault.ErrorHandler
	}
	cfg.cookieTokens, _ = cfg.Tokens.(CookieTokenVerifier)
	cfg.sourceUsage, _ = cfg.Usage.(SourceRecorder)
	if cfg.Legacy != nil {
		cfg.legacyCookies = cfg.Legacy.CookieNames()
	}
	return cfg
}

type principalKey struct{}

// Principal returns the authenticated principal of the request, or nil.
// It is read only: a session near-cache hit shares it with every request of
// the login, and a cached bearer token shares its Roles.
func Principal(c *fiber.Ctx) *auth.Principal {
	p, _ := c.Locals(principalKey{}).(*auth.Principal)
	return p
}

// SetPrincipal stores p as the request's principal (used by the middleware and
// by tests of handlers).
func SetPrincipal(c *fiber.Ctx, p *auth.Principal) { c.Locals(principalKey{}, p) }

type legacyAlongsideKey struct{}

// LegacyAlongside returns the legacy session (Principal.Source set) that
// the request carried next to the credential that authenticated it, or
// nil. It is verified and of the same user (a request with credentials of
// two users is refused). A browser that exchanged its legacy session and
// kept it (on_exchange keep) sends both cookies: its logout must end the
// legacy one too, or that cookie would keep the user logged in.
func LegacyAlongside(c *fiber.Ctx) *auth.Principal {
	p, _ := c.Locals(legacyAlongsideKey{}).(*auth.Principal)
	return p
}

type foreignAnswerKey struct{}

// MarkForeignAnswer records that the answer of this request is another
// application's (the reverse proxy's upstream), so tokenshift's own page
// policies (the HTML Content-Security-Policy and framing rules) leave it as
// the application sent it.
func MarkForeignAnswer(c *fiber.Ctx) { c.Locals(foreignAnswerKey{}, true) }

// IsForeignAnswer reports whether MarkForeignAnswer was called.
func IsForeignAnswer(c *fiber.Ctx) bool {
	v, _ := c.Locals(foreignAnswerKey{}).(bool)
	return v
}
