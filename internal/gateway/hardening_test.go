package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/testutil/httpcheck"
)

// rawDo sends raw (a whole HTTP/1.1 request, sent as is, which no Go client
// would) to the app listening at base and reads the answer.
func rawDo(t *testing.T, base, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func problemCode(t *testing.T, body string) string {
	t.Helper()
	code, _ := httpcheck.Object(t, []byte(body))["code"].(string)
	return code
}

// TestProxyPathParameters: servlet containers drop ;parameters from every
// segment and IIS reads a backslash as a slash, so a path whose route could
// change under either reading is refused, never forwarded.
func TestProxyPathParameters(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/", Upstream: up.URL, Auth: gateway.AuthRequired},
		gateway.Route{Prefix: "/public", Upstream: up.URL, Auth: gateway.AuthNone},
		gateway.Route{Prefix: "/api", Upstream: up.URL, Auth: gateway.AuthNone},
		gateway.Route{Prefix: "/api/admin", Upstream: up.URL, Auth: gateway.AuthRequired},
	)})
	base := e.listen(t)
	cr := e.login(t, "web")
	tests := []struct {
		name     string
		target   string // request-target, sent as is
		bearer   bool
		status   int    // 400 = refused with invalid_request
		wantPath string // what the upstream saw, when reached
	}{
		{name: "..; climbs out of /public for Tomcat", target: "/public/..;/app/secret", status: 400},
		{name: "encoded ..;", target: "/public/%2e%2e;/app/secret", status: 400},
		{name: "encoded ..%3b", target: "/public/..%3b/app/secret", status: 400},
		{name: ".; with parameters", target: "/public/.;x/y", status: 400},
		{name: "parameter on the protected segment", target: "/api/admin;jsessionid=x/users", status: 400},
		{name: "encoded ; on the protected segment", target: "/api/admin%3b/users", status: 400},
		{name: "encoded ; on a reserved segment", target: "/auth%3bx/verify", status: 400},
		{name: "encoded backslash", target: "/public/..%5capp%5csecret", status: 400},
		{name: "raw backslash", target: "/public/..\\app", status: 400},
		{name: "backslash even within one route", target: "/public/a%5cb", status: 400},
		{name: "parameters within one route pass", target: "/public/page;jsessionid=abc", status: 200, wantPath: "/public/page;jsessionid=abc"},
		{name: "parameters on a protected route need its credential", target: "/api/admin/users;v=1", status: 401},
		{name: "and pass with it", target: "/api/admin/users;v=1", bearer: true, status: 200, wantPath: "/api/admin/users;v=1"},
		{name: "plain /api", target: "/api/items", status: 200, wantPath: "/api/items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			raw := "GET " + tt.target + " HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"
			if tt.bearer {
				raw += "Authorization: Bearer " + cr.access + "\r\n"
			}
			res, body := rawDo(t, base, raw+"\r\n")
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.status, body)
			}
			if tt.status == 400 && problemCode(t, body) != "invalid_request" {
				t.Errorf("code = %s, want invalid_request", problemCode(t, body))
			}
			if tt.wantPath == "" {
				if up.count() != before {
					t.Fatalf("the upstream was reached: %+v", up.last(t))
				}
				return
			}
			if got := up.last(t); got.path != tt.wantPath {
				t.Errorf("upstream path = %q, want %q", got.path, tt.wantPath)
			}
		})
	}
}

// TestProxyDropsHeaderNames: header names with "_" (CGI-style servers read
// x_auth_user as X-Auth-User), invalid names, and the proxy-trust headers
// frameworks believe never reach the upstream.
func TestProxyDropsHeaderNames(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: func(c *gateway.Options) {
		c.StripHeaders = []string{"X-Remote-User"}
		c.Routes = []gateway.Route{{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired}}
	}})
	base := e.listen(t)
	cr := e.login(t, "web")
	head := "GET /app/x HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n" +
		"Authorization: Bearer " + cr.access + "\r\nX-Kept: yes\r\n"
	for _, tc := range []struct{ name, headers string }{
		{name: "underscore variants", headers: "x_auth_user: evil\r\nX_Auth_Roles: admin\r\nX-Auth_Email: ops@example.com\r\nX_Custom: 1\r\n"},
		{name: "proxy-trust headers and strip_headers", headers: "X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Forwarded-Scheme: https\r\n" +
			"X-Forwarded-Ssl: on\r\nX-Url-Scheme: https\r\nX-Forwarded-Prefix: /evil\r\nX-Forwarded-User: ops\r\nForwarded: for=6.6.6.6\r\nX-Remote-User: ops\r\n"},
		{name: "invalid names (NUL, VT, soft hyphen)", headers: "X-Nul\x00Name: 1\r\nX-Vt\x0bName: 1\r\nX-Soft\xadHyphen: 1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := rawDo(t, base, head+tc.headers+"\r\n")
			if res.StatusCode != 200 {
				t.Fatalf("status %d (body %s)", res.StatusCode, body)
			}
			got := up.last(t)
			for name := range got.header {
				if strings.Contains(name, "_") || strings.ContainsAny(name, "\x00\x0b\xad") {
					t.Errorf("the upstream received header %q", name)
				}
				switch strings.ToLower(name) {
				case "x-original-url", "x-rewrite-url", "x-forwarded-scheme", "x-forwarded-ssl", "x-url-scheme",
					"x-forwarded-prefix", "x-forwarded-user", "forwarded", "x-remote-user":
					t.Errorf("the upstream received %s: %q", name, got.header[name])
				}
			}
			want := map[string]string{"X-Auth-User": cr.userID, "X-Auth-Roles": "user", "X-Auth-Email": aliceEmail, "X-Kept": "yes"}
			for k, v := range want {
				if vs := got.header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("upstream %s = %q, want exactly %q", k, vs, v)
				}
			}
		})
	}
}

// TestVerifyWebSocketOrigin: a cookie-authenticated WebSocket handshake
// checked through forward-auth must come from the app's own origin, even
// though the proxy drops Upgrade from the check request.
func TestVerifyWebSocketOrigin(t *testing.T) {
	e := newEnv(t, envOptions{trustedProxies: []string{"0.0.0.0"}})
	cr := e.login(t, "web")
	same := map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example"}
	tests := []struct {
		name   string
		bearer bool
		header map[string]string
		status int
	}{
		{name: "handshake key from another origin", header: map[string]string{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://evil.example"}, status: 403},
		{name: "fetch mode websocket, cross-site", header: map[string]string{"Sec-Fetch-Mode": "websocket", "Sec-Fetch-Site": "cross-site"}, status: 403},
		{name: "upgrade kept by the proxy, another origin", header: map[string]string{"Upgrade": "websocket", "Origin": "https://evil.example"}, status: 403},
		{name: "handshake from the app's origin", header: map[string]string{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://app.example"}, status: 200},
		{name: "bearer handshake: no ambient credential", bearer: true, header: map[string]string{"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "https://evil.example"}, status: 200},
		{name: "a plain cross-site GET stays a GET", header: map[string]string{"Origin": "https://evil.example"}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/auth/verify", nil)
			for k, v := range same {
				r.Header.Set(k, v)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if tt.bearer {
				r.Header.Set("Authorization", "Bearer "+cr.access)
			} else {
				r.Header.Set("Cookie", "ts_session="+cr.session)
			}
			res := e.do(t, r)
			if tt.status == 403 {
				res.problem(t, 403, "csrf_failed")
				if res.Header.Get("X-Auth-User") != "" || res.Header.Get("X-Auth-Problem") == "" {
					t.Errorf("X-Auth-User %q X-Auth-Problem %q", res.Header.Get("X-Auth-User"), res.Header.Get("X-Auth-Problem"))
				}
				return
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.status, res.body)
			}
		})
	}
}

// TestGroupPrefixesStopAtSegments: tokenshift's /auth group (Cache-Control:
// no-store) covers /auth and /auth/..., never an app path like /authors/1.
func TestGroupPrefixesStopAtSegments(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "app")
	})
	e := newEnv(t, envOptions{gateway: routes(gateway.Route{Prefix: "/", Upstream: up.URL, Auth: gateway.AuthNone})})
	for _, path := range []string{"/authors/1", "/authority", "/auth-help"} {
		res := e.do(t, httptest.NewRequest("GET", path, nil))
		if res.StatusCode != 200 || string(res.body) != "app" {
			t.Fatalf("%s: status %d body %s", path, res.StatusCode, res.body)
		}
		if cc := res.Header.Values("Cache-Control"); len(cc) != 1 || cc[0] != "max-age=60" || res.Header.Get("Pragma") != "" {
			t.Errorf("%s: Cache-Control %q Pragma %q, want the app's max-age=60 alone", path, cc, res.Header.Get("Pragma"))
		}
	}
	if res := e.do(t, httptest.NewRequest("GET", "/auth/csrf", nil)); res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/auth/csrf: Cache-Control %q, want no-store", res.Header.Get("Cache-Control"))
	}
}

// TestProxyLeavesCORSToTheApp: preflights to proxied paths reach the app,
// the app's answers carry only its own CORS headers, and /auth/verify is
// never answered by tokenshift's CORS middleware.
func TestProxyLeavesCORSToTheApp(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://spa.example")
		w.Header().Set("Vary", "Accept-Encoding")
		if r.Method == "OPTIONS" {
			w.Header().Set("Access-Control-Allow-Methods", "PUT")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "app preflight")
			return
		}
		_, _ = io.WriteString(w, "app")
	})
	e := newEnv(t, envOptions{gateway: routes(gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired})})
	cr := e.login(t, "web")
	const allowed = "http://tokenshift.test" // cors.allowed_origins of the env

	t.Run("preflight reaches the app", func(t *testing.T) {
		before := up.count()
		r := httptest.NewRequest("OPTIONS", "/app/orders/7", nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Access-Control-Request-Method", "PUT")
		r.Header.Set("Access-Control-Request-Headers", "authorization")
		r.Header.Set("X-Auth-User", "u-forged")
		res := e.do(t, r)
		if res.StatusCode != 200 || string(res.body) != "app preflight" || up.count() != before+1 {
			t.Fatalf("status %d body %q: the preflight did not reach the app", res.StatusCode, res.body)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://spa.example" {
			t.Errorf("Access-Control-Allow-Origin = %q, want the app's", got)
		}
		if up.last(t).header.Get("X-Auth-User") != "" {
			t.Error("the preflight carried an identity upstream")
		}
	})
	t.Run("an OPTIONS that is no preflight is authenticated", func(t *testing.T) {
		before := up.count()
		e.do(t, httptest.NewRequest("OPTIONS", "/app/orders/7", nil)).problem(t, 401, "unauthenticated")
		if up.count() != before {
			t.Fatal("the upstream was reached")
		}
	})
	t.Run("the app's answer keeps only the app's CORS headers", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/app/orders/7", nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Authorization", "Bearer "+cr.access)
		res := e.do(t, r)
		if res.StatusCode != 200 {
			t.Fatalf("status %d body %s", res.StatusCode, res.body)
		}
		if got := res.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://spa.example" {
			t.Errorf("Access-Control-Allow-Origin = %q, want only the app's", got)
		}
		if got := res.Header.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding" {
			t.Errorf("Vary = %q, want only the app's", got)
		}
		for _, k := range []string{"Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"} {
			if v := res.Header.Get(k); v != "" {
				t.Errorf("tokenshift added %s: %q", k, v)
			}
		}
	})
	t.Run("a preflight-shaped check is authenticated", func(t *testing.T) {
		r := httptest.NewRequest("OPTIONS", "/auth/verify", nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Access-Control-Request-Method", "DELETE")
		e.do(t, r).problem(t, 401, "unauthenticated")
	})
	t.Run("tokenshift's own endpoints keep their CORS", func(t *testing.T) {
		r := httptest.NewRequest("OPTIONS", "/auth/me", nil)
		r.Header.Set("Origin", allowed)
		r.Header.Set("Access-Control-Request-Method", "GET")
		res := e.do(t, r)
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != allowed {
			t.Fatalf("status %d Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
}

// TestProxyOptionalStaleCookie: on an auth: optional route a cookie that no
// longer verifies makes the request anonymous and is expired; an explicit
// bad bearer is still refused, and required routes still refuse the cookie.
func TestProxyOptionalStaleCookie(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/public", Upstream: up.URL, Auth: gateway.AuthOptional},
		gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired},
	)})
	old := e.login(t, "web")
	spa := e.login(t, "spa")
	// Log the first login out: its session cookie is now stale.
	r := httptest.NewRequest("POST", "/auth/logout", nil)
	r.Header.Set("Cookie", "ts_session="+old.session)
	r.Header.Set("X-CSRF-Token", old.csrf)
	if res := e.do(t, r); res.StatusCode >= 300 {
		t.Fatalf("logout: %d %s", res.StatusCode, res.body)
	}
	live := e.login(t, "web")

	tests := []struct {
		name       string
		path       string
		cookie     string
		bearer     string
		status     int
		code       string
		wantUser   string
		wantExpire []string // cookies expired in the answer
	}{
		{name: "logged-out session cookie: anonymous", path: "/public/x", cookie: "ts_session=" + old.session, status: 200, wantExpire: []string{"ts_session"}},
		{name: "unknown session cookie: anonymous", path: "/public/x", cookie: "ts_session=forged", status: 200, wantExpire: []string{"ts_session"}},
		{name: "garbage jwt cookie: anonymous", path: "/public/x", cookie: "ts_access=abc.def.ghi", status: 200, wantExpire: []string{"ts_access"}},
		{name: "stale cookie next to a valid one: the valid one wins", path: "/public/x", cookie: "ts_session=forged; ts_access=" + spa.accessCookie, status: 200, wantUser: spa.userID},
		{name: "live session: identity", path: "/public/x", cookie: "ts_session=" + live.session, status: 200, wantUser: live.userID},
		{name: "bad bearer is still refused", path: "/public/x", cookie: "ts_session=forged", bearer: "nope", status: 401, code: "invalid_token"},
		{name: "required route still refuses the stale cookie", path: "/app/x", cookie: "ts_session=" + old.session, status: 401, code: "invalid_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			r := httptest.NewRequest("GET", tt.path, nil)
			r.Header.Set("Cookie", tt.cookie)
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			res := e.do(t, r)
			if tt.code != "" {
				res.problem(t, tt.status, tt.code)
				if up.count() != before {
					t.Fatal("the upstream was reached")
				}
				return
			}
			if res.StatusCode != tt.status {
				t.Fatalf("status %d body %s", res.StatusCode, res.body)
			}
			if got := up.last(t).header.Get("X-Auth-User"); got != tt.wantUser {
				t.Errorf("upstream X-Auth-User = %q, want %q", got, tt.wantUser)
			}
			expired := map[string]bool{}
			for _, c := range res.Cookies() {
				if c.Value == "" && (c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now()))) && c.Path == "/" && c.HttpOnly {
					expired[c.Name] = true
				}
			}
			if len(expired) != len(tt.wantExpire) {
				t.Errorf("expired cookies %v, want %v (Set-Cookie %q)", expired, tt.wantExpire, res.Header.Values("Set-Cookie"))
			}
			for _, name := range tt.wantExpire {
				if !expired[name] {
					t.Errorf("cookie %s not expired (Set-Cookie %q)", name, res.Header.Values("Set-Cookie"))
				}
			}
		})
	}
}

// TestProxyAuthorizationHeaders: an Authorization that names the Bearer
// scheme, however it is spaced, is tokenshift's credential: authn refuses
// one it cannot parse (a Bearer<TAB>token next to a valid session would
// otherwise reach the upstream beside the identity tokenshift vouches for),
// the proxy never forwards one, and a request with two Authorization
// headers is refused before routing, on the proxy and on forward-auth.
func TestProxyAuthorizationHeaders(t *testing.T) {
	up := newUpstream(t, nil)
	e := newEnv(t, envOptions{gateway: routes(
		gateway.Route{Prefix: "/app", Upstream: up.URL, Auth: gateway.AuthRequired},
		gateway.Route{Prefix: "/public", Upstream: up.URL, Auth: gateway.AuthNone},
	)})
	base := e.listen(t)
	cr := e.login(t, "web")
	const other = "OTHER-USERS-TOKEN"
	session := "Cookie: ts_session=" + cr.session + "\r\n"
	tests := []struct {
		name    string
		target  string
		headers string
		status  int
		code    string // for refusals
	}{
		{name: "Bearer<TAB>token next to a session", target: "/app/x", headers: session + "Authorization: Bearer\t" + other + "\r\n", status: 401, code: "invalid_token"},
		{name: "Bearer<TAB><TAB>token next to a session", target: "/app/x", headers: session + "Authorization: Bearer\t\t" + other + "\r\n", status: 401, code: "invalid_token"},
		{name: "bearer,token next to a session", target: "/app/x", headers: session + "Authorization: bearer," + other + "\r\n", status: 401, code: "invalid_token"},
		{name: "Bearer<TAB>token on a public route is stripped", target: "/public/x", headers: "Authorization: BEARER\t" + other + "\r\n", status: 200},
		{name: "Bearer<VT>token on a public route is stripped", target: "/public/x", headers: "Authorization: Bearer\v" + other + "\r\n", status: 200},
		{name: "two Authorization headers", target: "/app/x", headers: "Authorization: Bearer " + cr.access + "\r\nAuthorization: Bearer " + other + "\r\n", status: 400, code: "invalid_request"},
		{name: "Basic next to Bearer", target: "/public/x", headers: "Authorization: Basic eDp5\r\nAuthorization: Bearer " + other + "\r\n", status: 400, code: "invalid_request"},
		{name: "two Authorization headers on forward-auth", target: "/auth/verify", headers: "Authorization: Bearer " + cr.access + "\r\nAuthorization: Bearer " + other + "\r\n", status: 400, code: "invalid_request"},
		{name: "Bearer<TAB>token on forward-auth", target: "/auth/verify", headers: session + "Authorization: Bearer\t" + other + "\r\n", status: 401, code: "invalid_token"},
		{name: "a valid session alone passes", target: "/app/x", headers: session, status: 200},
		{name: "a valid bearer, odd case and spacing, passes and is stripped", target: "/app/x", headers: "Authorization: bEaReR   " + cr.access + "\r\n", status: 200},
		{name: "another scheme on a public route is the app's", target: "/public/x", headers: "Authorization: Basic eDp5\r\n", status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := up.count()
			res, body := rawDo(t, base, "GET "+tt.target+" HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n"+tt.headers+"\r\n")
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.status, body)
			}
			if tt.code != "" {
				if got := problemCode(t, body); got != tt.code {
					t.Fatalf("code = %s, want %s", got, tt.code)
				}
				if up.count() != before {
					t.Fatalf("the upstream was reached: %+v", up.last(t).header)
				}
				return
			}
			if tt.target == "/auth/verify" {
				return
			}
			got := up.last(t).header.Values("Authorization")
			for _, v := range got {
				if authnBearer(v) {
					t.Errorf("the upstream received a bearer: %q", got)
				}
			}
			if strings.HasPrefix(tt.headers, "Authorization: Basic") && (len(got) != 1 || got[0] != "Basic eDp5") {
				t.Errorf("the app's own Authorization = %q, want it kept", got)
			}
		})
	}
}

func authnBearer(v string) bool {
	return len(v) >= 6 && strings.EqualFold(v[:6], "bearer")
}
