package e2e

import (
	"net/http"
	"testing"
)

// Cookie tossing: a sibling subdomain plants a second refresh (or session,
// or access) cookie for the parent domain with a longer path, which the
// browser sends first; the __Secure- prefix does not stop it. A request with
// a credential cookie twice is refused on every route, forward-auth too.
func TestCookieTossingRefused(t *testing.T) {
	t.Parallel()
	in := start(t)
	victim, attacker := in.login(t, aliceEmail, alicePass, "spa"), in.login(t, opsEmail, opsPass, "spa")
	two := func(name string) []*http.Cookie {
		a, v := attacker.cookie(name), victim.cookie(name)
		if a == nil || v == nil {
			t.Fatalf("no %s cookie from the logins", name)
		}
		return []*http.Cookie{{Name: name, Value: a.Value}, {Name: name, Value: v.Value}}
	}
	same := map[string]string{"Origin": in.URL, "X-Original-URI": "/app/x"}
	for _, tc := range []struct {
		name         string
		method, path string
		cookies      []*http.Cookie
	}{
		{name: "two refresh cookies on refresh", method: "POST", path: "/auth/refresh", cookies: two("ts_refresh")},
		{name: "two refresh cookies on logout", method: "POST", path: "/auth/logout", cookies: two("ts_refresh")},
		{name: "two session cookies on me", method: "GET", path: "/auth/me", cookies: two("ts_session")},
		{name: "two session cookies on login", method: "POST", path: "/auth/login", cookies: two("ts_session")},
		{name: "two access cookies on forward-auth", method: "GET", path: "/auth/verify", cookies: two("ts_access")},
		{name: "two session cookies on forward-auth", method: "GET", path: "/auth/verify", cookies: two("ts_session")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rq := req{method: tc.method, path: tc.path, cookies: tc.cookies, header: same}
			if tc.path == "/auth/login" {
				rq.json = map[string]string{"email": opsEmail, "password": opsPass, "client_id": "spa"}
			}
			r := in.do(t, rq)
			expectProblem(t, r, 400, "duplicate_cookie")
			if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Fatalf("a refused request set cookies: %q", sc)
			}
			if r.header.Get("X-Auth-User") != "" {
				t.Fatal("a refused check named a user")
			}
		})
	}
	// The victim's own cookie alone still works.
	r := in.do(t, req{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{victim.cookie("ts_refresh")}, header: map[string]string{"Origin": in.URL}})
	if r.status != 200 {
		t.Fatalf("refresh with the victim's cookie alone: %d %s", r.status, r.body)
	}
}
