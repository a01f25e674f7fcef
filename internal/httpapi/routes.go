package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// routes is the whole HTTP surface of the core service. The admin API adds its
// routes through Options.Mount (see internal/admin), and so does the gateway
// (internal/gateway): ANY /auth/verify[/*] (forward-auth) and the proxy.routes
// prefixes.
//
//	POST /auth/login             email+password (JSON or form) → session and/or tokens, per phase
//	GET  /auth/me                the caller, whatever credential proved it
//	GET  /auth/csrf              CSRF token of the current cookie session; without one, a pre-session token for the login form
//	POST /auth/logout            revoke the login (session + every token of its sid); ?all=true: every login of the user;
//	                             any credential, even one the phase retired (it must be able to end itself)
//	POST /auth/refresh           rotate a refresh token
//	POST /auth/revoke            RFC 7009: revoke one access token (its jti) or one refresh token (its login)
//	POST /auth/exchange          session → token pair bound to the same sid
//	POST /auth/password          change the caller's password; revokes every login of the user
//	GET  /auth/sessions          the caller's live logins (any credential, even a retired one)
//	DELETE /auth/sessions/:sid   end one of the caller's logins (any credential, even a retired one)
//	GET  /.well-known/jwks.json  public signing keys
//	GET  /livez, /readyz         liveness, readiness (store reachable)
//	GET  /metrics                Prometheus
//	GET  /docs/migration         guide for client developers (target of Link rel="deprecation")
//	GET  /                       a page naming the dashboard, the migration guide and the JWKS (see mountRoutes)
func (s *Server) routes() {
	a := s.App
	// Before every route, in the request's frame (server.go): the request
	// id and security headers, CORS, refuseDuplicateCookies, and noStore
	// for everything under /auth.
	a.Get("/livez", s.livez)
	a.Get("/readyz", s.readyz)
	a.Get("/metrics", s.metrics)
	a.Get("/.well-known/jwks.json", s.jwks)
	a.Get("/docs/migration", s.migrationDocs)

	// Each route's authentication: the standard configuration with the
	// options the route varies, stated here next to the route.
	var (
		signedIn = s.Authn
		// A session the phase retired may still be exchanged for tokens.
		exchange = s.authnWith(allowRetiredSession)
		// A stale credential gets a pre-session token (handlers_csrf.go).
		csrf = s.csrfAuthn(s.authn)
		// Listing and ending one's own logins ignore the phase: a retired
		// credential must still be able to end itself (authn.Config.IgnorePhase).
		ownLogins         = s.authnWith(ignorePhase)
		ownLoginsOptional = s.authnWith(ignorePhase, optional)
	)
	g := a.Group("/auth") // every answer no-store (noStore, in the frame)
	g.Post("/login", s.login)
	g.Get("/me", signedIn, s.me)
	g.Get("/csrf", csrf, s.csrfToken)
	g.Post("/logout", ownLoginsOptional, s.logout)
	g.Post("/refresh", s.refresh)
	g.Post("/revoke", s.revoke)
	g.Post("/exchange", exchange, s.exchange)
	g.Post("/password", signedIn, s.changePassword)
	g.Get("/sessions", ownLogins, s.mySessions)
	g.Delete("/sessions/:sid", ownLogins, s.revokeMySession)
}

// mountRoutes registers, in this order: the core routes, what mount adds
// (the admin API, the gateway), the home page, and the catch-all 404. The
// home page comes after mount so that a gateway proxy route for / (the
// product's own home page behind tokenshift) keeps answering /; only without
// one does tokenshift's page take it.
func (s *Server) mountRoutes(mount func(app *fiber.App, s *Server)) {
	s.routes()
	if mount != nil {
		mount(s.App, s)
	}
	s.App.Get("/", s.home)
	s.App.Use(notRouted(s.App))
}

// authnOption is one way a route's authentication differs from the standard one.
type authnOption func(*authn.Config)

func optional(c *authn.Config)            { c.Optional = true }
func ignorePhase(c *authn.Config)         { c.IgnorePhase = true }
func allowRetiredSession(c *authn.Config) { c.AllowRetiredSession = true }

// authnWith builds the standard authentication with the route's options.
func (s *Server) authnWith(opts ...authnOption) fiber.Handler {
	cfg := s.authn
	for _, o := range opts {
		o(&cfg)
	}
	return authn.New(cfg)
}
