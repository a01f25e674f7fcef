package gateway_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/token"
)

func TestVerifyIdentity(t *testing.T) {
	e := newEnv(t, envOptions{})
	web := e.login(t, "web")
	spa := e.login(t, "spa")
	tests := []struct {
		name       string
		method     string
		path       string
		cookie     string
		bearer     string
		header     map[string]string
		wantScheme string
		wantClient string
	}{
		{name: "session cookie", method: "GET", path: "/auth/verify", cookie: "ts_session=" + web.session, wantScheme: "session", wantClient: "web"},
		{name: "bearer", method: "GET", path: "/auth/verify", bearer: web.access, wantScheme: "bearer", wantClient: "web"},
		{name: "jwt cookie", method: "GET", path: "/auth/verify", cookie: "ts_access=" + spa.accessCookie, wantScheme: "jwt_cookie", wantClient: "spa"},
		{name: "envoy: original method and path appended", method: "DELETE", path: "/auth/verify/app/orders/7?x=1", bearer: web.access, wantScheme: "bearer", wantClient: "web"},
		{name: "nginx: original in X-Original-*", method: "GET", path: "/auth/verify", bearer: web.access,
			header: map[string]string{"X-Original-Method": "PUT", "X-Original-URI": "/app/x"}, wantScheme: "bearer", wantClient: "web"},
		{name: "forged identity headers are ignored", method: "GET", path: "/auth/verify", bearer: web.access,
			header: map[string]string{"X-Auth-User": "u-admin", "X-Auth-Roles": "admin"}, wantScheme: "bearer", wantClient: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			res := e.do(t, r)
			if res.StatusCode != 200 {
				t.Fatalf("status %d, body %s", res.StatusCode, res.body)
			}
			want := map[string]string{
				"X-Auth-User": web.userID, "X-Auth-Email": aliceEmail, "X-Auth-Client": tt.wantClient,
				"X-Auth-Scheme": tt.wantScheme, "X-Auth-Roles": "user",
			}
			for k, v := range want {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if res.Header.Get("X-Auth-Token") != "" {
				t.Error("an upstream token was sent with forward_auth.token off")
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", res.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestVerifyRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name     string
		cookie   string
		auth     string
		status   int
		code     string
		wantWWW  string
		problemH bool
	}{
		{name: "no credential", status: 401, code: "unauthenticated", wantWWW: "Bearer", problemH: true},
		{name: "garbage bearer", auth: "Bearer abc.def.ghi", status: 401, code: "invalid_token", wantWWW: `Bearer error="invalid_token"`, problemH: true},
		{name: "malformed bearer", auth: "Bearer", status: 401, code: "invalid_token", wantWWW: `Bearer error="invalid_request"`, problemH: true},
		{name: "unknown session", cookie: "ts_session=forged", status: 401, code: "invalid_session", problemH: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/auth/verify", nil)
			r.Header.Set("X-Original-URI", "/app/x")
			if tt.cookie != "" {
				r.Header.Set("Cookie", tt.cookie)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			res := e.do(t, r)
			res.problem(t, tt.status, tt.code)
			if got := res.Header.Get("WWW-Authenticate"); got != tt.wantWWW {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantWWW)
			}
			// nginx drops the body of a refused check; the same problem
			// travels in a header for an error_page to return.
			if got := res.Header.Get("X-Auth-Problem"); got != string(res.body) {
				t.Errorf("X-Auth-Problem = %q, want the body %q", got, res.body)
			}
			if res.Header.Get("X-Auth-User") != "" {
				t.Error("a refusal carries an identity")
			}
		})
	}
}

// TestVerifyCSRF: the CSRF decision is made on the original method the proxy
// forwards, and on the origin of the original request.
func TestVerifyCSRF(t *testing.T) {
	tests := []struct {
		name   string
		mode   gateway.CSRFMode
		method string // of the check request
		header map[string]string
		token  bool // send the right X-CSRF-Token
		bearer bool // authenticate with the bearer instead of the cookie
		// untrusted: the check comes from a peer outside
		// server.trusted_proxies, whose X-Forwarded-* are not believed.
		untrusted bool
		status    int
	}{
		{name: "GET stays safe", method: "GET", header: map[string]string{"X-Original-Method": "GET"}, status: 200},
		{name: "nginx POST without token", method: "GET", header: map[string]string{"X-Original-Method": "POST"}, status: 403},
		{name: "nginx POST with token", method: "GET", header: map[string]string{"X-Original-Method": "POST"}, token: true, status: 200},
		{name: "traefik DELETE without token", method: "GET", header: map[string]string{"X-Forwarded-Method": "DELETE"}, status: 403},
		{name: "envoy POST without token", method: "POST", status: 403},
		{name: "envoy POST cannot be downgraded by a header", method: "POST", header: map[string]string{"X-Original-Method": "GET", "X-Forwarded-Method": "GET"}, status: 403},
		{name: "a safe header cannot hide an unsafe one", method: "GET", header: map[string]string{"X-Original-Method": "GET", "X-Forwarded-Method": "PATCH"}, status: 403},
		{name: "same origin as the forwarded host", method: "GET", token: true, status: 200,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://app.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}},
		{name: "same origin, default port written out", method: "GET", token: true, status: 200,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://app.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example:443"}},
		{name: "cross origin refused even with token", method: "GET", token: true, status: 403,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}},
		{name: "configured origin allowed", method: "GET", token: true, status: 200,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "http://tokenshift.test", "X-Forwarded-Host": "app.example"}},
		{name: "cross-site fetch metadata refused", method: "GET", token: true, status: 403,
			header: map[string]string{"X-Original-Method": "POST", "Sec-Fetch-Site": "cross-site"}},
		{name: "bearer needs no token", method: "GET", bearer: true, header: map[string]string{"X-Original-Method": "POST"}, status: 200},
		{name: "origin mode: POST without our token", mode: gateway.CSRFOrigin, method: "GET", status: 200,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://app.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}},
		{name: "origin mode: cross origin refused", mode: gateway.CSRFOrigin, method: "GET", status: 403,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}},
		// Anyone reaching tokenshift directly could otherwise name the
		// origin its own Origin is compared with.
		{name: "untrusted peer: forwarded host and proto ignored", untrusted: true, method: "GET", token: true, status: 403,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "https://evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}},
		{name: "untrusted peer: the check's own Host is the origin", untrusted: true, method: "GET", token: true, status: 200,
			header: map[string]string{"X-Original-Method": "POST", "Origin": "http://example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}},
	}
	type envKey struct {
		mode      gateway.CSRFMode
		untrusted bool
	}
	envs := map[envKey]*env{}
	logins := map[envKey]creds{}
	for _, k := range []envKey{{gateway.CSRFToken, false}, {gateway.CSRFOrigin, false}, {gateway.CSRFToken, true}} {
		o := envOptions{gateway: func(c *gateway.Options) { c.ForwardAuthCSRF = k.mode }}
		if !k.untrusted {
			o.trustedProxies = []string{"0.0.0.0"}
		}
		envs[k] = newEnv(t, o)
		logins[k] = envs[k].login(t, "web")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := envKey{mode: tt.mode, untrusted: tt.untrusted}
			if k.mode == "" {
				k.mode = gateway.CSRFToken
			}
			e, cr := envs[k], logins[k]
			r := httptest.NewRequest(tt.method, "/auth/verify", nil)
			if tt.bearer {
				r.Header.Set("Authorization", "Bearer "+cr.access)
			} else {
				r.Header.Set("Cookie", "ts_session="+cr.session)
			}
			if tt.token {
				r.Header.Set("X-CSRF-Token", cr.csrf)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			res := e.do(t, r)
			if tt.status == 403 {
				res.problem(t, 403, "csrf_failed")
				return
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.status, res.body)
			}
		})
	}
}

func TestVerifyDeprecationHeaders(t *testing.T) {
	e := newEnv(t, envOptions{flags: prefer})
	cr := e.login(t, "web")
	r := httptest.NewRequest("GET", "/auth/verify", nil)
	r.Header.Set("Cookie", "ts_session="+cr.session)
	res := e.do(t, r)
	if res.StatusCode != 200 {
		t.Fatalf("status %d %s", res.StatusCode, res.body)
	}
	if res.Header.Get("Deprecation") != prefer.DeprecationHeader || res.Header.Get("Sunset") != prefer.SunsetHeader || res.Header.Get("Link") != prefer.LinkHeader {
		t.Errorf("Deprecation %q Sunset %q Link %q", res.Header.Get("Deprecation"), res.Header.Get("Sunset"), res.Header.Get("Link"))
	}
	r = httptest.NewRequest("GET", "/auth/verify", nil)
	r.Header.Set("Authorization", "Bearer "+cr.access)
	if res := e.do(t, r); res.StatusCode != 200 || res.Header.Get("Deprecation") != "" {
		t.Errorf("bearer: status %d, Deprecation %q", res.StatusCode, res.Header.Get("Deprecation"))
	}
}

// Forward-auth requests are counted like every authenticated request.
func TestVerifyRecordsUsage(t *testing.T) {
	e := newEnv(t, envOptions{})
	cr := e.login(t, "web")
	for range 3 {
		r := httptest.NewRequest("GET", "/auth/verify", nil)
		r.Header.Set("Cookie", "ts_session="+cr.session)
		e.do(t, r)
	}
	for range 2 {
		r := httptest.NewRequest("GET", "/auth/verify", nil)
		r.Header.Set("Authorization", "Bearer "+cr.access)
		e.do(t, r)
	}
	e.do(t, httptest.NewRequest("GET", "/auth/verify", nil).WithContext(context.Background()))
	r := httptest.NewRequest("GET", "/auth/verify", nil)
	r.Header.Set("Authorization", "Bearer nope")
	e.do(t, r)
	if err := e.usage.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := e.usage.Report(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Schemes["session"].Requests; got != 3 {
		t.Errorf("session requests = %d, want 3", got)
	}
	if got := rep.Schemes["bearer"].Requests; got != 2 {
		t.Errorf("bearer requests = %d, want 2", got)
	}
	if rep.Outcomes["invalid"] != 1 {
		t.Errorf("outcomes = %v, want one invalid", rep.Outcomes)
	}
}

func TestVerifyDisabled(t *testing.T) {
	e := newEnv(t, envOptions{gateway: func(c *gateway.Options) { c.ForwardAuth = false }})
	cr := e.login(t, "web")
	r := httptest.NewRequest("GET", "/auth/verify", nil)
	r.Header.Set("Authorization", "Bearer "+cr.access)
	e.do(t, r).problem(t, 404, "not_found")
}

// jwksKey is the Ed25519 key of kid in the server's published JWKS: what an
// upstream that knows only the JWKS URL uses.
func jwksKey(t *testing.T, e *env) jwt.Keyfunc {
	t.Helper()
	res := e.do(t, httptest.NewRequest("GET", "/.well-known/jwks.json", nil))
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(res.body, &set); err != nil {
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

func TestVerifyUpstreamToken(t *testing.T) {
	clock := fakeclock.New(time.Now())
	e := newEnv(t, envOptions{gateway: func(c *gateway.Options) {
		c.Token, c.TokenAudience, c.TokenTTL, c.Clock = true, "legacy-app", time.Minute, clock.Now
	}})
	cr := e.login(t, "web")
	verify := func(cookie bool) string {
		t.Helper()
		r := httptest.NewRequest("GET", "/auth/verify", nil)
		if cookie {
			r.Header.Set("Cookie", "ts_session="+cr.session)
		} else {
			r.Header.Set("Authorization", "Bearer "+cr.access)
		}
		res := e.do(t, r)
		if res.StatusCode != 200 {
			t.Fatalf("status %d %s", res.StatusCode, res.body)
		}
		tok := res.Header.Get("X-Auth-Token")
		if tok == "" {
			t.Fatal("no X-Auth-Token")
		}
		return tok
	}
	tok := verify(true)

	var cl token.UpstreamClaims
	parsed, err := jwt.ParseWithClaims(tok, &cl, jwksKey(t, e), jwt.WithValidMethods([]string{"EdDSA"}),
		jwt.WithAudience("legacy-app"), jwt.WithIssuer("http://tokenshift.test"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("the upstream token does not verify with the JWKS: %v", err)
	}
	if parsed.Header["typ"] != "JWT" || cl.Subject != cr.userID || cl.SID != cr.sid || cl.Scheme != "session" || cl.ClientID != "web" || cl.Email != aliceEmail {
		t.Errorf("header %v claims %+v", parsed.Header, cl)
	}
	if life := time.Until(cl.ExpiresAt.Time); life > time.Minute || life < 50*time.Second {
		t.Errorf("token lives %s, want about 1m", life)
	}

	// It is never an access token: /auth/me refuses it.
	r := httptest.NewRequest("GET", "/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	e.do(t, r).problem(t, 401, "invalid_token")

	// Reused for the same login and scheme in the first half of its life,
	// replaced after; another scheme of the same login gets its own.
	if again := verify(true); again != tok {
		t.Error("a second request signed a new token instead of reusing the first")
	}
	if bearerTok := verify(false); bearerTok == tok {
		t.Error("the bearer request got the session's token (wrong auth_scheme claim)")
	}
	clock.Advance(31 * time.Second)
	if renewed := verify(true); renewed == tok {
		t.Error("the token was still reused past half its life")
	}
}

func TestVerifyUpstreamTokenAsAuthorization(t *testing.T) {
	e := newEnv(t, envOptions{gateway: func(c *gateway.Options) { c.Token, c.TokenHeader = true, "Authorization" }})
	cr := e.login(t, "web")
	r := httptest.NewRequest("GET", "/auth/verify", nil)
	r.Header.Set("Cookie", "ts_session="+cr.session)
	res := e.do(t, r)
	h := res.Header.Get("Authorization")
	if res.StatusCode != 200 || len(h) < 8 || h[:7] != "Bearer " {
		t.Fatalf("status %d Authorization %q", res.StatusCode, h)
	}
	if _, err := jwt.Parse(h[7:], jwksKey(t, e), jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("upstream")); err != nil {
		t.Fatalf("Authorization token: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  gateway.Options
	}{
		{name: "token without signer", cfg: gateway.Options{Token: true}},
		{name: "bad csrf mode", cfg: gateway.Options{ForwardAuthCSRF: "maybe"}},
		{name: "reserved prefix", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/auth/app", Upstream: "http://127.0.0.1:1"}}}},
		{name: "reserved prefix any case", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/Admin", Upstream: "http://127.0.0.1:1"}}}},
		{name: "relative prefix", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "app", Upstream: "http://127.0.0.1:1"}}}},
		{name: "duplicate prefix", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/app", Upstream: "http://127.0.0.1:1"}, {Prefix: "/app/", Upstream: "http://127.0.0.1:2"}}}},
		{name: "upstream scheme", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/app", Upstream: "ftp://127.0.0.1:1"}}}},
		{name: "upstream credentials", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/app", Upstream: "http://u:p@127.0.0.1:1"}}}},
		{name: "auth mode", cfg: gateway.Options{Routes: []gateway.Route{{Prefix: "/app", Upstream: "http://127.0.0.1:1", Auth: "sometimes"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := gateway.New(tc.cfg); !errors.Is(err, gateway.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// TestDuplicateCookiesRefusedOnGatewayRoutes: a credential cookie sent twice
// (one planted by a sibling subdomain) is refused by forward-auth and by the
// reverse proxy, whichever copy is valid, and nothing reaches the upstream.
func TestDuplicateCookiesRefusedOnGatewayRoutes(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired},
		gateway.Route{Prefix: "/pub", Upstream: up.URL, Auth: gateway.AuthNone},
	)})
	victim, attacker := e.login(t, "web"), e.login(t, "spa")
	tests := []struct {
		name, path, cookie string
	}{
		{name: "forward-auth: session twice", path: "/auth/verify", cookie: "ts_session=" + attacker.session + "; ts_session=" + victim.session},
		{name: "forward-auth: access cookie twice", path: "/auth/verify", cookie: "ts_access=" + attacker.accessCookie + "; theme=dark; ts_access=forged"},
		{name: "forward-auth: refresh cookie twice", path: "/auth/verify/app/x", cookie: "ts_session=" + victim.session + "; ts_refresh=a; ts_refresh=b"},
		{name: "proxy, auth required", path: "/app/orders", cookie: "ts_session=forged; ts_session=" + victim.session},
		{name: "proxy, auth none", path: "/pub/page", cookie: "ts_session=" + victim.session + "; ts_session=" + attacker.session},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.path, nil)
			r.Header.Set("X-Original-URI", "/app/x")
			r.Header.Set("Cookie", tt.cookie)
			res := e.do(t, r)
			res.problem(t, 400, "duplicate_cookie")
			if res.Header.Get("X-Auth-User") != "" {
				t.Error("a refusal carries an identity")
			}
		})
	}
	if n := up.count(); n != 0 {
		t.Fatalf("the upstream received %d requests", n)
	}
}
