package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// FuzzMatch: whatever path a client sends, a matched route covers it at a
// segment boundary (ignoring ASCII case), a reserved path is never matched,
// the upstream path stays under the upstream's base path, and a path is
// either refused or read the same with and without its ;parameters: no
// "..;" segment, no backslash, and the same route both ways, so a servlet
// container or IIS behind the proxy cannot see another route's path.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/", "/app", "/app/", "/apple", "/APP/x", "/auth", "/Auth/x", "/authority", "/app/public/x", "/.well-known/x", "", "app", "/app\x00", "/ä/app",
		"/app/public/..;/x", "/app/public/.;/x", "/app/public/..;x/y", "/app;x/public/y", "/app/public;jsessionid=1/x", "/app/public%3b/x", "/app/public/%2e%2e;/x", "/app/public%5c..%5cx", "/app/public\\..\\x", "/auth;x/verify", "/app/x;y", "/;/app/public"} {
		f.Add(s)
	}
	routes, err := buildRoutes([]Route{
		{Prefix: "/app", Upstream: "http://127.0.0.1:1/base"},
		{Prefix: "/app/public", Upstream: "http://127.0.0.1:1", Auth: AuthNone, StripPrefix: true},
		{Prefix: "/", Upstream: "http://127.0.0.1:1", Auth: AuthOptional},
	}, time.Second)
	if err != nil {
		f.Fatal(err)
	}
	g := &Gateway{routes: routes}
	f.Fuzz(func(t *testing.T, raw string) {
		// What a request-target becomes before matching: fasthttp's
		// normalized path (decoded, dot segments and // resolved).
		var u fasthttp.URI
		u.SetPath(raw)
		path := string(u.Path())
		r, err := g.resolve(path)
		if err != nil {
			if r != nil {
				t.Fatalf("%q refused and matched %q", path, r.prefix)
			}
			return
		}
		stripped, ok := stripPathParams(path)
		if strings.ContainsAny(path, ";\\") {
			if r != nil && !ok {
				t.Fatalf("%q (a backslash or a ..; segment) matched %q", path, r.prefix)
			}
			if ok && g.match(stripped) != r {
				t.Fatalf("%q matched %v, but without its ;parameters (%q) it matches %v", path, r, stripped, g.match(stripped))
			}
		}
		if g.match(path) != r {
			t.Fatalf("%q resolved to %v, matched as sent to %v", path, r, g.match(path))
		}
		lower := asciiLower(path)
		if isReserved(lower) {
			if r != nil {
				t.Fatalf("reserved path %q matched %q", path, r.prefix)
			}
			return
		}
		if r == nil {
			return
		}
		if ok && isReserved(asciiLower(stripped)) {
			t.Fatalf("%q matched %q, but without its ;parameters it is the reserved %q", path, r.prefix, stripped)
		}
		if r.prefix != "/" && lower != r.prefix && !strings.HasPrefix(lower, r.prefix+"/") {
			t.Fatalf("%q matched %q off a segment boundary", path, r.prefix)
		}
		for _, other := range g.routes {
			if len(other.prefix) > len(r.prefix) && (lower == other.prefix || strings.HasPrefix(lower, other.prefix+"/")) {
				t.Fatalf("%q matched %q, but the longer %q covers it", path, r.prefix, other.prefix)
			}
		}
		if up := r.upstreamPath(path); !strings.HasPrefix(up, r.basePath) {
			t.Fatalf("upstream path %q left the base path %q", up, r.basePath)
		}
	})
}

// FuzzOriginalMethod: no header can make an unsafe request safe for the
// CSRF decision.
func FuzzOriginalMethod(f *testing.F) {
	f.Add("GET", "POST", "")
	f.Add("POST", "GET", "GET")
	f.Add("GET", "get", "")
	f.Add("GET", "", "DELETE")
	f.Add("HEAD", "GET", "PATCH")
	app := fiber.New()
	f.Add("GET", "GET", "GET\x00POST")
	f.Fuzz(func(t *testing.T, method, original, forwarded string) {
		fc := &fasthttp.RequestCtx{}
		fc.Request.Header.SetMethod(method)
		fc.Request.Header.Set(headerOriginalMethod, original)
		// A second copy of each header (a client's, next to the proxy's):
		// every copy counts. NUL separates the forwarded header's copies.
		for _, v := range strings.Split(forwarded, "\x00") {
			fc.Request.Header.Add(headerForwardedMethod, v)
		}
		c := app.AcquireCtx(fc)
		defer app.ReleaseCtx(c)
		// What fasthttp kept of each (it drops invalid header values).
		seen := []string{c.Method()}
		fc.Request.Header.VisitAll(func(k, v []byte) {
			if strings.EqualFold(string(k), headerOriginalMethod) || strings.EqualFold(string(k), headerForwardedMethod) {
				seen = append(seen, string(v))
			}
		})
		unsafe := false
		for _, m := range seen {
			if m != "" && !authn.IsSafeMethod(m) {
				unsafe = true
			}
		}
		if got := OriginalMethod(c); unsafe && authn.IsSafeMethod(got) {
			t.Fatalf("methods %q decided safe (%q)", seen, got)
		}
	})
}
