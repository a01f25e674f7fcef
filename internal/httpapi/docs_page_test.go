package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
)

func TestMigrationDocsPage(t *testing.T) {
	sunset := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	dep := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	early := dep.Add(-48 * time.Hour)
	tests := []struct {
		name   string
		state  featureflags.State
		has    []string
		hasNot []string
	}{
		{name: "no dates", state: featureflags.State{Phase: featureflags.PhaseDual},
			has: []string{"No sunset date has been announced yet", "POST /auth/exchange", "X-CSRF-Token", "session_retired"}, hasNot: []string{"deprecated for some applications"}},
		{name: "sunset and deprecation", state: featureflags.State{Phase: featureflags.PhasePreferJWT, Sunset: &sunset, DeprecatedAt: &dep,
			ClientsDeprecatedAt: map[string]time.Time{"mobile": early}},
			has: []string{`<time datetime="2027-06-30T00:00:00Z">Wed, 30 Jun 2027 00:00:00 GMT</time>`,
				`<time datetime="2026-08-30T12:00:00Z">Sun, 30 Aug 2026 12:00:00 GMT</time>`}, hasNot: []string{"No sunset date"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, err := featureflags.NewFlags(tt.state)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{opts: Options{Flags: flags}}
			app := fiber.New()
			app.Get("/docs/migration", s.migrationDocs)
			res, err := app.Test(httptest.NewRequest("GET", "/docs/migration", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			body := string(raw)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			for _, want := range tt.has {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, not := range tt.hasNot {
				if strings.Contains(body, not) {
					t.Errorf("page has %q", not)
				}
			}
			// CSP-safe: no script at all, and the one style block is the one
			// the policy's hash allows, byte for byte.
			if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
				t.Error("the page carries script")
			}
			m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
			if m == nil {
				t.Fatal("no style block")
			}
			sum := sha256.Sum256([]byte(m[1]))
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.HasPrefix(csp, "default-src 'none'") {
				t.Errorf("CSP %q does not allow exactly the page's style block", csp)
			}
		})
	}
}

// TestHomePage: GET / names where a newcomer goes next, as a page without
// script or remote resources under the documentation pages' policy.
func TestHomePage(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name        string
		method      string
		status      int
		contentType string
		has         []string
	}{
		{name: "page", method: "GET", status: 200, contentType: "text/html; charset=utf-8",
			has: []string{`href="/admin/"`, `href="/docs/migration"`, `href="/.well-known/jwks.json"`, "dashboard", "JWKS"}},
		{name: "head", method: "HEAD", status: 200, contentType: "text/html; charset=utf-8"},
		{name: "other methods are refused, not routed elsewhere", method: "POST", status: 405, contentType: "application/problem+json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.App.Test(httptest.NewRequest(tt.method, "/", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			body := string(raw)
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.contentType) {
				t.Fatalf("%d %q, want %d %q (body %.200s)", res.StatusCode, res.Header.Get("Content-Type"), tt.status, tt.contentType, body)
			}
			for _, want := range tt.has {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if tt.status != 200 {
				return
			}
			for h, want := range map[string]string{
				"Content-Security-Policy": migrationCSP, "X-Frame-Options": "DENY",
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
			} {
				if got := res.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if tt.method == "HEAD" {
				return
			}
			lower := strings.ToLower(body)
			if strings.Contains(lower, "<script") || regexp.MustCompile(`\son[a-z]+=`).MatchString(lower) {
				t.Error("the page carries script")
			}
			if m := regexp.MustCompile(`(?:src|href)="(?:[a-z]+:)?//`).FindString(lower); m != "" {
				t.Errorf("the page loads or links a remote resource: %q", m)
			}
			m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
			sum := sha256.Sum256([]byte(m[1]))
			if !strings.Contains(migrationCSP, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
				t.Error("the policy does not allow the page's style block")
			}
		})
	}
	// The links tokenshift itself serves lead somewhere (the dashboard is
	// mounted by internal/admin, outside this package).
	for _, path := range []string{"/docs/migration", "/.well-known/jwks.json"} {
		res, err := s.App.Test(httptest.NewRequest("GET", path, nil), -1)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", path, res.StatusCode, err)
		}
	}
}

// TestHomePageLeavesRootToMount: a route mounted for / (the gateway's proxy
// route for the product's own home page) keeps answering /.
func TestHomePageLeavesRootToMount(t *testing.T) {
	s := newTestServer(t, func(o *testOptions) {
		o.Mount = func(app *fiber.App, _ *Server) {
			app.Use(func(c *fiber.Ctx) error {
				if c.Path() != "/" {
					return c.Next()
				}
				return c.SendString("the product's home")
			})
		}
	})
	res, err := s.App.Test(httptest.NewRequest("GET", "/", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(body) != "the product's home" {
		t.Fatalf("GET / = %d %q; want the mounted route's answer", res.StatusCode, body)
	}
}
