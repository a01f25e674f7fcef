package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestRevokeEndpoint(t *testing.T) {
	ts := newTestServer(t, nil)
	me := func(access string) int {
		return ts.do(t, treq{path: "/auth/me", header: map[string]string{"Authorization": "Bearer " + access}}).status
	}
	lr := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)
	access1, refresh1 := lr["access_token"].(string), lr["refresh_token"].(string)
	rr := ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh1}}).json(t)
	access2, refresh2 := rr["access_token"].(string), rr["refresh_token"].(string)

	t.Run("access token: only its jti", func(t *testing.T) {
		r := ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token": {access1}, "token_type_hint": {"access_token"}}})
		if r.status != 200 || len(r.body) != 0 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if me(access1) != 401 {
			t.Fatal("the revoked access token still works")
		}
		if me(access2) != 200 {
			t.Fatal("another access token of the same login was revoked too")
		}
	})
	t.Run("unknown, invalid and already revoked tokens answer 200", func(t *testing.T) {
		for _, tok := range []string{"garbage", access1, "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", access2[:len(access2)-3] + "AAA"} {
			if r := ts.do(t, treq{method: "POST", path: "/auth/revoke", json: map[string]string{"token": tok}}); r.status != 200 {
				t.Fatalf("%.16s: %d %s", tok, r.status, r.body)
			}
		}
		if me(access2) != 200 {
			t.Fatal("a forged token revoked a live one")
		}
	})
	t.Run("wrong hint is ignored", func(t *testing.T) {
		other := ts.loginJSON(t, "alice@example.com", "alice-pass", "mobile").json(t)["access_token"].(string)
		if r := ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token": {other}, "token_type_hint": {"refresh_token"}}}); r.status != 200 {
			t.Fatal(r.status)
		}
		if me(other) != 401 {
			t.Fatal("a token with a wrong hint was not revoked")
		}
	})
	t.Run("refresh token: its whole login", func(t *testing.T) {
		sid := rr["sid"].(string)
		if r := ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token": {refresh2}}}); r.status != 200 {
			t.Fatal(r.status)
		}
		if me(access2) != 401 {
			t.Fatal("the login's access token survived revoking its refresh token")
		}
		if _, err := ts.sess.Get(t.Context(), sid); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("session record after revoking the refresh token: %v; want gone", err)
		}
		wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh2}}), 401, "invalid_token")
	})
	t.Run("bad requests", func(t *testing.T) {
		wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{}}), 400, "invalid_request")
		wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/revoke", raw: "token=x", ctype: "text/plain"}), 415, "unsupported_media_type")
		wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/revoke", raw: `{"token":7}`, ctype: "application/json"}), 400, "invalid_request")
	})
}

// Cookie-transport (spa) clients revoke with their cookies; that path is a
// cookie-authenticated unsafe request and needs the origin check and the
// login's CSRF token.
func TestRevokeWithCookies(t *testing.T) {
	ts := newTestServer(t, nil)
	spa := ts.loginJSON(t, "alice@example.com", "alice-pass", "spa")
	csrf := spa.json(t)["csrf_token"].(string)
	access, refresh := spa.cookie("ts_access"), spa.cookie("ts_refresh")
	if access == nil || refresh == nil {
		t.Fatalf("spa cookies: %+v", spa.cookies)
	}
	otherCSRF := ts.loginJSON(t, "ops@example.com", "ops-pass", "spa").json(t)["csrf_token"].(string)
	cookieMe := func() int {
		return ts.do(t, treq{path: "/auth/me", cookies: []*http.Cookie{access}}).status
	}
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{name: "no CSRF token"},
		{name: "another login's token", header: map[string]string{"X-CSRF-Token": otherCSRF}},
		{name: "foreign origin", header: map[string]string{"X-CSRF-Token": csrf, "Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/revoke", cookies: []*http.Cookie{access, refresh}, header: tc.header}), 403, "csrf_failed")
			if cookieMe() != 200 {
				t.Fatal("a refused revocation revoked")
			}
		})
	}
	r := ts.do(t, treq{method: "POST", path: "/auth/revoke", cookies: []*http.Cookie{access, refresh}, header: map[string]string{"X-CSRF-Token": csrf, "Origin": "http://tokenshift.test"}})
	if r.status != 200 {
		t.Fatalf("same-origin revoke with the token: %d %s", r.status, r.body)
	}
	if cookieMe() != 401 {
		t.Fatal("the access cookie still works after revoking it")
	}
	// The refresh cookie, named by the hint, ends the login.
	r = ts.do(t, treq{method: "POST", path: "/auth/revoke", form: url.Values{"token_type_hint": {"refresh_token"}}, cookies: []*http.Cookie{refresh}, header: map[string]string{"X-CSRF-Token": csrf}})
	if r.status != 200 || r.cookie("ts_refresh") == nil || r.cookie("ts_refresh").Value != "" {
		t.Fatalf("refresh cookie revoke: %d %v", r.status, r.cookies)
	}
	wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{refresh}}), 401, "invalid_token")
}

// A replayed refresh token ends the whole login: tokens revoked AND the
// session record deleted, so the login no longer exists anywhere.
func TestRefreshReuseDeletesSession(t *testing.T) {
	ts := newTestServer(t, nil)
	lr := ts.loginJSON(t, "alice@example.com", "alice-pass", "web")
	body := lr.json(t)
	sid, old := body["sid"].(string), body["refresh_token"].(string)
	if _, err := ts.sess.Get(t.Context(), sid); err != nil {
		t.Fatalf("session after login: %v", err)
	}
	if r := ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": old}}); r.status != 200 {
		t.Fatalf("first refresh: %d", r.status)
	}
	wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": old}}), 401, "invalid_token")
	if _, err := ts.sess.Get(t.Context(), sid); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("session record after refresh reuse: %v; want deleted", err)
	}
	list, err := ts.sess.ListByUser(t.Context(), "u-alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if l.SID == sid {
			t.Fatal("the reused login is still listed for the user")
		}
	}
	wantProblem(t, ts.do(t, treq{path: "/auth/me", cookies: []*http.Cookie{lr.cookie("ts_session")}}), 401, "invalid_session")
}
