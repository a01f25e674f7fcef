package main

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/httpapi"
)

// gatewayConfig maps forward_auth.* and proxy.* to the gateway's options;
// mountAll adds the server's middleware configuration, CSRF and signer.
func gatewayConfig(cfg *config.Config) gateway.Options {
	f, p := cfg.ForwardAuth, cfg.Proxy
	cookies := httpapi.CookieOptions{
		SessionName: cfg.Session.CookieName, AccessName: cfg.JWT.AccessCookieName,
		RefreshName: cfg.JWT.RefreshCookieName, Secure: cfg.Session.CookieSecure,
	}
	gc := gateway.Options{
		Headers: gateway.Headers{
			User: f.UserHeader, Email: f.EmailHeader, Client: f.ClientHeader,
			Scheme: f.SchemeHeader, Roles: f.RolesHeader,
		},
		Token:             f.Token,
		TokenHeader:       f.TokenHeader,
		TokenAudience:     f.TokenAudience,
		TokenTTL:          f.TokenTTL,
		ForwardAuth:       f.Enabled,
		ForwardAuthCSRF:   gateway.CSRFMode(f.CSRF),
		ProblemHeader:     f.ProblemHeader,
		Timeout:           p.Timeout,
		KeepCredentials:   !p.StripCredentials,
		CredentialCookies: []string{cookies.SessionCookie(), cookies.AccessCookie(), cookies.RefreshCookie()},
		ProxyCSRF:         gateway.CSRFMode(p.CSRF),
		StripHeaders:      p.StripHeaders,
	}
	if gc.ProblemHeader == "" {
		gc.ProblemHeader = "-"
	}
	for _, r := range p.Routes {
		gc.Routes = append(gc.Routes, gateway.Route{
			Prefix: r.Prefix, Upstream: r.Upstream, Auth: gateway.AuthMode(r.Auth), Timeout: r.Timeout,
			StripPrefix: r.StripPrefix, PreserveHost: r.PreserveHost,
		})
	}
	return gc
}

// mountAll adds the admin surface, then forward-auth and the proxy routes,
// which pass what they do not serve on to the catch-all 404.
func mountAll(a *app) func(*fiber.App, *httpapi.Server) {
	admin := mountAdmin(a)
	return func(f *fiber.App, s *httpapi.Server) {
		admin(f, s)
		gc := gatewayConfig(a.cfg)
		gc.Authn, gc.CSRF, gc.Signer, gc.Logger = s.AuthnConfig(), s.CSRF(), a.tokens, a.log
		gc.ClientIP = s.ClientIP
		gc.FromTrustedProxy = s.FromTrustedProxy
		g, err := gateway.New(gc)
		if err != nil {
			// config.Validate checked every key New reads; reaching this is
			// a bug, and refusing to start beats serving without the routes.
			a.gatewayErr = err
			return
		}
		a.gateway = g
		s.SkipCORS(g.Owns)
		g.Mount(f)
	}
}
