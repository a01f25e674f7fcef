package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const preCookie = "ts_login_csrf"

// preSession fetches a login form's token and cookie, as a browser would.
func (ts *testServer) preSession(t *testing.T) (string, *http.Cookie) {
	t.Helper()
	r := ts.do(t, treq{path: "/auth/csrf"})
	if r.status != 200 {
		t.Fatalf("GET /auth/csrf: %d %s", r.status, r.body)
	}
	c := r.cookie(preCookie)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("pre-session cookie missing or weak: %+v", r.cookies)
	}
	if m := r.json(t); m["pre_session"] != true || m["csrf_token"] == "" {
		t.Fatalf("GET /auth/csrf body: %s", r.body)
	}
	return r.json(t)["csrf_token"].(string), c
}

func aliceForm(token string) url.Values {
	v := url.Values{"email": {"alice@example.com"}, "password": {"alice-pass"}}
	if token != "" {
		v.Set("csrf_token", token)
	}
	return v
}

func TestLoginCSRF(t *testing.T) {
	ts := newTestServer(t, nil)
	token, cookie := ts.preSession(t)
	otherToken, otherCookie := ts.preSession(t)
	// Each successful form login spends its pre-session: a second one.
	token2, cookie2 := ts.preSession(t)
	if otherCookie.Value == cookie.Value || otherToken == token {
		t.Fatal("two browsers got the same pre-session")
	}
	sess := ts.loginJSON(t, "ops@example.com", "ops-pass", "web")
	sessToken := sess.json(t)["csrf_token"].(string)

	tests := []struct {
		name    string
		r       treq
		status  int
		code    string
		cleared bool
	}{
		{name: "form without token or cookie", r: treq{form: aliceForm("")}, status: 403, code: "csrf_failed"},
		{name: "form with token, no cookie", r: treq{form: aliceForm(token)}, status: 403, code: "csrf_failed"},
		{name: "form with cookie, no token", r: treq{form: aliceForm(""), cookies: []*http.Cookie{cookie}}, status: 403, code: "csrf_failed"},
		{name: "form with another browser's token", r: treq{form: aliceForm(otherToken), cookies: []*http.Cookie{cookie}}, status: 403, code: "csrf_failed"},
		{name: "form with a session's CSRF token", r: treq{form: aliceForm(sessToken), cookies: []*http.Cookie{cookie}}, status: 403, code: "csrf_failed"},
		{name: "form with a forged cookie and its token", r: treq{form: aliceForm(token), cookies: []*http.Cookie{{Name: preCookie, Value: forgeFirst(cookie.Value)}}}, status: 403, code: "csrf_failed"},
		{name: "cross-site form with valid token and cookie", r: treq{form: aliceForm(token), cookies: []*http.Cookie{cookie}, header: map[string]string{"Origin": "https://evil.example"}}, status: 403, code: "csrf_failed"},
		{name: "null origin form", r: treq{form: aliceForm(token), cookies: []*http.Cookie{cookie}, header: map[string]string{"Origin": "null"}}, status: 403, code: "csrf_failed"},
		{name: "cross-site by fetch metadata", r: treq{form: aliceForm(token), cookies: []*http.Cookie{cookie}, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, status: 403, code: "csrf_failed"},
		{name: "JSON from a foreign origin", r: treq{json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}, header: map[string]string{"Origin": "https://evil.example"}}, status: 403, code: "csrf_failed"},
		{name: "form with the token in the header", r: treq{form: aliceForm(""), cookies: []*http.Cookie{cookie}, header: map[string]string{"X-CSRF-Token": token, "Origin": "http://tokenshift.test"}}, status: 200, cleared: true},
		{name: "same-origin form", r: treq{form: aliceForm(token2), cookies: []*http.Cookie{cookie2}, header: map[string]string{"Origin": "http://tokenshift.test", "Sec-Fetch-Site": "same-origin"}}, status: 200, cleared: true},
		{name: "JSON from an allowed CORS origin", r: treq{json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}, header: map[string]string{"Origin": "https://app.example.com"}}, status: 200},
		{name: "JSON without browser headers", r: treq{json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.method, tc.r.path = "POST", "/auth/login"
			before := ts.users.calls.Load()
			r := ts.do(t, tc.r)
			if tc.status != 200 {
				wantProblem(t, r, tc.status, tc.code)
				if r.cookie("ts_session") != nil {
					t.Fatal("a refused login set a session cookie")
				}
				if ts.users.calls.Load() != before {
					t.Fatal("a CSRF-refused login reached the password check")
				}
				return
			}
			if r.status != 200 || r.cookie("ts_session") == nil {
				t.Fatalf("login: %d %s", r.status, r.body)
			}
			c := r.cookie(preCookie)
			if tc.cleared && (c == nil || c.Value != "" || c.Expires.After(time.Now())) {
				t.Fatalf("the pre-session cookie was not discarded at login: %+v", c)
			}
		})
	}
}

// TestPreSessionSingleUse: the login a pre-session allowed spends it; a copy
// of the cookie and token cannot log in again, and GET /auth/csrf hands out a
// fresh pre-session instead of the spent one. Wrong passwords do not spend it.
func TestPreSessionSingleUse(t *testing.T) {
	ts := newTestServer(t, nil)
	token, cookie := ts.preSession(t)
	form := func(pass string) *tresp {
		v := aliceForm(token)
		v.Set("password", pass)
		return ts.do(t, treq{method: "POST", path: "/auth/login", form: v, cookies: []*http.Cookie{cookie}})
	}
	wantProblem(t, form("typo"), 401, "invalid_credentials")
	wantProblem(t, form("typo again"), 401, "invalid_credentials")
	if r := form("alice-pass"); r.status != 200 {
		t.Fatalf("login with the same form after typos: %d %s", r.status, r.body)
	}
	r := form("alice-pass")
	wantProblem(t, r, 403, "csrf_failed")
	if d, _ := r.json(t)["detail"].(string); !strings.Contains(d, "already used") {
		t.Fatalf("replay detail %q", d)
	}
	again := ts.do(t, treq{path: "/auth/csrf", cookies: []*http.Cookie{cookie}})
	if c := again.cookie(preCookie); c == nil || c.Value == cookie.Value || again.json(t)["csrf_token"] == token {
		t.Fatalf("GET /auth/csrf with a spent pre-session reused it: %s", again.body)
	}
}

// TestPreSessionRaceLogsInOnce: two submissions of one form with the right
// password at the same moment: one logs in, the other is refused.
func TestPreSessionRaceLogsInOnce(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.users.delay = 20 * time.Millisecond
	token, cookie := ts.preSession(t)
	var ok, refused atomic.Int64
	parallel(4, func(int) {
		r := ts.do(t, treq{method: "POST", path: "/auth/login", form: aliceForm(token), cookies: []*http.Cookie{cookie}})
		switch r.status {
		case 200:
			ok.Add(1)
		case 403:
			refused.Add(1)
		default:
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	if ok.Load() != 1 || refused.Load() != 3 {
		t.Fatalf("%d logins, %d refused; want 1 and 3", ok.Load(), refused.Load())
	}
}

func TestPreSessionExpires(t *testing.T) {
	now := time.Now()
	ts := newTestServer(t, func(o *testOptions) { o.Clock = func() time.Time { return now } })
	token, cookie := ts.preSession(t)
	now = now.Add(preSessionTTL + time.Second)
	wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/login", form: aliceForm(token), cookies: []*http.Cookie{cookie}}), 403, "csrf_failed")
}

func TestCSRFEndpoint(t *testing.T) {
	ts := newTestServer(t, nil)
	lr := ts.loginJSON(t, "alice@example.com", "alice-pass", "web")
	sess := lr.cookie("ts_session")

	// With a live session: the session's token, no pre-session.
	r := ts.do(t, treq{path: "/auth/csrf", cookies: []*http.Cookie{sess}})
	if r.status != 200 || r.json(t)["csrf_token"] != lr.json(t)["csrf_token"] || r.cookie(preCookie) != nil {
		t.Fatalf("session csrf: %d %s", r.status, r.body)
	}
	// A stale session cookie (normal on a login page) is not a 401.
	r = ts.do(t, treq{path: "/auth/csrf", cookies: []*http.Cookie{{Name: "ts_session", Value: "stale.value"}}})
	if r.status != 200 || r.json(t)["pre_session"] != true || r.cookie(preCookie) == nil || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("stale cookie: %d %v %s", r.status, r.header, r.body)
	}
	// A fresh pre-session cookie is reused: two tabs keep working.
	token, cookie := ts.preSession(t)
	r = ts.do(t, treq{path: "/auth/csrf", cookies: []*http.Cookie{cookie}})
	if r.json(t)["csrf_token"] != token {
		t.Fatal("a second GET /auth/csrf invalidated the first tab's token")
	}
	// A store outage is still a 503.
	_ = ts.st.Close()
	wantProblem(t, ts.do(t, treq{path: "/auth/csrf", cookies: []*http.Cookie{sess}}), 503, "store_unavailable")
}

// forgeFirst changes the first character of v (a value starting with "A"
// forged as "A..." would be the real one, 1 time in 64).
func forgeFirst(v string) string {
	if v[0] == 'A' {
		return "B" + v[1:]
	}
	return "A" + v[1:]
}
