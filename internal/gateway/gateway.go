// Package gateway puts tokenshift in front of an existing app, in the two ways
// the ecosystem already uses: forward-auth (/auth/verify, asked by nginx
// auth_request, Traefik forwardAuth or Envoy ext_authz before each request)
// and a reverse proxy (proxy routes: tokenshift forwards the request itself).
// Both run the standard dual-credential middleware of internal/authn, so the
// phase decision, CSRF protection and usage counting are those of every other
// route, and both hand the upstream the same identity headers and, if
// configured, a short-lived JWT signed by the key ring.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/token"
)

// CSRFMode says what protects cookie-authenticated unsafe requests to an
// upstream app.
type CSRFMode string

const (
	// CSRFToken: same-origin check and tokenshift's X-CSRF-Token, as on every
	// tokenshift route.
	CSRFToken CSRFMode = "token"
	// CSRFOrigin: same-origin check only, for a legacy app that enforces its
	// own CSRF token (its forms know nothing of ours).
	CSRFOrigin CSRFMode = "origin"
)

// CSRF is what the gateway needs from tokenshift's CSRF protection
// (httpapi.CSRF).
type CSRF interface {
	authn.CSRFChecker
	// CheckOrigin refuses cross-site requests, seen from tokenshift's origin.
	CheckOrigin(c *fiber.Ctx) error
	// Token is the CSRF token of a login.
	Token(sid string) string
	// ValidToken reports whether got is the CSRF token of the login sid,
	// under the current key or one recently replaced (keys are shared by
	// every instance and may be replaced after the store lost its data).
	ValidToken(sid, got string) bool
	// AllowedOrigin reports whether origin is configured as trusted.
	AllowedOrigin(origin string) bool
}

// UpstreamSigner signs the tokens handed to upstreams (token.Service).
type UpstreamSigner interface {
	IssueUpstream(sub token.Subject, scheme string, ttl time.Duration, audience string) (string, time.Time, error)
}

// Headers name the identity headers.
type Headers struct {
	User, Email, Client, Scheme, Roles string
}

// Options configure the gateway. Zero values take the DefaultOptions.
type Options struct {
	// Authn is the standard middleware configuration
	// (httpapi.Server.AuthnConfig); the gateway derives its variants from it.
	Authn authn.Config
	// CSRF is tokenshift's CSRF protection; nil = cookie-authenticated
	// unsafe requests are not checked (tests only).
	CSRF CSRF

	// Headers are the identity header names. Default X-Auth-User,
	// X-Auth-Email, X-Auth-Client, X-Auth-Scheme, X-Auth-Roles.
	Headers Headers

	// Token adds a JWT signed by Signer for the upstream, in TokenHeader
	// (default X-Auth-Token; "Authorization" sends "Bearer <jwt>"), with
	// audience TokenAudience (default "upstream") and lifetime TokenTTL
	// (default 60s).
	Token         bool
	Signer        UpstreamSigner
	TokenHeader   string
	TokenAudience string
	TokenTTL      time.Duration

	// ForwardAuth mounts /auth/verify and /auth/verify/*.
	ForwardAuth bool
	// ForwardAuthCSRF is the CSRF mode of forward-auth; default CSRFToken.
	ForwardAuthCSRF CSRFMode
	// ProblemHeader also carries the problem+json body of a refusal in a
	// response header, for nginx, whose auth_request drops the body.
	// Default "X-Auth-Problem"; "-" = off.
	ProblemHeader string

	// Routes are the reverse proxy routes; none = no proxy.
	Routes []Route
	// Timeout is the default time to reach an upstream and get its response
	// headers (default 30s).
	Timeout time.Duration
	// KeepCredentials sends tokenshift's cookies and a client's
	// Authorization: Bearer upstream; by default they are removed.
	KeepCredentials bool
	// CredentialCookies are tokenshift's cookie names (session, access and
	// refresh, with any prefix applied), removed from upstream requests.
	CredentialCookies []string
	// ProxyCSRF is the CSRF mode of proxied routes; default CSRFToken.
	ProxyCSRF CSRFMode
	// StripHeaders are further request header names (proxy.strip_headers)
	// never sent upstream, on top of the identity, token, forwarding and
	// proxy-trust headers that are always removed.
	StripHeaders []string

	// ClientIP is the client address sent upstream in X-Forwarded-For.
	// Default c.IP().
	ClientIP func(c *fiber.Ctx) string
	// FromTrustedProxy reports whether the TCP peer is one of
	// server.trusted_proxies (httpapi.Server.FromTrustedProxy); only then
	// does forward-auth believe X-Forwarded-Proto and -Host for the origin
	// of the original request. Default: no peer is trusted.
	FromTrustedProxy func(c *fiber.Ctx) bool

	Logger *slog.Logger
	// Clock dates upstream token reuse. Default time.Now.
	Clock func() time.Time
}

// DefaultOptions holds the defaults applied to zero fields.
var DefaultOptions = Options{
	Headers: Headers{
		User:   "X-Auth-User",
		Email:  "X-Auth-Email",
		Client: "X-Auth-Client",
		Scheme: "X-Auth-Scheme",
		Roles:  "X-Auth-Roles",
	},
	TokenHeader:     "X-Auth-Token",
	TokenAudience:   "upstream",
	TokenTTL:        60 * time.Second,
	ForwardAuthCSRF: CSRFToken,
	ProblemHeader:   "X-Auth-Problem",
	Timeout:         30 * time.Second,
	ProxyCSRF:       CSRFToken,
	ClientIP:        func(c *fiber.Ctx) string { return c.IP() }, // cmd sets httpapi.Server.ClientIP (trusted proxies)
	Clock:           time.Now,
}

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("gateway: invalid config")

// withDefaults fills zero fields from DefaultOptions and rejects settings
// that cannot work.
func (cfg Options) withDefaults() (Options, error) {
	d := DefaultOptions
	h := &cfg.Headers
	if h.User == "" {
		h.User = d.Headers.User
	}
	if h.Email == "" {
		h.Email = d.Headers.Email
	}
	if h.Client == "" {
		h.Client = d.Headers.Client
	}
	if h.Scheme == "" {
		h.Scheme = d.Headers.Scheme
	}
	if h.Roles == "" {
		h.Roles = d.Headers.Roles
	}
	if cfg.TokenHeader == "" {
		cfg.TokenHeader = d.TokenHeader
	}
	if cfg.TokenAudience == "" {
		cfg.TokenAudience = d.TokenAudience
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = d.TokenTTL
	}
	if cfg.ForwardAuthCSRF == "" {
		cfg.ForwardAuthCSRF = d.ForwardAuthCSRF
	}
	switch cfg.ProblemHeader {
	case "":
		cfg.ProblemHeader = d.ProblemHeader
	case "-":
		cfg.ProblemHeader = ""
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.ProxyCSRF == "" {
		cfg.ProxyCSRF = d.ProxyCSRF
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = d.ClientIP
	}
	if cfg.FromTrustedProxy == nil {
		cfg.FromTrustedProxy = func(*fiber.Ctx) bool { return false }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = d.Clock
	}
	switch {
	case cfg.Token && cfg.Signer == nil:
		return cfg, fmt.Errorf("%w: Token needs a Signer", ErrConfig)
	case cfg.TokenTTL < 0 || cfg.Timeout < 0:
		return cfg, fmt.Errorf("%w: TokenTTL and Timeout must be positive", ErrConfig)
	case !validMode(cfg.ForwardAuthCSRF) || !validMode(cfg.ProxyCSRF):
		return cfg, fmt.Errorf("%w: CSRF modes are %q or %q", ErrConfig, CSRFToken, CSRFOrigin)
	}
	return cfg, nil
}

func validMode(m CSRFMode) bool { return m == CSRFToken || m == CSRFOrigin }

// Gateway serves forward-auth and the reverse proxy.
type Gateway struct {
	cfg    Options
	log    *slog.Logger
	names  headerNames
	tokens *upstreamTokens // nil when Token is off
	routes []*route        // longest prefix first

	// answerKeys are names' identity headers for forward-auth answers,
	// set by Mount (they follow the app's header normalisation).
	answerKeys answerKeys

	verify                  fiber.Handler
	proxyAuth, proxyOptAuth fiber.Handler

	// sessionCookie and accessCookie are the credential cookie names authn
	// reads (Authn's, or authn's defaults).
	sessionCookie, accessCookie string
}

// New checks cfg and builds the gateway.
func New(cfg Options) (*Gateway, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, sessionCookie: cfg.Authn.SessionCookie, accessCookie: cfg.Authn.AccessCookie}
	if g.sessionCookie == "" {
		g.sessionCookie = authn.ConfigDefault.SessionCookie
	}
	if g.accessCookie == "" {
		g.accessCookie = authn.ConfigDefault.AccessCookie
	}
	g.names = newHeaderNames(cfg)
	if cfg.Token {
		g.tokens = newUpstreamTokens(cfg.Signer, cfg.TokenAudience, cfg.TokenTTL, cfg.Clock)
	}
	if g.routes, err = buildRoutes(cfg.Routes, cfg.Timeout); err != nil {
		return nil, err
	}
	g.verify = g.verifyAuthn()
	g.proxyAuth, g.proxyOptAuth = g.proxyAuthn()
	return g, nil
}

// Mount registers forward-auth (when enabled) and the proxy routes (when
// any). Mount it after tokenshift's own routes and before the catch-all 404:
// the proxy never serves tokenshift's reserved paths and passes what no
// route matches on to the next handler.
func (g *Gateway) Mount(app *fiber.App) {
	g.answerKeys = newAnswerKeys(&g.names, app.Config().DisableHeaderNormalizing)
	if g.cfg.ForwardAuth {
		// Envoy's ext_authz HTTP service appends the original path to its
		// path_prefix and keeps the original method.
		app.All("/auth/verify", g.verify, g.verified)
		app.All("/auth/verify/*", g.verify, g.verified)
	}
	if len(g.routes) > 0 {
		app.Use(g.matchRoute)
		app.Use(g.proxyAuth)
		app.Use(g.proxyOptAuth)
		app.Use(g.forward)
	}
}

// Owns reports whether the gateway answers the request: forward-auth (when
// enabled) or a proxy route, including paths the proxy refuses. tokenshift's
// CORS middleware skips these (httpapi.Server.SkipCORS): a preflight to a
// proxied path is the app's to answer, the app's answers keep the app's
// CORS policy, and a preflight-shaped request to /auth/verify must be
// authenticated like any other check, not answered 204.
func (g *Gateway) Owns(c *fiber.Ctx) bool {
	if g.cfg.ForwardAuth && isVerifyPath(c.Path()) {
		return true
	}
	if len(g.routes) == 0 {
		return false
	}
	r, err := g.resolve(requestPath(c))
	return r != nil || err != nil
}

// isVerifyPath reports whether path is one Fiber routes to forward-auth:
// /auth/verify or under it, in any case (routing ignores case).
func isVerifyPath(path string) bool {
	const p = "/auth/verify"
	return len(path) >= len(p) && strings.EqualFold(path[:len(p)], p) && (len(path) == len(p) || path[len(p)] == '/')
}

// Close releases the upstreams' idle connections.
func (g *Gateway) Close() {
	for _, r := range g.routes {
		if t, ok := r.transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	}
}

// isAuthorization reports whether name is the Authorization header, whose
// value then is "Bearer <jwt>".
func isAuthorization(name string) bool { return strings.EqualFold(name, fiber.HeaderAuthorization) }
