package gateway_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/gateway"
)

// routes mounts one route per (prefix, upstream, auth).
func routes(rs ...gateway.Route) func(*gateway.Options) {
	return func(c *gateway.Options) { c.Routes = rs }
}

func TestProxyHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Up-Hop")
		h.Set("X-Up-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-App", "legacy")
		h.Add("Set-Cookie", "app_a=1; Path=/; HttpOnly")
		h.Add("Set-Cookie", "app_b=2; Path=/; Secure; Partitioned")
		h.Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<p>hello</p>")
	})
	e := newEnv(t, envOptions{gateway: routes(gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired})})
	cr := e.login(t, "web")

	r := httptest.NewRequest("GET", "/app/page?q=1&r=%2F", nil)
	r.Header.Set("Cookie", "ts_session="+cr.session+"; app_pref=dark; ts_refresh=x")
	r.Header.Set("X-Auth-User", "u-admin")
	r.Header.Set("X-Auth-Roles", "admin")
	r.Header.Set("X-Auth-Token", "forged")
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	r.Header.Set("X-Forwarded-Host", "evil.example")
	r.Header.Set("Forwarded", "for=6.6.6.6")
	r.Header.Set("X-Real-IP", "6.6.6.6")
	r.Header.Set("X-Request-Id", "client-chosen")
	r.Header.Set("Connection", "X-Client-Hop")
	r.Header.Set("X-Client-Hop", "1")
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("Proxy-Authorization", "Basic eDp5")
	r.Header.Set("Accept-Encoding", "gzip")
	r.Header.Set("X-Custom", "kept")
	res := e.do(t, r)
	if res.StatusCode != 200 || string(res.body) != "<p>hello</p>" {
		t.Fatalf("status %d body %q", res.StatusCode, res.body)
	}

	got := up.last(t)
	want := map[string]string{
		"X-Auth-User": cr.userID, "X-Auth-Email": aliceEmail, "X-Auth-Client": "web", "X-Auth-Scheme": "session", "X-Auth-Roles": "user",
		"X-Forwarded-For": "0.0.0.0", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com",
		"Cookie": "app_pref=dark", "X-Custom": "kept", "Accept-Encoding": "gzip",
		"X-Request-Id": res.Header.Get("X-Request-Id"),
	}
	for k, v := range want {
		if got.header.Get(k) != v || len(got.header.Values(k)) != 1 {
			t.Errorf("upstream %s = %q, want exactly %q", k, got.header.Values(k), v)
		}
	}
	for _, k := range []string{"X-Auth-Token", "Forwarded", "X-Real-Ip", "X-Client-Hop", "Keep-Alive", "Proxy-Authorization", "Authorization", "Connection"} {
		if v := got.header.Values(k); len(v) != 0 {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	if got.path != "/app/page" || got.query != "q=1&r=%2F" || got.host != strings.TrimPrefix(up.URL, "http://") {
		t.Errorf("upstream path %q query %q host %q", got.path, got.query, got.host)
	}
	if got.header.Get("User-Agent") != "" {
		t.Errorf("User-Agent %q added", got.header.Get("User-Agent"))
	}

	// The answer: end-to-end headers and every cookie, no hop-by-hop ones,
	// none of tokenshift's own page policy.
	if res.Header.Get("X-App") != "legacy" || res.Header.Get("Content-Type") != "text/html" {
		t.Errorf("X-App %q Content-Type %q", res.Header.Get("X-App"), res.Header.Get("Content-Type"))
	}
	if sc := res.Header.Values("Set-Cookie"); len(sc) != 2 || !strings.Contains(strings.Join(sc, "|"), "Partitioned") {
		t.Errorf("Set-Cookie = %q", sc)
	}
	for _, k := range []string{"X-Up-Hop", "Keep-Alive", "Proxy-Authenticate", "Referrer-Policy", "X-Content-Type-Options", "Content-Security-Policy", "X-Frame-Options"} {
		if v := res.Header.Get(k); v != "" {
			t.Errorf("client received %s: %q", k, v)
		}
	}
}

func TestProxyAuthModes(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired},
		gateway.Route{Prefix: "/app/public", Upstream: up.URL, Auth: gateway.AuthNone},
		gateway.Route{Prefix: "/maybe", Upstream: up.URL, Auth: gateway.AuthOptional},
		gateway.Route{Prefix: "/", Upstream: up.URL, Auth: gateway.AuthNone},
	)})
	cr := e.login(t, "web")
	tests := []struct {
		name       string
		method     string
		path       string
		bearer     string
		wantStatus int
		wantCode   string
		wantPath   string // what the upstream saw; "" = must not be reached
		wantUser   string
	}{
		{name: "required without credential", path: "/app/x", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "required with bad bearer", path: "/app/x", bearer: "nope", wantStatus: 401, wantCode: "invalid_token"},
		{name: "required with bearer", path: "/app/x", bearer: cr.access, wantStatus: 200, wantPath: "/app/x", wantUser: cr.userID},
		{name: "prefix itself", path: "/app", bearer: cr.access, wantStatus: 200, wantPath: "/app", wantUser: cr.userID},
		{name: "longest prefix wins: none", path: "/app/public/logo.png", wantStatus: 200, wantPath: "/app/public/logo.png"},
		{name: "none ignores a bad credential", path: "/app/public/x", bearer: "nope", wantStatus: 200, wantPath: "/app/public/x"},
		{name: "optional anonymous", path: "/maybe/x", wantStatus: 200, wantPath: "/maybe/x"},
		{name: "optional with bearer", path: "/maybe/x", bearer: cr.access, wantStatus: 200, wantPath: "/maybe/x", wantUser: cr.userID},
		{name: "optional refuses a bad credential", path: "/maybe/x", bearer: "nope", wantStatus: 401, wantCode: "invalid_token"},
		{name: "segment boundary: /apple is not /app", path: "/apple", wantStatus: 200, wantPath: "/apple"},
		{name: "case does not bypass a route", path: "/APP/x", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "dot segments are resolved before matching", path: "/app/public/../secret", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "encoded dot segments too", path: "/app/public/%2e%2e/secret", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "dot segments forwarded resolved", path: "/app/public/../secret", bearer: cr.access, wantStatus: 200, wantPath: "/app/secret", wantUser: cr.userID},
		{name: "reserved path never proxied by /", path: "/auth/nothing-here", wantStatus: 404, wantCode: "not_found"},
		{name: "reserved path any case", path: "/Admin/x", wantStatus: 404, wantCode: "not_found"},
		{name: "tokenshift routes still served", path: "/livez", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, "http://example.com"+tt.path, nil)
			// A forged identity must never survive, whatever the route.
			r.Header.Set("X-Auth-User", "u-forged")
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			res := e.do(t, r)
			if tt.wantCode != "" {
				res.problem(t, tt.wantStatus, tt.wantCode)
			} else if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.wantStatus, res.body)
			}
			if tt.wantPath == "" {
				if up.count() != before {
					t.Fatalf("the upstream was reached: %+v", up.last(t))
				}
				return
			}
			got := up.last(t)
			if got.path != tt.wantPath {
				t.Errorf("upstream path = %q, want %q", got.path, tt.wantPath)
			}
			if got.header.Get("X-Auth-User") != tt.wantUser {
				t.Errorf("upstream X-Auth-User = %q, want %q", got.header.Get("X-Auth-User"), tt.wantUser)
			}
			if tt.wantUser == "" && got.header.Get("X-Auth-Scheme") != "" {
				t.Errorf("anonymous request carried X-Auth-Scheme %q", got.header.Get("X-Auth-Scheme"))
			}
			if got.header.Get("Authorization") != "" {
				t.Errorf("the client's bearer went upstream")
			}
		})
	}
}

func TestProxyPaths(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/svc", Upstream: up.URL + "/base/", Auth: gateway.AuthNone, StripPrefix: true},
		gateway.Route{Prefix: "/keep", Upstream: up.URL + "/base", Auth: gateway.AuthNone, PreserveHost: true},
	)})
	for _, tc := range []struct{ path, wantPath, wantQuery, wantHost string }{
		{path: "/svc/a/b?x=1", wantPath: "/base/a/b", wantQuery: "x=1"},
		{path: "/svc", wantPath: "/base/"},
		{path: "/svc/sp%20ace", wantPath: "/base/sp ace"},
		{path: "/keep/a", wantPath: "/base/keep/a", wantHost: "app.example"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://app.example"+tc.path, nil)
			if res := e.do(t, r); res.StatusCode != 200 {
				t.Fatalf("status %d %s", res.StatusCode, res.body)
			}
			got := up.last(t)
			if got.path != tc.wantPath || got.query != tc.wantQuery {
				t.Errorf("upstream got %q?%q, want %q?%q", got.path, got.query, tc.wantPath, tc.wantQuery)
			}
			wantHost := tc.wantHost
			if wantHost == "" {
				wantHost = strings.TrimPrefix(up.URL, "http://")
			}
			if got.host != wantHost {
				t.Errorf("upstream Host = %q, want %q", got.host, wantHost)
			}
		})
	}
}

func TestProxyBodiesAndMethods(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app/big":
			w.Header().Set("Content-Length", "1048576")
			_, _ = w.Write(big)
		case "/app/echo":
			w.WriteHeader(201)
			_, _ = io.WriteString(w, r.Method+":"+r.Header.Get("Content-Type")+":")
			_, _ = io.Copy(w, r.Body)
		case "/app/empty":
			w.WriteHeader(204)
		}
	})
	e := newEnv(t, envOptions{gateway: routes(gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired})})
	cr := e.login(t, "web")
	bearer := func(r *http.Request) *http.Request { r.Header.Set("Authorization", "Bearer "+cr.access); return r }

	res := e.do(t, bearer(httptest.NewRequest("GET", "/app/big", nil)))
	if res.StatusCode != 200 || !bytes.Equal(res.body, big) {
		t.Fatalf("big body: status %d, %d bytes", res.StatusCode, len(res.body))
	}
	r := bearer(httptest.NewRequest("PUT", "/app/echo", strings.NewReader(`{"a":1}`)))
	r.Header.Set("Content-Type", "application/json")
	if res := e.do(t, r); res.StatusCode != 201 || string(res.body) != `PUT:application/json:{"a":1}` {
		t.Fatalf("echo: %d %q", res.StatusCode, res.body)
	}
	// An encoded body goes upstream as sent, with its Content-Encoding.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(strings.Repeat("compressible ", 100)))
	_ = zw.Close()
	r = bearer(httptest.NewRequest("POST", "/app/echo", bytes.NewReader(gz.Bytes())))
	r.Header.Set("Content-Encoding", "gzip")
	r.Header.Set("Content-Type", "text/plain")
	if res := e.do(t, r); res.StatusCode != 201 {
		t.Fatalf("gzip body: %d", res.StatusCode)
	}
	if got := up.last(t); got.body != gz.String() || got.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("the upstream got %d bytes with Content-Encoding %q, want the %d gzip bytes", len(got.body), got.header.Get("Content-Encoding"), gz.Len())
	}
	res = e.do(t, bearer(httptest.NewRequest("HEAD", "/app/big", nil)))
	if res.StatusCode != 200 || res.Header.Get("Content-Length") != "1048576" || len(res.body) != 0 {
		t.Fatalf("HEAD: %d Content-Length %q body %d", res.StatusCode, res.Header.Get("Content-Length"), len(res.body))
	}
	if res := e.do(t, bearer(httptest.NewRequest("DELETE", "/app/empty", nil))); res.StatusCode != 204 {
		t.Fatalf("204: %d", res.StatusCode)
	}
}

func TestProxyUpstreamFailures(t *testing.T) {
	// A port nothing listens on: take one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	release := make(chan struct{})
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(release) }) // before the upstream's Close, which waits for its handlers
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/down", Upstream: down, Auth: gateway.AuthNone},
		gateway.Route{Prefix: "/slow", Upstream: slow.URL, Auth: gateway.AuthNone, Timeout: 300 * time.Millisecond},
	)})
	res := e.do(t, httptest.NewRequest("GET", "/down/x", nil))
	m := res.problem(t, 502, "upstream_unavailable")
	if strings.Contains(string(res.body), ln.Addr().String()) {
		t.Errorf("the problem reveals the upstream address: %v", m)
	}
	start := time.Now()
	e.do(t, httptest.NewRequest("GET", "/slow/x", nil)).problem(t, 504, "upstream_timeout")
	took := time.Since(start)
	t.Logf("504 after %s (timeout 300ms)", took)
	if took < 250*time.Millisecond || took > 5*time.Second {
		t.Errorf("504 after %s, want about the 300ms timeout", took)
	}
}

func TestProxyCSRF(t *testing.T) {
	up := newUpstream(t, nil)
	envs := map[gateway.CSRFMode]*env{}
	logins := map[gateway.CSRFMode]creds{}
	for _, mode := range []gateway.CSRFMode{gateway.CSRFToken, gateway.CSRFOrigin} {
		envs[mode] = newEnv(t, envOptions{gateway: func(c *gateway.Options) {
			c.ProxyCSRF = mode
			c.Routes = []gateway.Route{{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired}}
		}})
		logins[mode] = envs[mode].login(t, "web")
	}
	for _, tc := range []struct {
		name   string
		mode   gateway.CSRFMode
		token  bool
		origin string
		want   int
	}{
		{name: "token mode without token", mode: gateway.CSRFToken, want: 403},
		{name: "token mode with token", mode: gateway.CSRFToken, token: true, want: 200},
		{name: "token mode cross origin", mode: gateway.CSRFToken, token: true, origin: "https://evil.example", want: 403},
		{name: "origin mode without token", mode: gateway.CSRFOrigin, want: 200},
		{name: "origin mode same origin", mode: gateway.CSRFOrigin, origin: "http://example.com", want: 200},
		{name: "origin mode cross origin", mode: gateway.CSRFOrigin, origin: "https://evil.example", want: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, cr := envs[tc.mode], logins[tc.mode]
			before := up.count()
			r := httptest.NewRequest("POST", "/app/orders", strings.NewReader("qty=1"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Cookie", "ts_session="+cr.session)
			if tc.token {
				r.Header.Set("X-CSRF-Token", cr.csrf)
			}
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			res := e.do(t, r)
			if tc.want == 403 {
				res.problem(t, 403, "csrf_failed")
				if up.count() != before {
					t.Fatal("a refused request reached the upstream")
				}
				return
			}
			if res.StatusCode != tc.want || up.last(t).body != "qty=1" {
				t.Fatalf("status %d, upstream body %q", res.StatusCode, up.last(t).body)
			}
		})
	}
}

func TestProxyDeprecationAndToken(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{flags: prefer, gateway: func(c *gateway.Options) {
		c.Token = true
		c.Routes = []gateway.Route{{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired}}
	}})
	cr := e.login(t, "web")
	r := httptest.NewRequest("GET", "/app/x", nil)
	r.Header.Set("Cookie", "ts_session="+cr.session)
	r.Header.Set("X-Auth-Token", "forged")
	res := e.do(t, r)
	if res.StatusCode != 200 || res.Header.Get("Deprecation") != prefer.DeprecationHeader || res.Header.Get("Sunset") != prefer.SunsetHeader {
		t.Fatalf("status %d Deprecation %q Sunset %q", res.StatusCode, res.Header.Get("Deprecation"), res.Header.Get("Sunset"))
	}
	tok := up.last(t).header.Get("X-Auth-Token")
	if _, err := jwt.Parse(tok, jwksKey(t, e), jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("upstream")); err != nil {
		t.Fatalf("upstream token %q: %v", tok, err)
	}
}

// With strip_credentials off the upstream still gets the client's cookies
// and bearer (an app that reads them during its own migration).
func TestProxyKeepCredentials(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: func(c *gateway.Options) {
		c.KeepCredentials = true
		c.Routes = []gateway.Route{{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired}}
	}})
	cr := e.login(t, "web")
	r := httptest.NewRequest("GET", "/app/x", nil)
	r.Header.Set("Cookie", "ts_session="+cr.session)
	r.Header.Set("Authorization", "Bearer "+cr.access)
	if res := e.do(t, r); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := up.last(t)
	if got.header.Get("Cookie") != "ts_session="+cr.session || got.header.Get("Authorization") != "Bearer "+cr.access {
		t.Errorf("Cookie %q Authorization %q", got.header.Get("Cookie"), got.header.Get("Authorization"))
	}
}
