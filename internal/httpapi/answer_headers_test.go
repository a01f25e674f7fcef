package httpapi

import (
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// answerHeaders are the headers of an answer, without the ones that differ
// from run to run (Date, Content-Length: expires_at drops trailing zeros;
// the request id, checked for its shape instead).
func answerHeaders(t *testing.T, h http.Header) map[string]string {
	t.Helper()
	if id := h.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("X-Request-Id %q, want 32 hex digits", id)
	}
	out := map[string]string{}
	for k, v := range h {
		if k == "Date" || k == "X-Request-Id" || k == "Content-Length" {
			continue
		}
		out[k] = strings.Join(v, "\n")
	}
	return out
}

// TestAnswerHeaders pins the headers of every kind of answer the frame
// middleware shapes (request id and security headers, CORS, the duplicate
// cookie refusal, no-store under /auth, HTML policy), as the separate
// middleware of before wrote them: merging them into fewer hops must not
// change one header. Order matters where one step refuses before another
// runs: a preflight is answered before the duplicate-cookie check, which
// refuses before /auth's Pragma is set.
func TestAnswerHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	login := ts.loginJSON(t, "alice@example.com", "alice-pass", "web")
	var session string
	for _, c := range login.cookies {
		if c.Name == "ts_session" {
			session = c.Value
		}
	}
	withSession := func(h map[string]string) map[string]string {
		if h == nil {
			h = map[string]string{}
		}
		h["Cookie"] = "ts_session=" + session
		return h
	}
	preflight := map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
	requests := map[string]treq{
		"me":                                      {path: "/auth/me", header: withSession(nil)},
		"me from an allowed origin":               {path: "/auth/me", header: withSession(map[string]string{"Origin": "https://app.example.com"})},
		"me from an unlisted origin":              {path: "/auth/me", header: withSession(map[string]string{"Origin": "https://evil.example"})},
		"me in upper case":                        {path: "/AUTH/ME", header: withSession(nil)},
		"me without a credential":                 {path: "/auth/me"},
		"me with the session cookie twice":        {path: "/auth/me", header: map[string]string{"Cookie": "ts_session=" + session + "; ts_session=x"}},
		"options without preflight headers":       {method: "OPTIONS", path: "/auth/me", header: map[string]string{"Origin": "https://app.example.com"}},
		"preflight":                               {method: "OPTIONS", path: "/auth/me", header: preflight},
		"preflight with the session cookie twice": {method: "OPTIONS", path: "/auth/me", header: map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Cookie": "ts_session=a; ts_session=b"}},
		"unknown under /auth":                     {path: "/auth/nope"},
		"unknown beside /auth":                    {path: "/authors/1"},
		"livez":                                   {path: "/livez"},
		"livez with the session cookie twice":     {path: "/livez", header: map[string]string{"Cookie": "ts_session=a; ts_session=b"}},
		"home page":                               {path: "/"},
		"home page from an allowed origin":        {path: "/", header: map[string]string{"Origin": "https://app.example.com"}},
		"method not allowed":                      {method: "DELETE", path: "/auth/me", header: withSession(nil)},
	}
	tests := []struct {
		name   string
		status int
		want   map[string]string
	}{
		{name: "me", status: 200, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "me from an allowed origin", status: 200, want: map[string]string{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "Retry-After,WWW-Authenticate,X-Request-Id,Deprecation,Sunset,Link", "Access-Control-Max-Age": "600", "Cache-Control": "no-store", "Content-Type": "application/json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "me from an unlisted origin", status: 200, want: map[string]string{"Access-Control-Expose-Headers": "Retry-After,WWW-Authenticate,X-Request-Id,Deprecation,Sunset,Link", "Access-Control-Max-Age": "600", "Cache-Control": "no-store", "Content-Type": "application/json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "me in upper case", status: 200, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "me without a credential", status: 401, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "Www-Authenticate": "Bearer", "X-Content-Type-Options": "nosniff"}},
		{name: "me with the session cookie twice", status: 400, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "options without preflight headers", status: 405, want: map[string]string{"Allow": "GET", "Cache-Control": "no-store", "Content-Type": "application/problem+json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "preflight", status: 204, want: map[string]string{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Headers": "Authorization,Content-Type,X-CSRF-Token", "Access-Control-Allow-Methods": "GET,POST,PUT,PATCH,DELETE,HEAD", "Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "Retry-After,WWW-Authenticate,X-Request-Id,Deprecation,Sunset,Link", "Access-Control-Max-Age": "600", "Referrer-Policy": "no-referrer", "Vary": "Access-Control-Request-Method, Access-Control-Request-Headers, Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "preflight with the session cookie twice", status: 204, want: map[string]string{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Headers": "Authorization,Content-Type,X-CSRF-Token", "Access-Control-Allow-Methods": "GET,POST,PUT,PATCH,DELETE,HEAD", "Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "Retry-After,WWW-Authenticate,X-Request-Id,Deprecation,Sunset,Link", "Access-Control-Max-Age": "600", "Referrer-Policy": "no-referrer", "Vary": "Access-Control-Request-Method, Access-Control-Request-Headers, Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "unknown under /auth", status: 404, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "unknown beside /auth", status: 404, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "livez", status: 200, want: map[string]string{"Content-Type": "application/json", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "livez with the session cookie twice", status: 400, want: map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
		{name: "home page", status: 200, want: map[string]string{"Cache-Control": "no-cache", "Content-Security-Policy": "default-src 'none'; style-src 'sha256-MVy6vOK4/YxNJ/bJwgThMrUSkGH7ieT7Zc2hBNpfPGc='; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", "Content-Type": "text/html; charset=utf-8", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}},
		{name: "home page from an allowed origin", status: 200, want: map[string]string{"Access-Control-Allow-Credentials": "true", "Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "Retry-After,WWW-Authenticate,X-Request-Id,Deprecation,Sunset,Link", "Access-Control-Max-Age": "600", "Cache-Control": "no-cache", "Content-Security-Policy": "default-src 'none'; style-src 'sha256-MVy6vOK4/YxNJ/bJwgThMrUSkGH7ieT7Zc2hBNpfPGc='; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", "Content-Type": "text/html; charset=utf-8", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}},
		{name: "method not allowed", status: 405, want: map[string]string{"Allow": "GET", "Cache-Control": "no-store", "Content-Type": "application/problem+json", "Pragma": "no-cache", "Referrer-Policy": "no-referrer", "Vary": "Origin", "X-Content-Type-Options": "nosniff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, requests[tc.name])
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if got := answerHeaders(t, r.header); !maps.Equal(got, tc.want) {
				t.Fatalf("headers\n got %v\nwant %v", got, tc.want)
			}
		})
	}
}
