package authn

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// LegacyVerifier resolves the sessions the product already has (express,
// Django, PHP, callout: internal/legacy, issue 12). A legacy session is one
// more credential of the request: it becomes scheme session of its source's
// client, with Principal.Source set, and goes through the same decision as
// tokenshift's own session (phases, conflicts, CSRF, deprecation headers).
type LegacyVerifier interface {
	// CookieNames are the cookies the sources read (checked for
	// duplicates like tokenshift's own).
	CookieNames() []string
	// ParseLegacy finds the request's legacy cookie and checks its signature
	// or id format without I/O. The cookies are views of a buffer the server
	// reuses for the next request: the verifier copies what it keeps past
	// the request (its near cache's keys, a LegacyID). ok is false when the
	// request carries none.
	// A forged cookie is ok with an error wrapping auth.ErrInvalid: it is
	// refused without reaching the legacy store. The middleware passes the
	// *fiber.Ctx itself (no closure to allocate per request).
	ParseLegacy(cookies Cookies) (cred LegacyCredential, ok bool, err error)
	// VerifyLegacy reads the session (one store read, none on a near-cache
	// hit) and its user. Errors wrap auth.ErrInvalid, auth.ErrNotFound,
	// auth.ErrRevoked or auth.ErrUnavailable. The principal may be shared
	// between requests (the near cache's): nobody modifies it.
	VerifyLegacy(ctx context.Context, cred LegacyCredential) (*auth.Principal, error)
}

// Cookies reads a request's cookies by name ("" when absent): *fiber.Ctx,
// or a function (CookieFunc).
type Cookies interface {
	Cookies(name string, defaultValue ...string) string
}

// CookieFunc adapts a function to Cookies (tests, tools).
type CookieFunc func(name string) string

// Cookies implements Cookies; defaultValue is ignored.
func (f CookieFunc) Cookies(name string, _ ...string) string { return f(name) }

// LegacyCredential is a parsed legacy cookie. ID and Raw are bearer
// secrets: never log them.
type LegacyCredential struct {
	Source string
	ID     string
	// Raw is the cookie value ID was verified from, as the request sent it
	// (the verifier's near cache compares it instead of verifying the
	// signature again); empty when unknown. It may alias the request's
	// buffer: a verifier that keeps it copies it.
	Raw string
	// Hint is the verifier's own note from ParseLegacy to VerifyLegacy
	// (the legacy verifier: the near-cache entry the cookie matched, so
	// that a hit looks nothing up twice); nil when none. Opaque here.
	Hint any
}

// SourceRecorder is optionally implemented by the Recorder: legacy requests
// are then counted under their source as well (usage "sources", the source
// label of tokenshift_auth_requests_total). A Recorder without it counts
// them as plain session use of their client.
type SourceRecorder interface {
	RecordSource(source string, scheme auth.Scheme, clientID, userID string, outcome auth.Outcome)
}

type legacyCookie struct {
	present bool
	cred    LegacyCredential
	err     error
}

// parseLegacy hands the verifier the request itself (no closure to allocate
// per request); the verifier copies what it keeps (ParseLegacy).
func (cfg *Config) parseLegacy(c *fiber.Ctx) legacyCookie {
	cred, ok, err := cfg.Legacy.ParseLegacy(c)
	return legacyCookie{present: ok, cred: cred, err: err}
}

// addLegacy verifies the legacy cookie and appends its result. An outage of
// the legacy store only matters when the legacy cookie is the request's
// only credential: a browser that also sends tokenshift's session or a
// token (after an exchange, say) is decided by those, so a legacy store
// that is down cannot take tokenshift's own credentials down with it.
func (cfg *Config) addLegacy(c *fiber.Ctx, lc legacyCookie, results []verified, n int) int {
	r := verified{scheme: auth.SchemeSession, source: lc.cred.Source, err: lc.err}
	if r.err == nil {
		r.p, r.err = cfg.Legacy.VerifyLegacy(c.UserContext(), lc.cred)
		if r.err == nil && (r.p.Scheme != auth.SchemeSession || r.p.Source != lc.cred.Source) {
			// A copy, not a write: the principal may be shared by
			// concurrent requests (the legacy near cache's).
			cp := *r.p
			cp.Scheme, cp.Source = auth.SchemeSession, lc.cred.Source
			r.p = &cp
		}
	}
	if n > 0 && errors.Is(r.err, auth.ErrUnavailable) {
		return n
	}
	results[n] = r
	return n + 1
}

// recordFrom is record for a result that may come from a legacy source:
// refusals without a principal are still counted under the source.
func (cfg *Config) recordFrom(source string, s auth.Scheme, p *auth.Principal, o auth.Outcome) {
	if source != "" && p == nil && cfg.Usage != nil && cfg.sourceUsage != nil {
		cfg.sourceUsage.RecordSource(source, s, auth.ClientUnknown, "", o)
		return
	}
	cfg.record(s, p, o)
}
