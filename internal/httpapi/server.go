// Package httpapi is tokenshift's HTTP surface: routes.go lists every route;
// the handlers here speak problem+json errors with stable codes.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/store"
)

// UsageRecorder is what the HTTP layer needs from usage counting.
type UsageRecorder interface {
	authn.Recorder
	Login(clientID string, outcome auth.LoginOutcome)
	// ShadowMismatch counts a disagreement found by the shadow check.
	ShadowMismatch(clientID, kind string)
	MetricsHandler() http.Handler
}

// Options are the server's dependencies and settings; cmd builds them from config.
type Options struct {
	Logger *slog.Logger
	// Store holds the CSRF keys and pre-sessions, and is pinged by /readyz.
	Store store.Store
	// Logins is the login lifecycle every /auth handler calls; it also
	// knows the registered clients and verifies credentials for authn.
	Logins *logins.Service
	// Legacy verifies the product's own sessions (legacy.sources); nil =
	// none.
	Legacy authn.LegacyVerifier
	Flags  authn.Decider
	Usage  UsageRecorder

	Cookies     CookieOptions
	CORSOrigins []string

	BodyLimit      int
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	TrustedProxies []string

	// ShadowCheck compares the credentials of requests that carry several,
	// in phases dual and prefer-jwt, and counts and logs disagreements
	// (migration.shadow_check).
	ShadowCheck bool

	// JWKSMaxAge is the Cache-Control max-age of the JWKS, in whole seconds;
	// key rotation keeps it at most its publish delay. 0 means 5m.
	JWKSMaxAge time.Duration
	// ReadyChecks run after the store ping on /readyz; the first error (an
	// *auth.Error for a precise code) makes the instance not ready.
	ReadyChecks []ReadyCheck

	// Mount adds further routes (the admin API) after the core ones.
	Mount func(app *fiber.App, s *Server)
	// Version is reported by /livez.
	Version string
	Clock   func() time.Time
}

// Server holds the Fiber app and what handlers share.
type Server struct {
	App     *fiber.App
	opts    Options
	log     *slog.Logger
	logins  *logins.Service
	csrf    *CSRF
	ids     *requestIDs
	authn   authn.Config
	proxies trustedProxies

	// meBodies keeps rendered GET /auth/me answers (me_json.go).
	meBodies *meCache

	// skipCORS is set by SkipCORS while mounting, before serving.
	skipCORS func(c *fiber.Ctx) bool

	// Authn is the standard authentication middleware, for the routes
	// mounted outside this package (the admin API). The core routes build
	// their own from s.authn and their route-local options (routes.go).
	Authn fiber.Handler
}

// New builds the server. It fails on missing dependencies, never later.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Store == nil || o.Logins == nil || o.Usage == nil {
		return nil, errors.New("httpapi: store, logins and usage are required")
	}
	o = o.withDefaults()
	csrf, err := NewCSRF(ctx, CSRFOptions{Store: o.Store, AllowedOrigins: o.CORSOrigins, Grace: o.Logins.MaxCredentialLife(), Clock: o.Clock, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	// The key keeper lives as long as the server's context (the serve
	// command's), like the other background loops.
	go csrf.Run(ctx)
	proxies, err := parseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return nil, err
	}
	corsAllowed, err := corsOrigins(o.CORSOrigins)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    o,
		log:     o.Logger,
		logins:  o.Logins,
		csrf:    csrf,
		ids:     newRequestIDs(),
		proxies: proxies,
	}
	s.meBodies = newMeCache()

	// Trusted proxies govern X-Forwarded-Host/-Proto (c.Hostname,
	// c.Protocol). No ProxyHeader: c.IP() stays the TCP peer and the client
	// address comes from ClientIP (clientip.go).
	s.App = fiber.New(fiber.Config{
		AppName:                 "tokenshift",
		ErrorHandler:            errorHandler(o.Logger),
		BodyLimit:               o.BodyLimit,
		ReadTimeout:             o.ReadTimeout,
		WriteTimeout:            o.WriteTimeout,
		IdleTimeout:             o.IdleTimeout,
		DisableStartupMessage:   true,
		EnableTrustedProxyCheck: true,
		TrustedProxies:          o.TrustedProxies,
		ReadBufferSize:          16 << 10,
	})
	// Before Fiber: its handler answers an unknown method itself, as plain
	// text, and never sees the raw headers (framing.go).
	s.App.Server().Handler = s.guardRequests(s.App.Server().Handler)
	// The frame of every request, in this order, as one Use: Fiber steps
	// from handler to handler of one route directly, but searches its
	// route list again for each further route (issue 13: a tenth of a
	// request went to hops). First, so it covers everything mounted
	// after: the admin API and the gateway too.
	s.App.Use(
		recover.New(recover.Config{EnableStackTrace: true, StackTraceHandler: func(c *fiber.Ctx, e any) {
			s.log.Error("panic in handler", "panic", e, "path", c.Path(), "request_id", requestID(c))
		}}),
		fiber.Handler(s.requestContext),
		newCORS(corsAllowed, func(c *fiber.Ctx) bool { return s.skipCORS != nil && s.skipCORS(c) }),
		refuseDuplicateCookies(o.Cookies),
		// Every /auth answer that got this far; the route table states
		// it too (routes.go).
		onSegment("/auth", noStore),
	)

	s.authn = s.standardAuthn(o, csrf)
	s.Authn = authn.New(s.authn)
	s.mountRoutes(o.Mount)
	return s, nil
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}

// standardAuthn is the configuration of the standard authentication
// middleware; routes.go derives each route's variant from it.
func (s *Server) standardAuthn(o Options, csrf *CSRF) authn.Config {
	base := authn.Config{
		Sessions:      o.Logins,
		Tokens:        o.Logins.TokenVerifier(),
		Legacy:        o.Legacy,
		Flags:         o.Flags,
		Usage:         o.Usage,
		CSRF:          csrf,
		SessionCookie: o.Cookies.SessionCookie(),
		AccessCookie:  o.Cookies.AccessCookie(),
	}
	if o.ShadowCheck {
		base.Shadow, base.OnShadowMismatch = true, s.shadowMismatch
	}
	return base
}

// notRouted answers what no route took: 405 with Allow when the path exists
// for other methods, else 404; problem+json either way, never Fiber's text
// page. The allowed methods are collected once, from the static paths.
func notRouted(app *fiber.App) fiber.Handler {
	allowed := map[string][]string{}
	for _, r := range app.GetRoutes(true) {
		if len(r.Params) > 0 || strings.ContainsAny(r.Path, "*:") || r.Method == fiber.MethodHead {
			continue
		}
		if !slices.Contains(allowed[r.Path], r.Method) {
			allowed[r.Path] = append(allowed[r.Path], r.Method)
		}
	}
	allow := make(map[string]string, len(allowed))
	for p, ms := range allowed {
		slices.Sort(ms)
		allow[p] = strings.Join(ms, ", ")
	}
	return func(c *fiber.Ctx) error {
		if a, ok := allow[c.Path()]; ok {
			c.Set(fiber.HeaderAllow, a)
			return auth.Errorf(auth.CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", c.Method(), c.Path(), a)
		}
		return auth.Errorf(auth.CodeNotFound, "no route for %s %s", c.Method(), c.Path())
	}
}

// AuthnConfig is the configuration of the standard authentication middleware,
// for routes mounted outside this package that need a variant of it (the
// gateway's forward-auth and reverse proxy): same verifiers, flags, usage
// counting and CSRF protection.
func (s *Server) AuthnConfig() authn.Config { return s.authn }

// SkipCORS exempts the requests skip reports from tokenshift's CORS
// middleware: routes mounted through Options.Mount that answer for another
// application (the gateway's proxy routes and forward-auth) must leave
// preflights and CORS headers to it. Call it from Options.Mount.
func (s *Server) SkipCORS(skip func(c *fiber.Ctx) bool) { s.skipCORS = skip }

// CSRF is the server's CSRF protection.
func (s *Server) CSRF() *CSRF { return s.csrf }

// CSRFToken returns the CSRF token for a login (used by the admin dashboard).
func (s *Server) CSRFToken(sid string) string { return s.csrf.Token(sid) }

// Logger is the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Clients returns the registered clients.
func (s *Server) Clients() []auth.Client { return s.logins.Clients() }
