package admin

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// dashboardApp mounts the dashboard the way Handlers.Mount does: before an
// /admin group whose middleware refuses everyone, so a page request that fell
// through to the API would show up as 401.
func dashboardApp(t *testing.T) *fiber.App {
	t.Helper()
	app := fiber.New()
	mountDashboard(app)
	api := app.Group("/admin", func(c *fiber.Ctx) error { return c.SendStatus(fiber.StatusUnauthorized) })
	api.Get("/usage", func(c *fiber.Ctx) error { return c.SendString("usage") })
	return app
}

func TestDashboardServing(t *testing.T) {
	app := dashboardApp(t)
	tests := []struct {
		name        string
		method      string
		path        string
		header      map[string]string
		status      int
		contentType string
		bodyHas     string
		location    string
	}{
		{name: "page", path: "/admin/", status: 200, contentType: "text/html; charset=utf-8", bodyHas: `<script type="module" src="assets/main.js"></script>`},
		{name: "head of page", method: "HEAD", path: "/admin/", status: 200, contentType: "text/html; charset=utf-8"},
		{name: "without slash redirects", path: "/admin", status: 301, location: "/admin/"},
		{name: "entry module", path: "/admin/assets/main.js", status: 200, contentType: "text/javascript; charset=utf-8", bodyHas: "from './api.js'"},
		{name: "format module", path: "/admin/assets/format.js", status: 200, contentType: "text/javascript; charset=utf-8", bodyHas: "export function fmtTime"},
		{name: "api module", path: "/admin/assets/api.js", status: 200, contentType: "text/javascript; charset=utf-8", bodyHas: "export async function api"},
		{name: "chart module", path: "/admin/assets/chart.js", status: 200, contentType: "text/javascript; charset=utf-8", bodyHas: "export function renderChart"},
		{name: "controls module", path: "/admin/assets/controls.js", status: 200, contentType: "text/javascript; charset=utf-8", bodyHas: "export function wireControls"},
		{name: "styles", path: "/admin/assets/app.css", status: 200, contentType: "text/css; charset=utf-8", bodyHas: "[hidden]"},
		{name: "unknown asset", path: "/admin/assets/nope.js", status: 404},
		{name: "index is not an asset", path: "/admin/assets/index.html", status: 404},
		{name: "no traversal", path: "/admin/assets/../dashboard.go", status: 404},
		{name: "empty asset name", path: "/admin/assets/", status: 404},
		{name: "api is not shadowed", path: "/admin/usage", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, tt.path, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", res.StatusCode, tt.status, truncate(string(body), 200))
			}
			if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if tt.bodyHas != "" && !strings.Contains(string(body), tt.bodyHas) {
				t.Errorf("body lacks %q", tt.bodyHas)
			}
			if tt.location != "" && res.Header.Get("Location") != tt.location {
				t.Errorf("Location = %q, want %q", res.Header.Get("Location"), tt.location)
			}
			if tt.status == 200 {
				assertSecurityHeaders(t, res.Header)
			}
		})
	}
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, directive := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(h.Get("Content-Security-Policy"), directive) {
			t.Errorf("CSP lacks %q", directive)
		}
	}
	if h.Get("ETag") == "" {
		t.Error("no ETag")
	}
}

func TestDashboardRevalidation(t *testing.T) {
	app := dashboardApp(t)
	res, err := app.Test(httptest.NewRequest("GET", "/admin/assets/main.js", nil), -1)
	if err != nil {
		t.Fatal(err)
	}
	etag := res.Header.Get("ETag")
	tests := []struct {
		name        string
		ifNoneMatch string
		status      int
	}{
		{name: "same version", ifNoneMatch: etag, status: 304},
		{name: "weak form of the same version", ifNoneMatch: "W/" + etag, status: 304},
		{name: "among others", ifNoneMatch: `"old", ` + etag, status: 304},
		{name: "other version", ifNoneMatch: `"old"`, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/admin/assets/main.js", nil)
			req.Header.Set("If-None-Match", tt.ifNoneMatch)
			res, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.status)
			}
			if res.Header.Get("Content-Security-Policy") != contentSecurityPolicy {
				t.Error("revalidation answer lacks the CSP")
			}
		})
	}
}

// TestDashboardFollowsCSP reads the shipped files: the policy forbids inline
// script, inline styles and handlers, and a page that relied on them would
// silently break in the browser.
func TestDashboardFollowsCSP(t *testing.T) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		t.Fatal(err)
	}
	assets, err := loadAssets(sub)
	if err != nil {
		t.Fatal(err)
	}
	html := string(assets["index.html"].body)
	forbidden := []struct {
		name string
		re   *regexp.Regexp
	}{
		{name: "inline script", re: regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)},
		{name: "inline event handler", re: regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)},
		{name: "style attribute", re: regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)},
		{name: "style element", re: regexp.MustCompile(`(?i)<style[\s>]`)},
		{name: "javascript: URL", re: regexp.MustCompile(`(?i)javascript:`)},
		{name: "remote resource", re: regexp.MustCompile(`(?i)(?:src|href)\s*=\s*"(?:https?:)?//`)},
	}
	for _, f := range forbidden {
		if m := f.re.FindString(html); m != "" {
			t.Errorf("index.html has %s: %q", f.name, m)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("index.html has a script without src: %q", tag)
		}
	}
	// Every local asset the page names must be served.
	for _, m := range regexp.MustCompile(`(?:src|href)="assets/([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, ok := assets[m[1]]; !ok {
			t.Errorf("index.html references assets/%s, which is not embedded", m[1])
		}
	}
	checkModules(t, assets)
}

// checkModules follows the imports from main.js: every module must be
// embedded (the browser would fail on a missing one only at run time), be
// imported by a relative path (no CDN, no bare name needing a build step),
// and build its DOM without innerHTML, eval or inline styles.
func checkModules(t *testing.T, assets map[string]asset) {
	t.Helper()
	imports := regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^'"]*\bfrom\s+'([^']+)'`)
	seen := map[string]bool{}
	queue := []string{"main.js"}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		a, ok := assets[name]
		if !ok {
			t.Errorf("module %s is imported but not embedded", name)
			continue
		}
		js := string(a.body)
		if strings.Contains(js, "innerHTML") || strings.Contains(js, "eval(") || strings.Contains(js, ".style.") {
			t.Errorf("%s uses innerHTML, eval or inline styles", name)
		}
		for _, m := range imports.FindAllStringSubmatch(js, -1) {
			if !strings.HasPrefix(m[1], "./") || strings.Contains(m[1][2:], "/") {
				t.Errorf("%s imports %q; want a sibling module by relative path", name, m[1])
				continue
			}
			queue = append(queue, m[1][2:])
		}
	}
	for name := range assets {
		if strings.HasSuffix(name, ".js") && !seen[name] {
			t.Errorf("%s is embedded but main.js never imports it", name)
		}
	}
	if len(seen) < 5 {
		t.Errorf("main.js reaches only %d modules", len(seen))
	}
}
