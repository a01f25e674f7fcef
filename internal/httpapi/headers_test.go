package httpapi

import (
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

func TestHTMLSecurityHeaders(t *testing.T) {
	ts := newTestServer(t, func(o *testOptions) {
		o.Mount = func(app *fiber.App, _ *Server) {
			html := func(csp string) fiber.Handler {
				return func(c *fiber.Ctx) error {
					if csp != "" {
						c.Set(fiber.HeaderContentSecurityPolicy, csp)
					}
					c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
					return c.SendString("<!doctype html><title>t</title>")
				}
			}
			app.Get("/t/plain", html(""))
			app.Get("/t/own", html("default-src 'self'; script-src 'self'"))
			app.Get("/t/inline", html("default-src 'self'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"))
			app.Get("/t/inline-default", html("default-src 'self' 'unsafe-inline'"))
			app.Get("/t/no-script-policy", html("frame-ancestors 'none'"))
			app.Get("/t/error", func(c *fiber.Ctx) error {
				c.Set(fiber.HeaderContentType, fiber.MIMETextHTML)
				return fiber.NewError(fiber.StatusTeapot, "html handler failed")
			})
		}
	})
	for _, tc := range []struct {
		path    string
		wantCSP string
	}{
		{path: "/t/plain", wantCSP: defaultHTMLPolicy},
		{path: "/t/own", wantCSP: "default-src 'self'; script-src 'self'; frame-ancestors 'none'"},
		{path: "/t/inline", wantCSP: defaultHTMLPolicy},
		{path: "/t/inline-default", wantCSP: defaultHTMLPolicy},
		{path: "/t/no-script-policy", wantCSP: defaultHTMLPolicy},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := ts.do(t, treq{path: tc.path})
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			h := r.header
			csp := h.Get("Content-Security-Policy")
			if csp != tc.wantCSP {
				t.Fatalf("CSP %q, want %q", csp, tc.wantCSP)
			}
			if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Fatalf("CSP %q allows inline script or framing", csp)
			}
			for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
		})
	}
	// An HTML handler's error leaves as problem+json, not an HTML page.
	wantProblem(t, ts.do(t, treq{path: "/t/error"}), fiber.StatusTeapot, "invalid_request")
	// JSON answers keep the common headers and get no HTML policy.
	r := ts.do(t, treq{path: "/livez"})
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Content-Security-Policy") != "" {
		t.Fatalf("JSON answer headers: %v", r.header)
	}
}
