package e2e

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

const sunsetEnv = "TOKENSHIFT_MIGRATION_SUNSET=2027-06-30T00:00:00Z"

// loginCreds are the credentials of one login, as a client holds them.
type loginCreds struct {
	userID, access, csrf string
	session, accessCk    *http.Cookie
}

func loginAs(t *testing.T, via *instance, clientID string) loginCreds {
	t.Helper()
	lr := via.login(t, aliceEmail, alicePass, clientID)
	m := lr.json(t)
	c := loginCreds{session: lr.cookie("ts_session"), accessCk: lr.cookie("ts_access")}
	c.userID, _ = m["user_id"].(string)
	c.access, _ = m["access_token"].(string)
	c.csrf, _ = m["csrf_token"].(string)
	return c
}

// upstreamKeyfunc verifies upstream tokens the way the app would: with the
// JWKS tokenshift publishes, nothing else.
func upstreamKeyfunc(t *testing.T, ts *instance) jwt.Keyfunc {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(ts.do(t, req{path: "/.well-known/jwks.json"}).body, &set); err != nil {
		t.Fatal(err)
	}
	return func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k["kid"] == tok.Header["kid"] && k["kty"] == "OKP" {
				x, err := base64.RawURLEncoding.DecodeString(k["x"])
				return ed25519.PublicKey(x), err
			}
		}
		return nil, errors.New("kid not in the JWKS")
	}
}

// checkIdentity asserts what the app received for alice through client and
// scheme, whatever the client forged.
func checkIdentity(t *testing.T, got appRequest, userID, clientID, scheme string) {
	t.Helper()
	want := map[string]string{
		"X-Auth-User": userID, "X-Auth-Email": aliceEmail, "X-Auth-Client": clientID,
		"X-Auth-Scheme": scheme, "X-Auth-Roles": "user",
	}
	for k, v := range want {
		if vs := got.header.Values(k); len(vs) != 1 || vs[0] != v {
			t.Errorf("the app received %s = %q, want exactly %q", k, vs, v)
		}
	}
}

// forged are identity headers a client tries to slip to the app.
var forged = map[string]string{"X-Auth-User": "u-admin", "X-Auth-Roles": "admin", "X-Auth-Email": "ops@example.com", "X-Auth-Token": "forged"}

// TestNginxAuthRequest runs Debian's nginx with the auth_request
// configuration of docs/integrations.md in front of the real tokenshift
// binary and a recording app.
func TestNginxAuthRequest(t *testing.T) {
	nginxBinary(t)
	t.Parallel()
	app := newAppRecorder(t)
	// nginx connects from 127.0.0.1: only as a trusted proxy are its
	// X-Forwarded-Proto and -Host believed for the CSRF origin check.
	ts := start(t, "TOKENSHIFT_MIGRATION_PHASE=prefer-jwt", sunsetEnv, "TOKENSHIFT_FORWARD_AUTH_TOKEN=true", "TOKENSHIFT_SERVER_TRUSTED_PROXIES=127.0.0.1")
	port := redistest.FreePort(t)
	startNginx(t, authRequestConfig(t, ts.URL, app.URL, port), port)
	origin := fmt.Sprintf("http://127.0.0.1:%d", port)
	via := &instance{t: t, URL: origin, logs: ts.logs} // requests go to nginx

	web := loginAs(t, via, "web") // login through nginx's /auth/ location
	spa := loginAs(t, via, "spa")
	if web.session == nil || web.access == "" || web.csrf == "" || spa.accessCk == nil {
		t.Fatalf("login through nginx: %+v %+v", web, spa)
	}
	keyfunc := upstreamKeyfunc(t, ts)

	t.Run("session cookie: identity reaches the app, forged headers do not", func(t *testing.T) {
		r := via.do(t, req{path: "/orders/7", cookies: []*http.Cookie{web.session}, header: forged})
		if r.status != 200 || r.header.Get("X-App") != "legacy" {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		checkIdentity(t, got, web.userID, "web", "session")
		// Phase prefer-jwt: nginx adds tokenshift's deprecation headers.
		if r.header.Get("Deprecation") == "" || r.header.Get("Sunset") != "Wed, 30 Jun 2027 00:00:00 GMT" || !strings.Contains(r.header.Get("Link"), `rel="deprecation"`) {
			t.Errorf("Deprecation %q Sunset %q Link %q", r.header.Get("Deprecation"), r.header.Get("Sunset"), r.header.Get("Link"))
		}
		// The upstream token verifies with the JWKS and is nobody's access token.
		tok := got.header.Get("X-Auth-Token")
		var cl jwt.MapClaims
		if _, err := jwt.ParseWithClaims(tok, &cl, keyfunc, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("upstream"), jwt.WithExpirationRequired()); err != nil {
			t.Fatalf("upstream token %q: %v", tok, err)
		}
		if cl["sub"] != web.userID || cl["auth_scheme"] != "session" {
			t.Errorf("upstream token claims %v", cl)
		}
		expectProblem(t, ts.do(t, req{path: "/auth/me", bearer: tok}), 401, "invalid_token")
	})
	t.Run("bearer", func(t *testing.T) {
		r := via.do(t, req{path: "/orders/7", bearer: web.access, header: forged})
		if r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		checkIdentity(t, app.last(t), web.userID, "web", "bearer")
		if r.header.Get("Deprecation") != "" {
			t.Errorf("a bearer request got Deprecation %q", r.header.Get("Deprecation"))
		}
	})
	t.Run("jwt cookie", func(t *testing.T) {
		r := via.do(t, req{path: "/orders/7", cookies: []*http.Cookie{spa.accessCk}, header: forged})
		if r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		checkIdentity(t, app.last(t), web.userID, "spa", "jwt_cookie")
	})

	refused := []struct {
		name   string
		r      req
		status int
		code   string
		www    string
	}{
		{name: "no credential", r: req{path: "/orders/7", header: forged}, status: 401, code: "unauthenticated", www: "Bearer"},
		{name: "forged bearer", r: req{path: "/orders/7", bearer: "eyJhbGciOiJub25lIn0.e30."}, status: 401, code: "invalid_token", www: `Bearer error="invalid_token"`},
		{name: "cookie POST without CSRF token", r: req{method: "POST", path: "/orders", raw: "qty=1", ctype: "application/x-www-form-urlencoded",
			cookies: []*http.Cookie{web.session}}, status: 403, code: "csrf_failed"},
		{name: "cookie DELETE from another origin", r: req{method: "DELETE", path: "/orders/7", cookies: []*http.Cookie{web.session},
			header: map[string]string{"X-CSRF-Token": web.csrf, "Origin": "https://evil.example"}}, status: 403, code: "csrf_failed"},
		{name: "jwt cookie PUT without CSRF token", r: req{method: "PUT", path: "/orders/7", raw: "{}", ctype: "application/json",
			cookies: []*http.Cookie{spa.accessCk}}, status: 403, code: "csrf_failed"},
		// nginx drops Upgrade from the check, but Sec-WebSocket-Key and
		// Origin reach it: a cross-site handshake riding the cookie is refused.
		{name: "cookie WebSocket handshake from another origin", r: req{path: "/ws", cookies: []*http.Cookie{web.session},
			header: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
				"Sec-WebSocket-Version": "13", "Origin": "https://evil.example"}}, status: 403, code: "csrf_failed"},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			before := app.count()
			r := via.do(t, tt.r)
			// nginx drops the check's body; the error_page returns the
			// problem tokenshift sent in X-Auth-Problem.
			expectProblem(t, r, tt.status, tt.code)
			if got := r.header.Get("WWW-Authenticate"); got != tt.www {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.www)
			}
			if app.count() != before {
				t.Fatalf("a refused request reached the app: %+v", app.last(t))
			}
		})
	}

	t.Run("cookie POST with CSRF token from the same origin", func(t *testing.T) {
		r := via.do(t, req{method: "POST", path: "/orders", raw: "qty=2", ctype: "application/x-www-form-urlencoded",
			cookies: []*http.Cookie{web.session}, header: map[string]string{"X-CSRF-Token": web.csrf, "Origin": origin}})
		if r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		if got := app.last(t); got.method != "POST" || got.body != "qty=2" {
			t.Fatalf("the app received %s %q", got.method, got.body)
		}
	})
	t.Run("underscore variants of identity headers never reach the app", func(t *testing.T) {
		// nginx drops header names with "_" (underscores_in_headers off),
		// which CGI-style servers would read as X-Auth-User.
		r := via.do(t, req{path: "/orders/7", bearer: web.access, header: map[string]string{"x_auth_user": "u-admin", "X_Auth_Roles": "admin"}})
		if r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		for name := range got.header {
			if strings.Contains(name, "_") {
				t.Errorf("the app received %s: %q", name, got.header[name])
			}
		}
		checkIdentity(t, got, web.userID, "web", "bearer")
	})
	t.Run("bearer POST needs no CSRF token", func(t *testing.T) {
		if r := via.do(t, req{method: "POST", path: "/orders", raw: "qty=3", ctype: "text/plain", bearer: web.access}); r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
	})
	t.Run("logout through nginx ends both credentials at the app", func(t *testing.T) {
		r := via.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{web.session}, header: map[string]string{"X-CSRF-Token": web.csrf, "Origin": origin}})
		if r.status != 200 && r.status != 204 {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		before := app.count()
		expectProblem(t, via.do(t, req{path: "/orders/7", cookies: []*http.Cookie{web.session}}), 401, "invalid_session")
		expectProblem(t, via.do(t, req{path: "/orders/7", bearer: web.access}), 401, "invalid_token")
		if app.count() != before {
			t.Fatal("a revoked credential reached the app")
		}
	})
}

// TestReverseProxyMode: tokenshift itself in front of the same kind of app.
func TestReverseProxyMode(t *testing.T) {
	t.Parallel()
	app := newAppRecorder(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := fmt.Sprintf(`
proxy:
  timeout: 5s
  routes:
    - {prefix: /app, upstream: %[1]q, auth: required}
    - {prefix: /app/assets, upstream: %[1]q, auth: none}
    - {prefix: /down, upstream: %[2]q, auth: none}
    - {prefix: /slow, upstream: %[1]q, auth: none, timeout: 500ms}
    - {prefix: /pub, upstream: %[1]q, auth: optional}
    - {prefix: /authors, upstream: %[1]q, auth: none}
    - {prefix: /administrator, upstream: %[1]q, auth: none}
  strip_headers: [X-Remote-User]
cors:
  allowed_origins: [https://spa.example]
`, app.URL, down)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, "TOKENSHIFT_CONFIG="+cfg, "TOKENSHIFT_MIGRATION_PHASE=prefer-jwt", sunsetEnv)
	web := loginAs(t, ts, "web")

	t.Run("session cookie", func(t *testing.T) {
		r := ts.do(t, req{path: "/app/orders/7", cookies: []*http.Cookie{web.session, {Name: "app_pref", Value: "dark"}}, header: forged})
		if r.status != 200 || r.header.Get("X-App") != "legacy" {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		checkIdentity(t, got, web.userID, "web", "session")
		if got.header.Get("X-Auth-Token") != "" {
			t.Error("the client's X-Auth-Token reached the app")
		}
		if got.header.Get("Cookie") != "app_pref=dark" {
			t.Errorf("the app received Cookie %q, want only its own app_pref=dark", got.header.Get("Cookie"))
		}
		if r.header.Get("Deprecation") == "" || r.header.Get("Sunset") == "" {
			t.Errorf("Deprecation %q Sunset %q", r.header.Get("Deprecation"), r.header.Get("Sunset"))
		}
	})
	t.Run("bearer", func(t *testing.T) {
		if r := ts.do(t, req{path: "/app/orders/7", bearer: web.access, header: forged}); r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		checkIdentity(t, got, web.userID, "web", "bearer")
		if got.header.Get("Authorization") != "" {
			t.Error("the bearer went upstream")
		}
	})
	t.Run("no credential never reaches the app", func(t *testing.T) {
		before := app.count()
		expectProblem(t, ts.do(t, req{path: "/app/orders/7", header: forged}), 401, "unauthenticated")
		if app.count() != before {
			t.Fatal("the app was reached")
		}
	})
	t.Run("cookie POST without CSRF token never reaches the app", func(t *testing.T) {
		before := app.count()
		expectProblem(t, ts.do(t, req{method: "POST", path: "/app/orders", raw: "qty=1", ctype: "application/x-www-form-urlencoded", cookies: []*http.Cookie{web.session}}), 403, "csrf_failed")
		if app.count() != before {
			t.Fatal("the app was reached")
		}
		r := ts.do(t, req{method: "POST", path: "/app/orders", raw: "qty=1", ctype: "application/x-www-form-urlencoded",
			cookies: []*http.Cookie{web.session}, header: map[string]string{"X-CSRF-Token": web.csrf}})
		if r.status != 200 || app.last(t).body != "qty=1" {
			t.Fatalf("with token: %d, app got %q", r.status, app.last(t).body)
		}
	})
	t.Run("auth none strips forged identity", func(t *testing.T) {
		if r := ts.do(t, req{path: "/app/assets/logo.png", header: forged}); r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		for k := range forged {
			if v := got.header.Get(k); v != "" {
				t.Errorf("the app received the forged %s %q", k, v)
			}
		}
	})
	t.Run("upstream down", func(t *testing.T) {
		expectProblem(t, ts.do(t, req{path: "/down/x"}), 502, "upstream_unavailable")
	})
	t.Run("upstream slow", func(t *testing.T) {
		start := time.Now()
		expectProblem(t, ts.do(t, req{path: "/slow/x"}), 504, "upstream_timeout")
		took := time.Since(start)
		t.Logf("504 after %s (route timeout 500ms)", took)
		if took < 450*time.Millisecond || took > 8*time.Second {
			t.Errorf("504 after %s, want about 500ms", took)
		}
	})
	t.Run("path parameters cannot climb out of an unprotected route", func(t *testing.T) {
		for _, path := range []string{"/app/assets/..;/orders/7", "/app/assets/%2e%2e;/orders/7", "/app/assets/..%5corders", "/app;x/orders/7"} {
			before := app.count()
			expectProblem(t, ts.do(t, req{path: path}), 400, "invalid_request")
			if app.count() != before {
				t.Fatalf("%s reached the app: %+v", path, app.last(t))
			}
		}
	})
	t.Run("underscore and proxy-trust headers are dropped", func(t *testing.T) {
		h := map[string]string{"x_auth_user": "u-admin", "X_Auth_Roles": "admin", "X-Original-URL": "/admin", "X-Forwarded-User": "ops", "X-Remote-User": "ops"}
		if r := ts.do(t, req{path: "/app/assets/x", header: h}); r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		got := app.last(t)
		for name := range got.header {
			switch lower := strings.ToLower(name); {
			case strings.Contains(name, "_"), lower == "x-original-url", lower == "x-forwarded-user", lower == "x-remote-user", strings.HasPrefix(lower, "x-auth-"):
				t.Errorf("the app received %s: %q", name, got.header[name])
			}
		}
	})
	t.Run("optional route: a stale session cookie is anonymous and expired", func(t *testing.T) {
		r := ts.do(t, req{path: "/pub/page", cookies: []*http.Cookie{{Name: "ts_session", Value: "stale-or-logged-out"}}})
		if r.status != 200 {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
		if got := app.last(t); got.header.Get("X-Auth-User") != "" {
			t.Errorf("anonymous request carried X-Auth-User %q", got.header.Get("X-Auth-User"))
		}
		c := r.cookie("ts_session")
		if c == nil || c.Value != "" || (c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(time.Now()))) {
			t.Errorf("the stale cookie was not expired: Set-Cookie %q", r.header.Values("Set-Cookie"))
		}
		expectProblem(t, ts.do(t, req{path: "/pub/page", bearer: "not-a-token"}), 401, "invalid_token")
	})
	t.Run("CORS preflights are the app's", func(t *testing.T) {
		before := app.count()
		r := ts.do(t, req{method: "OPTIONS", path: "/app/orders/7", header: map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "PUT"}})
		if r.status != 200 || r.header.Get("X-App") != "legacy" || app.count() != before+1 {
			t.Fatalf("the preflight did not reach the app: %d %v", r.status, r.header)
		}
		if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("tokenshift answered the app's preflight: %v", r.header)
		}
		// tokenshift's own endpoints keep their CORS.
		own := ts.do(t, req{method: "OPTIONS", path: "/auth/me", header: map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}})
		if own.status != 204 || own.header.Get("Access-Control-Allow-Origin") != "https://spa.example" {
			t.Errorf("/auth/me preflight: %d %v", own.status, own.header)
		}
	})
	t.Run("app paths sharing a prefix with /auth or /admin are the app's", func(t *testing.T) {
		for _, path := range []string{"/authors/1", "/administrator"} {
			r := ts.do(t, req{path: path})
			if r.status != 200 || r.header.Get("X-App") != "legacy" || r.header.Get("Cache-Control") != "" {
				t.Errorf("%s: status %d Cache-Control %q X-App %q", path, r.status, r.header.Get("Cache-Control"), r.header.Get("X-App"))
			}
		}
	})
	t.Run("tokenshift's own paths are not proxied", func(t *testing.T) {
		if r := ts.do(t, req{path: "/livez"}); r.status != 200 || r.header.Get("X-App") != "" {
			t.Fatalf("/livez: %d %v", r.status, r.header)
		}
	})
}

// TestConfigValidateRouteCase: prefixes the gateway would read as one
// (matching ignores case) or as reserved are refused by config validate,
// exit 2, naming the key, and without an environment variable that does not
// exist for list entries.
func TestConfigValidateRouteCase(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := `
proxy:
  routes:
    - {prefix: /app, upstream: "http://127.0.0.1:3000", auth: none}
    - {prefix: /APP, upstream: "http://127.0.0.1:3000", auth: required}
    - {prefix: /Admin/x, upstream: "http://127.0.0.1:3000", auth: none}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "config", "validate", "--config", cfg).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2:\n%s", err, out)
	}
	for _, want := range []string{"proxy.routes[1].prefix", "proxy.routes[2].prefix", "set in a config file; no env variable"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "TOKENSHIFT_PROXY_ROUTES") {
		t.Errorf("output names an env variable that does not exist:\n%s", out)
	}
}
