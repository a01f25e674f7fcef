package httpapi

import (
	"net/http"
	"testing"
)

// TestDuplicateCredentialCookies: a sibling subdomain can plant a second
// refresh cookie (Domain=parent, longer Path) that the browser sends first,
// __Secure- prefix or not. A request carrying any credential cookie twice is
// refused with 400 duplicate_cookie on every route, before anything reads it.
func TestDuplicateCredentialCookies(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := "plain names"
		if secure {
			name = "prefixed names"
		}
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, func(o *testOptions) { o.Cookies.Secure = secure })
			names := ts.opts.Cookies
			login := func(email, pass, client string) *tresp {
				r := ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": email, "password": pass, "client_id": client}})
				if r.status != 200 {
					t.Fatalf("login: %d %s", r.status, r.body)
				}
				return r
			}
			victimSPA, attackerSPA := login("alice@example.com", "alice-pass", "spa"), login("ops@example.com", "ops-pass", "spa")
			victimWeb, attackerWeb := login("alice@example.com", "alice-pass", "web"), login("ops@example.com", "ops-pass", "web")
			pair := func(r1, r2 *tresp, name string) []*http.Cookie {
				a, b := r1.cookie(name), r2.cookie(name)
				if a == nil || b == nil {
					t.Fatalf("login set no %s cookie", name)
				}
				// The planted one first, as the browser sends the one with
				// the longer path first.
				return []*http.Cookie{{Name: name, Value: a.Value}, {Name: name, Value: b.Value}}
			}
			doubled := map[string][]*http.Cookie{
				names.RefreshCookie(): pair(attackerSPA, victimSPA, names.RefreshCookie()),
				names.AccessCookie():  pair(attackerSPA, victimSPA, names.AccessCookie()),
				names.SessionCookie(): pair(attackerWeb, victimWeb, names.SessionCookie()),
			}
			routes := []struct{ method, path string }{
				{"POST", "/auth/refresh"}, {"POST", "/auth/logout"}, {"POST", "/auth/revoke"}, {"POST", "/auth/exchange"},
				{"POST", "/auth/login"}, {"GET", "/auth/me"}, {"GET", "/auth/csrf"}, {"GET", "/auth/sessions"},
				{"GET", "/livez"}, {"GET", "/no/such/route"},
			}
			for cookieName, cookies := range doubled {
				for _, rt := range routes {
					t.Run(cookieName+" "+rt.method+" "+rt.path, func(t *testing.T) {
						r := treq{method: rt.method, path: rt.path, cookies: cookies, header: map[string]string{"Origin": "http://tokenshift.test"}}
						if rt.path == "/auth/login" {
							r.json = map[string]string{"email": "ops@example.com", "password": "ops-pass", "client_id": "spa"}
						}
						res := ts.do(t, r)
						wantProblem(t, res, 400, "duplicate_cookie")
						if sc := res.header.Values("Set-Cookie"); len(sc) != 0 {
							t.Fatalf("a refused request set cookies: %q", sc)
						}
					})
				}
			}

			// Two Cookie header lines are one list of cookies.
			hr, _ := http.NewRequest("POST", "http://tokenshift.test/auth/refresh", http.NoBody)
			hr.Header.Add("Cookie", names.RefreshCookie()+"="+doubled[names.RefreshCookie()][0].Value)
			hr.Header.Add("Cookie", "theme=dark; "+names.RefreshCookie()+"="+doubled[names.RefreshCookie()][1].Value)
			wantProblem(t, ts.serve(t, hr, ""), 400, "duplicate_cookie")

			// One of each credential, next to another name sent twice, is
			// what a browser normally sends, and works.
			r := ts.do(t, treq{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{
				{Name: "theme", Value: "dark"}, {Name: "theme", Value: "light"},
				{Name: names.RefreshCookie(), Value: victimSPA.cookie(names.RefreshCookie()).Value},
			}})
			if r.status != 200 {
				t.Fatalf("refresh with one refresh cookie: %d %s", r.status, r.body)
			}
		})
	}
}
