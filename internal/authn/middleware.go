package authn

import (
	"errors"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
)

// Precomputed so a failing request allocates no header strings.
const (
	wwwAuthBearer        = `Bearer`
	wwwAuthInvalidToken  = `Bearer error="invalid_token"`
	wwwAuthInvalidReqest = `Bearer error="invalid_request"`
)

// verified is the result of one credential.
type verified struct {
	scheme auth.Scheme
	p      *auth.Principal
	err    error
	touch  Touch  // sessions only: records the use once the request is accepted
	source string // legacy sessions: the source's name, also when refused
}

// New returns the authentication middleware.
func New(config ...Config) fiber.Handler {
	cfg := configDefault(config...)
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		// The bearer token's characters are checked only if it fails to
		// verify: a token that verifies (signature or cache hit) is
		// base64url and dots, inside RFC 6750's b64token, so the answer is
		// the same as checking first, without a pass over every byte of
		// every good token (16 % of a cached bearer request).
		cr := extract(c, cfg.SessionCookie, cfg.AccessCookie)
		if cr.Duplicate != "" {
			// Refused even on optional routes: which cookie is ours is
			// unknown, so no credential of the request can be believed.
			cfg.record(auth.SchemeNone, nil, auth.OutcomeInvalid)
			return cfg.ErrorHandler(c, DuplicateCookieError(cr.Duplicate))
		}
		var lc legacyCookie
		if cfg.Legacy != nil {
			if dup := DuplicateCookie(c, cfg.legacyCookies...); dup != "" {
				cfg.record(auth.SchemeNone, nil, auth.OutcomeInvalid)
				return cfg.ErrorHandler(c, DuplicateCookieError(dup))
			}
			lc = cfg.parseLegacy(c)
		}
		if !cr.Any() && !lc.present {
			if cfg.Optional {
				return c.Next()
			}
			// Counted, so operators see clients that stopped sending any
			// credential (a cookie no longer set, a dropped header).
			cfg.record(auth.SchemeNone, nil, auth.OutcomeMissing)
			c.Set(fiber.HeaderWWWAuthenticate, wwwAuthBearer)
			return cfg.ErrorHandler(c, auth.Errorf(auth.CodeUnauthenticated, "authentication required: send a session cookie or an Authorization: Bearer access token"))
		}
		if cr.BearerMalformed {
			return cfg.malformedBearer(c)
		}

		// Verify in priority order: an explicit bearer header first, then the
		// JWT cookie, then the session. Each absent credential is skipped.
		var results [4]verified
		n := 0
		if cr.Bearer != "" {
			results[n] = cfg.verifyToken(auth.SchemeBearer, cr.Bearer)
			if results[n].err != nil && !isB64TokenString(cr.Bearer) {
				return cfg.malformedBearer(c)
			}
			n++
		}
		if cr.JWTCookie != "" {
			results[n] = cfg.verifyToken(auth.SchemeJWTCookie, cr.JWTCookie)
			n++
		}
		if cr.Session != "" {
			results[n] = cfg.verifySession(c, cr.Session)
			n++
		}
		if lc.present {
			n = cfg.addLegacy(c, lc, results[:], n)
		}
		return cfg.decide(c, results[:n])
	}
}

// malformedBearer answers an Authorization header that claims the Bearer
// scheme without a single b64token (RFC 6750 section 3.1: invalid_request).
func (cfg *Config) malformedBearer(c *fiber.Ctx) error {
	cfg.record(auth.SchemeBearer, nil, auth.OutcomeInvalid)
	c.Set(fiber.HeaderWWWAuthenticate, wwwAuthInvalidReqest)
	return cfg.ErrorHandler(c, auth.Errorf(auth.CodeInvalidToken, "the Authorization header must be \"Bearer <token>\""))
}

func (cfg *Config) verifyToken(s auth.Scheme, raw string) verified {
	if cfg.Tokens == nil {
		return verified{scheme: s, err: auth.ErrInvalid}
	}
	var p *auth.Principal
	var err error
	if s == auth.SchemeJWTCookie && cfg.cookieTokens != nil {
		p, err = cfg.cookieTokens.VerifyCookieToken(raw)
	} else {
		p, err = cfg.Tokens.VerifyToken(raw)
	}
	if err == nil && p.Scheme != s {
		// A copy, not a write: a verifier may answer a principal shared by
		// concurrent requests (the verified-token cache's).
		cp := *p
		cp.Scheme = s
		p = &cp
	}
	return verified{scheme: s, p: p, err: err}
}

func (cfg *Config) verifySession(c *fiber.Ctx, raw string) verified {
	if cfg.Sessions == nil {
		return verified{scheme: auth.SchemeSession, err: auth.ErrInvalid}
	}
	p, touch, err := cfg.Sessions.VerifySession(c.UserContext(), raw)
	if err == nil && p.Scheme != auth.SchemeSession {
		// A copy, not a write: a verifier may answer a principal shared
		// by concurrent requests (the session near cache's).
		cp := *p
		cp.Scheme = auth.SchemeSession
		p = &cp
	}
	return verified{scheme: auth.SchemeSession, p: p, err: err, touch: touch}
}

func (cfg *Config) decide(c *fiber.Ctx, results []verified) error {
	// A store outage is not the client's fault and must not look like a bad
	// credential: 503, whatever else the request carried.
	for i := range results {
		if errors.Is(results[i].err, auth.ErrUnavailable) {
			cfg.recordFrom(results[i].source, results[i].scheme, nil, auth.OutcomeUnavailable)
			return cfg.ErrorHandler(c, auth.Wrap(results[i].err, auth.CodeStoreUnavailable, "the credential store is unavailable; retry shortly"))
		}
	}

	cfg.shadowCheck(c, results)

	// An explicit bearer header that fails is an error even if a cookie would
	// have worked: the client chose that credential (RFC 6750 section 3.1).
	if results[0].scheme == auth.SchemeBearer && results[0].err != nil {
		return cfg.reject(c, results[0])
	}

	chosen, conflict := chooseCredential(results)
	if conflict {
		cfg.record(auth.SchemeNone, nil, auth.OutcomeConflict)
		return cfg.ErrorHandler(c, auth.Errorf(auth.CodeCredentialConflict, "the request carries valid credentials of two different users; send one"))
	}
	if chosen == nil {
		return cfg.reject(c, results[0])
	}

	p := chosen.p
	dec := cfg.decision(p)
	if cfg.IgnorePhase {
		dec.AcceptSession, dec.AcceptTokens = true, true
	}
	if p.Scheme == auth.SchemeSession && !dec.AcceptSession {
		// A valid token on the same request still gets through; only a
		// session-only request is refused by the phase.
		if alt := firstToken(results); alt != nil && dec.AcceptTokens {
			p = alt.p
		} else if !(cfg.AllowRetiredSession && dec.AllowExchange) {
			cfg.record(auth.SchemeSession, p, auth.OutcomeRetired)
			return cfg.ErrorHandler(c, &auth.Error{Code: auth.CodeSessionRetired, Message: retiredDetail(dec)})
		}
	}
	if p.Scheme.IsToken() && !dec.AcceptTokens {
		cfg.record(p.Scheme, p, auth.OutcomeInvalid)
		if p.Scheme == auth.SchemeBearer {
			c.Set(fiber.HeaderWWWAuthenticate, wwwAuthInvalidToken)
		}
		return cfg.ErrorHandler(c, auth.Errorf(auth.CodeInvalidToken, "access tokens are not accepted for this client in phase %s; use the session", dec.Phase))
	}

	if p.Scheme.IsCookie() && cfg.CSRF != nil && !IsSafeMethod(cfg.method(c)) {
		if err := cfg.CSRF.CheckCSRF(c, p); err != nil {
			return cfg.ErrorHandler(c, err)
		}
	}

	if p.Scheme == auth.SchemeSession && dec.Deprecate {
		setDeprecation(&c.Response().Header, &dec)
	}

	cfg.record(p.Scheme, p, auth.OutcomeAccepted)
	cfg.touchSession(c, results)
	SetPrincipal(c, p)
	for i := range results {
		if r := &results[i]; r.err == nil && r.source != "" && r.p != p {
			c.Locals(legacyAlongsideKey{}, r.p)
		}
	}
	return c.Next()
}

// chooseCredential returns the first credential that verified (nil: none
// did) and whether another one verified for a different user. A stale
// cookie next to a valid credential is ignored.
func chooseCredential(results []verified) (chosen *verified, conflict bool) {
	for i := range results {
		r := &results[i]
		if r.err != nil {
			continue
		}
		if chosen == nil {
			chosen = r
			continue
		}
		if r.p.UserID != chosen.p.UserID {
			return chosen, true
		}
	}
	return chosen, false
}

// setDeprecation announces the end of sessions on a session-authenticated
// answer with the Deprecation, Sunset and Link values the state precomputed,
// each only when it is set.
func setDeprecation(h *fasthttp.ResponseHeader, dec *featureflags.Decision) {
	if dec.DeprecationHeader != "" {
		h.Set("Deprecation", dec.DeprecationHeader)
	}
	if dec.SunsetHeader != "" {
		h.Set("Sunset", dec.SunsetHeader)
	}
	if dec.LinkHeader != "" {
		h.Add(fiber.HeaderLink, dec.LinkHeader)
	}
}

// touchSession records the use of the request's session once the request is
// accepted, and only if the phase accepts that session for ordinary use: a
// session admitted only to be exchanged or to end itself (AllowRetiredSession,
// IgnorePhase) is not kept alive by it. A session next to the token that was
// chosen is touched too: a browser sending both is using both.
func (cfg *Config) touchSession(c *fiber.Ctx, results []verified) {
	for i := range results {
		r := &results[i]
		if r.scheme != auth.SchemeSession || r.err != nil || r.touch == nil {
			continue
		}
		if cfg.decision(r.p).AcceptSession {
			r.touch(c.UserContext())
		}
	}
}

func (cfg *Config) reject(c *fiber.Ctx, r verified) error {
	outcome := auth.OutcomeOf(r.err)
	cfg.recordFrom(r.source, r.scheme, nil, outcome)
	if r.scheme == auth.SchemeSession {
		msg := "the session is not valid; log in again"
		if outcome == auth.OutcomeExpired {
			msg = "the session has expired; log in again"
		}
		return cfg.ErrorHandler(c, auth.Wrap(r.err, auth.CodeInvalidSession, msg))
	}
	if r.scheme == auth.SchemeBearer {
		c.Set(fiber.HeaderWWWAuthenticate, wwwAuthInvalidToken)
	}
	msg := "the access token is not valid"
	switch outcome {
	case auth.OutcomeExpired:
		msg = "the access token has expired; refresh it"
	case auth.OutcomeRevoked:
		msg = "the access token has been revoked; log in again"
	}
	return cfg.ErrorHandler(c, auth.Wrap(r.err, auth.CodeInvalidToken, msg))
}

func (cfg *Config) decision(p *auth.Principal) featureflags.Decision {
	if cfg.Flags == nil {
		return featureflags.Decision{Phase: featureflags.PhaseDual, IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	}
	return cfg.Flags.Decide(p.ClientID, p.UserID)
}

// record attributes failures without a trusted principal to the unknown client:
// nothing the request says about its client is believed.
func (cfg *Config) record(s auth.Scheme, p *auth.Principal, o auth.Outcome) {
	if cfg.Usage == nil {
		return
	}
	if p != nil && p.Source != "" && cfg.sourceUsage != nil {
		cfg.sourceUsage.RecordSource(p.Source, s, p.ClientID, p.UserID, o)
		return
	}
	if p == nil {
		cfg.Usage.Record(s, auth.ClientUnknown, "", o)
		return
	}
	cfg.Usage.Record(s, p.ClientID, p.UserID, o)
}

func firstToken(results []verified) *verified {
	for i := range results {
		if results[i].err == nil && results[i].scheme.IsToken() {
			return &results[i]
		}
	}
	return nil
}

func retiredDetail(dec featureflags.Decision) string {
	if dec.AllowExchange {
		return "sessions are retired for this client (phase " + dec.Phase.String() + "): exchange the session for tokens with POST /auth/exchange, or log in again to receive tokens"
	}
	return "sessions are retired for this client (phase " + dec.Phase.String() + "): log in again to receive tokens"
}

func (cfg *Config) method(c *fiber.Ctx) string {
	if cfg.Method != nil {
		return cfg.Method(c)
	}
	return c.Method()
}

// IsSafeMethod reports whether method is safe in the sense of RFC 9110
// section 9.2.1, so a cookie-authenticated request needs no CSRF check.
// Method names are case-sensitive: "get" is not GET.
func IsSafeMethod(method string) bool {
	switch method {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions, fiber.MethodTrace:
		return true
	}
	return false
}
