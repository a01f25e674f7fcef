package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
)

func TestCORS(t *testing.T) {
	ts := newTestServer(t, nil)
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, x-csrf-token"}
	}
	tests := []struct {
		name        string
		r           treq
		allowOrigin string
	}{
		{name: "preflight from an allowed origin", r: treq{method: "OPTIONS", path: "/auth/login", header: preflight("https://app.example.com")}, allowOrigin: "https://app.example.com"},
		{name: "preflight from an allowed origin in upper case", r: treq{method: "OPTIONS", path: "/auth/me", header: preflight("HTTPS://APP.EXAMPLE.COM")}, allowOrigin: "https://app.example.com"},
		{name: "preflight from an unlisted origin", r: treq{method: "OPTIONS", path: "/auth/login", header: preflight("https://evil.example")}},
		{name: "preflight from a sibling subdomain", r: treq{method: "OPTIONS", path: "/auth/login", header: preflight("https://evil.app.example.com")}},
		{name: "preflight from the allowed host over http", r: treq{method: "OPTIONS", path: "/auth/login", header: preflight("http://app.example.com")}},
		{name: "preflight from null", r: treq{method: "OPTIONS", path: "/auth/login", header: preflight("null")}},
		{name: "simple request from an allowed origin", r: treq{path: "/livez", header: map[string]string{"Origin": "https://app.example.com"}}, allowOrigin: "https://app.example.com"},
		{name: "simple request from an unlisted origin", r: treq{path: "/livez", header: map[string]string{"Origin": "https://evil.example"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.r)
			h := r.header
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if h.Get("Access-Control-Allow-Origin") == "*" {
				t.Fatal("wildcard origin")
			}
			if !strings.Contains(h.Get("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin: caches would mix answers per origin", h.Get("Vary"))
			}
			if tc.allowOrigin == "" {
				if h.Get("Access-Control-Allow-Credentials") != "" {
					t.Fatal("credentials allowed for an unlisted origin")
				}
				return
			}
			if h.Get("Access-Control-Allow-Credentials") != "true" {
				t.Fatalf("Access-Control-Allow-Credentials %q, want true", h.Get("Access-Control-Allow-Credentials"))
			}
			if tc.r.method == "OPTIONS" {
				if r.status != fiber.StatusNoContent {
					t.Fatalf("preflight status %d", r.status)
				}
				allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
				for _, want := range []string{"authorization", "content-type", "x-csrf-token"} {
					if !strings.Contains(allowed, want) {
						t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, want)
					}
				}
				if strings.Contains(allowed, "*") {
					t.Errorf("Access-Control-Allow-Headers %q is a wildcard", allowed)
				}
			}
		})
	}
}

func TestCORSOriginsRefused(t *testing.T) {
	for _, bad := range []string{"*", "null", "https://*.example.com", "ftp://example.com", "https://example.com/path", "example.com", "https://user@example.com", "https://example.com?x=1"} {
		if _, err := corsOrigins([]string{bad}); err == nil {
			t.Errorf("%q accepted as a CORS origin", bad)
		}
	}
	got, err := corsOrigins([]string{"HTTPS://App.Example.com/", " http://localhost:3000 ", ""})
	if err != nil {
		t.Fatal(err)
	}
	if !got["https://app.example.com"] || !got["http://localhost:3000"] || len(got) != 2 {
		t.Fatalf("normalised origins %v", got)
	}
	// The server refuses to start with one, rather than panic in Fiber.
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("New panicked: %v", p)
		}
	}()
	ctx := t.Context()
	ts := newTestServer(t, nil)
	o := ts.opts
	o.CORSOrigins = []string{"*"}
	if _, err := New(ctx, o.Options); err == nil {
		t.Fatal("New accepted a wildcard CORS origin")
	}
}

// For a request without Origin, newCORS's own path writes what Fiber's
// middleware writes: Vary: Origin, added to a Vary already set.
func TestCORSWithoutOriginAsFiber(t *testing.T) {
	fiberCORS := cors.New(cors.Config{AllowOriginsFunc: func(string) bool { return true }, AllowCredentials: true})
	ours := newCORS(map[string]bool{"https://app.example.com": true}, nil)
	for _, before := range []string{"", "Accept-Encoding"} {
		vary := func(mw fiber.Handler) string {
			app := fiber.New()
			app.Use(func(c *fiber.Ctx) error {
				if before != "" {
					c.Set(fiber.HeaderVary, before)
				}
				return c.Next()
			}, mw)
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
			res, err := app.Test(httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("CORS headers without Origin: %v", res.Header)
			}
			return strings.Join(res.Header.Values("Vary"), "|")
		}
		if got, want := vary(ours), vary(fiberCORS); got != want {
			t.Errorf("Vary before %q: %q, Fiber writes %q", before, got, want)
		}
	}
}
