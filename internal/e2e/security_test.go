package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// preSession fetches the login form's CSRF token and its pre-session cookie,
// as the login page's script does.
func (in *instance) preSession(t *testing.T) (string, *http.Cookie) {
	t.Helper()
	r := in.do(t, req{path: "/auth/csrf"})
	if r.status != 200 {
		t.Fatalf("GET /auth/csrf: %d %s", r.status, r.body)
	}
	c := r.cookie("ts_login_csrf")
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("pre-session cookie missing or weak: %+v", r.cookies)
	}
	return r.json(t)["csrf_token"].(string), c
}

// formLogin posts a login form the way a same-origin page does: with the
// pre-session token and cookie.
func (in *instance) formLogin(t *testing.T, v url.Values) *resp {
	t.Helper()
	token, cookie := in.preSession(t)
	v.Set("csrf_token", token)
	return in.do(t, req{method: "POST", path: "/auth/login", form: v, cookies: []*http.Cookie{cookie}, header: map[string]string{"Origin": in.URL}})
}

// A foreign page posting a login form would log the victim into the
// attacker's account (login CSRF): refused whatever the page holds.
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	in := start(t)
	// The attacker can get a token and cookie of their own...
	atkToken, atkCookie := in.preSession(t)
	attackerCreds := url.Values{"email": {opsEmail}, "password": {opsPass}, "csrf_token": {atkToken}}
	cases := []struct {
		name string
		r    req
	}{
		{name: "cross-site form without token", r: req{form: url.Values{"email": {opsEmail}, "password": {opsPass}}, header: map[string]string{"Origin": "https://evil.example"}}},
		{name: "form without token, no browser headers", r: req{form: url.Values{"email": {opsEmail}, "password": {opsPass}}}},
		// ...but a foreign page cannot make the victim's browser send that
		// cookie with its own origin.
		{name: "cross-site form with the attacker's token and injected cookie", r: req{form: attackerCreds, cookies: []*http.Cookie{atkCookie}, header: map[string]string{"Origin": "https://evil.example"}}},
		{name: "cross-site form by fetch metadata", r: req{form: attackerCreds, cookies: []*http.Cookie{atkCookie}, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}},
		{name: "form with the attacker's token but the victim's cookie", r: req{form: attackerCreds, cookies: []*http.Cookie{func() *http.Cookie { _, c := in.preSession(t); return c }()}}},
		{name: "cross-site JSON", r: req{json: map[string]string{"email": opsEmail, "password": opsPass}, header: map[string]string{"Origin": "https://evil.example"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.method, tc.r.path = "POST", "/auth/login"
			r := in.do(t, tc.r)
			expectProblem(t, r, 403, "csrf_failed")
			if r.cookie("ts_session") != nil {
				t.Fatal("a refused login set a session cookie")
			}
		})
	}
	// The same-origin login form works and discards its pre-session cookie.
	r := in.formLogin(t, url.Values{"email": {aliceEmail}, "password": {alicePass}})
	if r.status != 200 || r.cookie("ts_session") == nil {
		t.Fatalf("same-origin form login: %d %s", r.status, r.body)
	}
	if c := r.cookie("ts_login_csrf"); c == nil || c.Value != "" {
		t.Fatalf("the pre-session cookie was not discarded at login: %+v", r.cookies)
	}
}

func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_CORS_ALLOWED_ORIGINS=https://app.example.com")
	preflight := func(origin string) *resp {
		return in.do(t, req{method: "OPTIONS", path: "/auth/me", header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}})
	}
	ok := preflight("https://app.example.com")
	if ok.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || ok.header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin preflight: %d %v", ok.status, ok.header)
	}
	if h := strings.ToLower(ok.header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || !strings.Contains(h, "x-csrf-token") || !strings.Contains(h, "content-type") {
		t.Fatalf("Access-Control-Allow-Headers %q", h)
	}
	for _, origin := range []string{"https://evil.example", "null", "https://app.example.com.evil.example"} {
		r := preflight(origin)
		if r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight from %s allowed: %v", origin, r.header)
		}
	}
	// A credentialed read from the allowed origin is readable by it.
	tok := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	r := in.do(t, req{path: "/auth/me", bearer: tok, header: map[string]string{"Origin": "https://app.example.com"}})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("actual request: %d %v", r.status, r.header)
	}
}

// Behind a trusted proxy, the client is the address the proxy appended:
// a spoofed X-Forwarded-For prefix neither escapes the per-IP limit nor ends
// up in the session record.
func TestTrustedProxyClientIP(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_SERVER_TRUSTED_PROXIES=127.0.0.1", "TOKENSHIFT_RATELIMIT_PER_IP=3", "TOKENSHIFT_RATELIMIT_PER_ACCOUNT=100")
	wrong := func(xff string) *resp {
		return in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": "wrong"}, header: map[string]string{"X-Forwarded-For": xff}})
	}
	t.Run("spoofed prefixes share one bucket", func(t *testing.T) {
		for i := range 3 {
			expectProblem(t, wrong(fmt.Sprintf("evil-%d, 198.51.100.7", i)), 401, "invalid_credentials")
		}
		expectProblem(t, wrong("evil-x, 198.51.100.7"), 429, "rate_limited")
		expectProblem(t, wrong("203.0.113.99, 198.51.100.7"), 429, "rate_limited")
	})
	t.Run("distinct clients have distinct buckets", func(t *testing.T) {
		for i := range 6 {
			expectProblem(t, wrong(fmt.Sprintf("198.51.100.%d", 20+i)), 401, "invalid_credentials")
		}
	})
	t.Run("session records the client, not the header", func(t *testing.T) {
		r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": opsEmail, "password": opsPass, "client_id": "mobile"},
			header: map[string]string{"X-Forwarded-For": "evil, 198.51.100.50"}})
		if r.status != 200 {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		body := r.json(t)
		list := in.do(t, req{path: "/auth/sessions", bearer: body["access_token"].(string)}).json(t)
		found := false
		for _, s := range list["sessions"].([]any) {
			s := s.(map[string]any)
			if s["sid"] == body["sid"] {
				found = true
				if s["ip"] != "198.51.100.50" {
					t.Fatalf("session IP %q; want 198.51.100.50", s["ip"])
				}
			}
		}
		if !found {
			t.Fatalf("login not listed: %v", list)
		}
	})
}

// Without trusted proxies, X-Forwarded-For is ignored: varying it does not
// give a client fresh budgets.
func TestUntrustedForwardedForIgnored(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_RATELIMIT_PER_IP=3", "TOKENSHIFT_RATELIMIT_PER_ACCOUNT=100")
	for i := range 3 {
		r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": "wrong"}, header: map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i)}})
		expectProblem(t, r, 401, "invalid_credentials")
	}
	r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": opsEmail, "password": "wrong"}, header: map[string]string{"X-Forwarded-For": "198.51.100.99"}})
	expectProblem(t, r, 429, "rate_limited")
}

// Concurrent guesses: at most the limit reach the password check, however
// many arrive at once; the rest are refused with Retry-After.
func TestConcurrentBruteForce(t *testing.T) {
	t.Parallel()
	const attempts, limit = 60, 5
	tests := []struct {
		name  string
		env   []string
		email func(i int) string
	}{
		{name: "per account", env: []string{"TOKENSHIFT_RATELIMIT_PER_ACCOUNT=5", "TOKENSHIFT_RATELIMIT_PER_IP=1000"}, email: func(int) string { return aliceEmail }},
		{name: "per IP", env: []string{"TOKENSHIFT_RATELIMIT_PER_ACCOUNT=1000", "TOKENSHIFT_RATELIMIT_PER_IP=5"}, email: func(i int) string { return fmt.Sprintf("guess%d@example.com", i) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := start(t, tc.env...)
			var unauthorized, limited, other atomic.Int32
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for i := range attempts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": tc.email(i), "password": "wrong"}})
					switch r.status {
					case 401:
						unauthorized.Add(1)
					case 429:
						limited.Add(1)
						if r.header.Get("Retry-After") == "" {
							t.Error("429 without Retry-After")
						}
					default:
						other.Add(1)
						t.Errorf("status %d: %s", r.status, r.body)
					}
				}()
			}
			close(gate)
			wg.Wait()
			t.Logf("%d concurrent wrong passwords: %d answered 401 (reached the password check), %d answered 429", attempts, unauthorized.Load(), limited.Load())
			if unauthorized.Load() != limit || limited.Load() != attempts-limit || other.Load() != 0 {
				t.Fatalf("401 %d, 429 %d, other %d; want %d, %d, 0", unauthorized.Load(), limited.Load(), other.Load(), limit, attempts-limit)
			}
		})
	}
}

// Oversized credentials never reach a 500: headers beyond fasthttp's buffer
// get 431 (problem+json), a token under that buffer but over the token cap
// gets 401, and a huge refresh token in a body gets 413.
func TestOversizedCredentials(t *testing.T) {
	t.Parallel()
	in := start(t)
	tok := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	cases := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{name: "12 KB bearer token (over the 8 KB token cap, under the header buffer)", r: req{path: "/auth/me", bearer: tok + strings.Repeat("A", 12<<10)}, status: 401, code: "invalid_token"},
		{name: "12 KB JWT cookie", r: req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_access", Value: tok + strings.Repeat("A", 12<<10)}}}, status: 401, code: "invalid_token"},
		{name: "60 KB refresh token in a JSON body", r: req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": "rt_" + strings.Repeat("A", 60<<10)}}, status: 401, code: "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, in.do(t, tc.r), tc.status, tc.code)
		})
	}
	t.Run("1 MB bearer token", func(t *testing.T) {
		expectProblem(t, in.hugeHeader(t, "Authorization: Bearer "+tok+strings.Repeat("A", 1<<20)), 431, "invalid_request")
	})
	// The server answers 413 as soon as it reads Content-Length and closes;
	// the body goes over a raw connection read while writing, so the answer
	// is read instead of racing the close with a "broken pipe".
	for _, tc := range []struct{ name, path, body string }{
		{"1 MB refresh token in a JSON body", "/auth/refresh", `{"refresh_token":"rt_` + strings.Repeat("A", 1<<20) + `"}`},
		{"1 MB token to revoke", "/auth/revoke", `{"token":"` + strings.Repeat("A", 1<<20) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := "POST " + tc.path + " HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(tc.body)) + "\r\n\r\n"
			expectProblem(t, in.rawExchange(t, head+tc.body), 413, "payload_too_large")
		})
	}
}

// hugeHeader sends GET /auth/me with one oversized header line over a raw
// connection, reading the answer while still writing: the server answers 431
// after its 16 KiB buffer and closes, and a client that only reads after
// writing everything (net/http) sees a reset instead of the answer.
func (in *instance) hugeHeader(t *testing.T, line string) *resp {
	t.Helper()
	return in.rawExchange(t, "GET /auth/me HTTP/1.1\r\n"+line+"\r\n\r\n")
}

// rawExchange sends one request (its request line first; a Host header is
// added after it) over a fresh connection and reads the answer while the
// request is still being written.
func (in *instance) rawExchange(t *testing.T, request string) *resp {
	t.Helper()
	u, _ := url.Parse(in.URL)
	line, rest, _ := strings.Cut(request, "\r\n")
	request = line + "\r\nHost: " + u.Host + "\r\n" + rest
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// Write errors are expected once the server has answered.
		_, _ = conn.Write([]byte(request))
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to an oversized request: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// Every HTML answer carries a CSP without inline script that forbids framing,
// plus nosniff and a Referrer-Policy; error answers are problem+json, never
// HTML pages.
func TestHTMLSecurityHeaders(t *testing.T) {
	t.Parallel()
	in := start(t)
	html := 0
	for _, p := range []string{"/admin/", "/admin/assets/index.html", "/admin/nope", "/admin/assets/nope.html", "/nope", "/auth/me", "/livez"} {
		for _, method := range []string{"GET", "HEAD"} {
			r := in.do(t, req{method: method, path: p})
			ct := r.header.Get("Content-Type")
			if r.status >= 400 && method == "GET" && !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("%s %s: error %d as %q, want problem+json", method, p, r.status, ct)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") == "" {
				t.Errorf("%s %s: missing nosniff or Referrer-Policy: %v", method, p, r.header)
			}
			if !strings.HasPrefix(ct, "text/html") {
				continue
			}
			html++
			csp := r.header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("%s %s: CSP %q", method, p, csp)
			}
		}
	}
	if html == 0 {
		t.Fatal("no HTML answer was checked: the dashboard page moved?")
	}
}

// TestMalformedFramingAndMethods: requests whose length, credential or method
// parsers could read differently are refused by the real binary before any
// route runs, on the API, on a reverse-proxy route and on forward-auth, as
// problem+json with the security headers; an ambiguous length also closes
// the connection, so a request smuggled behind it is never answered, and the
// app behind the proxy never sees any of them.
func TestMalformedFramingAndMethods(t *testing.T) {
	t.Parallel()
	app := newAppRecorder(t)
	cfg := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := fmt.Sprintf("proxy:\n  routes:\n    - {prefix: /app, upstream: %q, auth: required}\n    - {prefix: /pub, upstream: %q, auth: none}\n", app.URL, app.URL)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	lr := in.login(t, aliceEmail, alicePass, "web")
	sess := "Cookie: ts_session=" + lr.cookie("ts_session").Value + "\r\n"
	bearer := "Authorization: Bearer " + lr.json(t)["access_token"].(string) + "\r\n"
	const smuggled = "GET /pub/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, route := range []struct{ name, method, path string }{
		{name: "API", method: "POST", path: "/auth/logout"},
		{name: "proxy", method: "POST", path: "/app/orders"},
		{name: "public proxy", method: "POST", path: "/pub/form"},
		{name: "forward-auth", method: "GET", path: "/auth/verify"},
	} {
		for _, tc := range []struct {
			name    string
			request string // after the request line
			method  string // instead of the route's
			status  int
			code    string
			closes  bool
		}{
			{name: "duplicate Content-Length smuggling a request", request: bearer + "Content-Length: " + fmt.Sprint(len(smuggled)) + "\r\nContent-Length: 0\r\n\r\n" + smuggled, status: 400, code: "invalid_request", closes: true},
			{name: "Content-Length list", request: bearer + "Content-Length: 2, 2\r\n\r\n{}", status: 400, code: "invalid_request", closes: true},
			{name: "Transfer-Encoding with Content-Length", request: bearer + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, status: 400, code: "invalid_request", closes: true},
			{name: "two Authorization headers", request: bearer + "Authorization: Bearer OTHER-USERS-TOKEN\r\n\r\n", status: 400, code: "invalid_request"},
			{name: "Bearer<TAB>token next to a session", request: sess + "Authorization: Bearer\tOTHER-USERS-TOKEN\r\n\r\n", status: 401, code: "invalid_token"},
			{name: "lowercase method", method: "post", request: bearer + "\r\n", status: 501, code: "not_implemented"},
			{name: "garbage method", method: "P{ST", request: bearer + "\r\n", status: 400, code: "invalid_request"},
		} {
			if route.name == "public proxy" && tc.code == "invalid_token" {
				continue // no authentication there: the header is only stripped (unit-tested)
			}
			t.Run(route.name+"/"+tc.name, func(t *testing.T) {
				before := app.count()
				method := route.method
				if tc.method != "" {
					method = tc.method
				}
				u, _ := url.Parse(in.URL)
				conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, method+" "+route.path+" HTTP/1.1\r\nHost: "+u.Host+"\r\n"+tc.request); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(conn)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				expectProblem(t, &resp{status: res.StatusCode, header: res.Header, body: body}, tc.status, tc.code)
				if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
					t.Errorf("security headers missing: %v", res.Header)
				}
				if tc.closes {
					_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
					if b, err := br.ReadByte(); err == nil {
						t.Errorf("the server answered more after the refusal (%q...): a smuggled request went through", b)
					} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("the connection stayed open: %v", err)
					}
				}
				if app.count() != before {
					t.Errorf("the app behind the proxy was reached")
				}
			})
		}
	}
}
