package httpapi

import (
	"net/http"
	"net/url"
	"testing"
)

// TestCookieSettingAnswersNeedSameOrigin: an answer that sets credential
// cookies passes the same-origin check whatever carried the request's own
// credential. A foreign page auto-submitting a form with the attacker's own
// refresh token in the body would otherwise plant the attacker's access and
// refresh cookies in the victim's browser (login CSRF through refresh).
func TestCookieSettingAnswersNeedSameOrigin(t *testing.T) {
	ts := newTestServer(t, nil)
	attacker := ts.loginJSON(t, "ops@example.com", "ops-pass", "spa").cookie("ts_refresh")
	if attacker == nil {
		t.Fatal("a spa login set no refresh cookie")
	}
	web := ts.loginJSON(t, "alice@example.com", "alice-pass", "web")
	webCSRF := web.json(t)["csrf_token"].(string)
	evil := map[string]string{"Origin": "https://evil.example"}

	tests := []struct {
		name string
		r    treq
	}{
		{name: "refresh: cross-site form with the token in the body", r: treq{path: "/auth/refresh", form: url.Values{"refresh_token": {attacker.Value}}, header: evil}},
		{name: "refresh: cross-site form by fetch metadata", r: treq{path: "/auth/refresh", form: url.Values{"refresh_token": {attacker.Value}}, header: map[string]string{"Sec-Fetch-Site": "cross-site"}}},
		{name: "refresh: sibling subdomain", r: treq{path: "/auth/refresh", form: url.Values{"refresh_token": {attacker.Value}}, header: map[string]string{"Origin": "http://sub.tokenshift.test", "Sec-Fetch-Site": "same-site"}}},
		{name: "refresh: null origin", r: treq{path: "/auth/refresh", form: url.Values{"refresh_token": {attacker.Value}}, header: map[string]string{"Origin": "null"}}},
		{name: "refresh: cross-site JSON body", r: treq{path: "/auth/refresh", json: map[string]string{"refresh_token": attacker.Value}, header: evil}},
		{name: "refresh: cross-site with the cookie", r: treq{path: "/auth/refresh", cookies: []*http.Cookie{attacker}, header: evil}},
		{name: "login of a cookie client: cross-site JSON", r: treq{path: "/auth/login", json: map[string]string{"email": "ops@example.com", "password": "ops-pass", "client_id": "spa"}, header: evil}},
		{name: "exchange: cross-site with the session's token", r: treq{path: "/auth/exchange", cookies: []*http.Cookie{web.cookie("ts_session")}, header: map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": webCSRF}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.method = "POST"
			r := ts.do(t, tc.r)
			wantProblem(t, r, 403, "csrf_failed")
			if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Fatalf("a refused cross-site request set cookies: %q", sc)
			}
		})
	}

	// The refused requests changed nothing: the attacker's token was not
	// rotated, and its same-origin use still works and sets the cookies.
	r := ts.do(t, treq{method: "POST", path: "/auth/refresh", form: url.Values{"refresh_token": {attacker.Value}}, header: map[string]string{"Origin": "http://tokenshift.test", "Sec-Fetch-Site": "same-origin"}})
	if r.status != 200 || r.cookie("ts_refresh") == nil || r.cookie("ts_access") == nil {
		t.Fatalf("same-origin refresh of the untouched token: %d %s %v", r.status, r.body, r.cookies)
	}
	// A body client's answer sets no cookie, so nothing can be planted: a
	// refresh from another origin keeps working (CORS decides whether that
	// page may read the answer).
	mobile := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["refresh_token"].(string)
	r = ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": mobile}, header: evil})
	if r.status != 200 || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("body client refresh from another origin: %d %s %v", r.status, r.body, r.header.Values("Set-Cookie"))
	}
}
