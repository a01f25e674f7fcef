package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

const (
	aliceEmail = "alice@example.com"
	alicePass  = "alice-dev-password"
	opsEmail   = "ops@example.com"
	opsPass    = "ops-dev-password"
)

// TestCoreFlows runs the walk-through (login, me with each credential,
// refresh rotation and reuse, logout revoking both) on both stores.
func TestCoreFlows(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		coreFlows(t, start(t))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		coreFlows(t, start(t, "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL()))
	})
}

func coreFlows(t *testing.T, in *instance) {
	lr := in.login(t, aliceEmail, alicePass, "web")
	body := lr.json(t)
	sess := lr.cookie("ts_session")
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie missing or not HttpOnly/SameSite=Lax: %+v", lr.cookies)
	}
	if lr.header.Get("Cache-Control") != "no-store" {
		t.Errorf("login Cache-Control = %q, want no-store", lr.header.Get("Cache-Control"))
	}
	access, _ := body["access_token"].(string)
	refresh, _ := body["refresh_token"].(string)
	if access == "" || refresh == "" || body["token_type"] != "Bearer" || body["expires_in"].(float64) <= 0 {
		t.Fatalf("login body lacks tokens: %s", lr.body)
	}
	csrf, _ := body["csrf_token"].(string)
	if csrf == "" {
		t.Fatalf("login set a session but answered no csrf_token: %s", lr.body)
	}

	meCookie := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}).json(t)
	meBearer := in.do(t, req{path: "/auth/me", bearer: access}).json(t)
	if meCookie["scheme"] != "session" || meBearer["scheme"] != "bearer" {
		t.Fatalf("schemes: cookie %v, bearer %v", meCookie["scheme"], meBearer["scheme"])
	}
	for _, k := range []string{"user_id", "email", "client_id", "sid"} {
		if meCookie[k] != meBearer[k] || meCookie[k] == "" || meCookie[k] == nil {
			t.Errorf("%s differs: cookie %v, bearer %v", k, meCookie[k], meBearer[k])
		}
	}
	if meCookie["email"] != aliceEmail || meCookie["client_id"] != "web" {
		t.Errorf("me = %v", meCookie)
	}

	// Rotation: the new pair works, the old refresh token does not.
	rr := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh}})
	if rr.status != 200 {
		t.Fatalf("refresh: %d %s", rr.status, rr.body)
	}
	access2, refresh2 := rr.json(t)["access_token"].(string), rr.json(t)["refresh_token"].(string)
	if access2 == "" || refresh2 == "" || refresh2 == refresh {
		t.Fatalf("refresh did not rotate: %s", rr.body)
	}
	if r := in.do(t, req{path: "/auth/me", bearer: access2}); r.status != 200 {
		t.Fatalf("new access token refused: %d %s", r.status, r.body)
	}

	// Logout with the bearer token revokes the whole login: cookie, both access
	// tokens and the live refresh token all die.
	lo := in.do(t, req{method: "POST", path: "/auth/logout", bearer: access2})
	if lo.status != 204 {
		t.Fatalf("logout: %d %s", lo.status, lo.body)
	}
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 401, "invalid_session")
	r := in.do(t, req{path: "/auth/me", bearer: access})
	expectProblem(t, r, 401, "invalid_token")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: access2}), 401, "invalid_token")
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh2}}), 401, "invalid_token")
}

func TestRefreshReuseKillsFamily(t *testing.T) {
	t.Parallel()
	in := start(t)
	b := in.login(t, aliceEmail, alicePass, "mobile").json(t)
	old := b["refresh_token"].(string)
	rr := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": old}}).json(t)
	newAccess, newRefresh := rr["access_token"].(string), rr["refresh_token"].(string)
	// The stolen old token comes back: the whole family must die.
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": old}}), 401, "invalid_token")
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: newAccess}), 401, "invalid_token")
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": newRefresh}}), 401, "invalid_token")
}

func TestLogoutWithCookieNeedsCSRF(t *testing.T) {
	t.Parallel()
	in := start(t)
	lr := in.login(t, aliceEmail, alicePass, "web")
	sess := lr.cookie("ts_session")
	access := lr.json(t)["access_token"].(string)
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{sess}}), 403, "csrf_failed")
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{sess},
		header: map[string]string{"X-CSRF-Token": "forged"}}), 403, "csrf_failed")
	csrf := in.do(t, req{path: "/auth/csrf", cookies: []*http.Cookie{sess}}).json(t)["csrf_token"].(string)
	if r := in.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{sess}, header: map[string]string{"X-CSRF-Token": csrf}}); r.status != 204 {
		t.Fatalf("logout with CSRF token: %d %s", r.status, r.body)
	}
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: access}), 401, "invalid_token")
}

func TestFormLoginAndSPACookies(t *testing.T) {
	t.Parallel()
	in := start(t)
	r := in.formLogin(t, url.Values{"email": {aliceEmail}, "password": {alicePass}})
	if r.status != 200 || r.cookie("ts_session") == nil {
		t.Fatalf("form login: %d %s", r.status, r.body)
	}
	if r.json(t)["client_id"] != "web" {
		t.Errorf("form login without client_id should use the default client web: %s", r.body)
	}
	r = in.formLogin(t, url.Values{"email": {aliceEmail}, "password": {alicePass}, "return_to": {"/home"}})
	if r.status != 303 || r.header.Get("Location") != "/home" {
		t.Fatalf("form login with return_to: %d %v", r.status, r.header)
	}
	r = in.formLogin(t, url.Values{"email": {aliceEmail}, "password": {alicePass}, "return_to": {"//evil.example/x"}})
	if r.status != 200 {
		t.Fatalf("open redirect must be ignored, got %d %v", r.status, r.header.Get("Location"))
	}

	// spa: tokens travel in HttpOnly cookies, never in the body.
	r = in.login(t, aliceEmail, alicePass, "spa")
	b := r.json(t)
	if b["access_token"] != nil || b["refresh_token"] != nil || b["token_transport"] != "cookie" {
		t.Fatalf("spa login leaked tokens into the body: %s", r.body)
	}
	ac := r.cookie("ts_access")
	if ac == nil || !ac.HttpOnly {
		t.Fatalf("spa access cookie missing or not HttpOnly: %+v", r.cookies)
	}
	me := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{ac}}).json(t)
	if me["scheme"] != "jwt_cookie" || me["client_id"] != "spa" {
		t.Fatalf("me with access cookie = %v", me)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_SERVER_BODY_LIMIT=4096")
	good := in.login(t, aliceEmail, alicePass, "web").json(t)
	refresh := good["refresh_token"].(string)
	access := good["access_token"].(string)
	tests := []struct {
		name   string
		r      req
		status int
		code   string
	}{
		{name: "malformed json", r: req{method: "POST", path: "/auth/login", raw: `{"email":`, ctype: "application/json"}, status: 400, code: "invalid_request"},
		{name: "json array", r: req{method: "POST", path: "/auth/login", raw: `[1,2]`, ctype: "application/json"}, status: 400, code: "invalid_request"},
		{name: "number field", r: req{method: "POST", path: "/auth/login", raw: `{"email":1,"password":"x"}`, ctype: "application/json"}, status: 400, code: "invalid_request"},
		{name: "wrong content type", r: req{method: "POST", path: "/auth/login", raw: `email=a`, ctype: "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "oversized body", r: req{method: "POST", path: "/auth/login", raw: `{"email":"` + strings.Repeat("a", 8000) + `"}`, ctype: "application/json"}, status: 413, code: "payload_too_large"},
		{name: "missing password", r: req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail}}, status: 400, code: "invalid_request"},
		{name: "missing email", r: req{method: "POST", path: "/auth/login", json: map[string]string{"password": "x"}}, status: 400, code: "invalid_request"},
		{name: "wrong password", r: req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": "nope"}}, status: 401, code: "invalid_credentials"},
		{name: "unknown user", r: req{method: "POST", path: "/auth/login", json: map[string]string{"email": "mallory@example.com", "password": "nope"}}, status: 401, code: "invalid_credentials"},
		{name: "unregistered client", r: req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass, "client_id": "evil"}}, status: 400, code: "unknown_client"},
		{name: "bearer not a jwt", r: req{path: "/auth/me", bearer: "not-a-jwt"}, status: 401, code: "invalid_token"},
		{name: "bearer alg none", r: req{path: "/auth/me", bearer: "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ1LWFsaWNlIn0."}, status: 401, code: "invalid_token"},
		{name: "bearer bad signature", r: req{path: "/auth/me", bearer: access[:len(access)-4] + "AAAA"}, status: 401, code: "invalid_token"},
		{name: "refresh token as access token", r: req{path: "/auth/me", bearer: refresh}, status: 401, code: "invalid_token"},
		{name: "access token as refresh token", r: req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": access}}, status: 401, code: "invalid_token"},
		{name: "session never issued", r: req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_session", Value: "AAAA.BBBB"}}}, status: 401, code: "invalid_session"},
		{name: "session garbage", r: req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_session", Value: "%%%"}}}, status: 401, code: "invalid_session"},
		{name: "no credential", r: req{path: "/auth/me"}, status: 401, code: "unauthenticated"},
		{name: "unknown route", r: req{path: "/nope"}, status: 404, code: "not_found"},
		{name: "refresh without token", r: req{method: "POST", path: "/auth/refresh", json: map[string]string{}}, status: 400, code: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectProblem(t, in.do(t, tt.r), tt.status, tt.code)
		})
	}
}

func TestBothCredentialsOfDifferentUsers(t *testing.T) {
	t.Parallel()
	in := start(t)
	alice := in.login(t, aliceEmail, alicePass, "web")
	ops := in.login(t, opsEmail, opsPass, "mobile").json(t)
	r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{alice.cookie("ts_session")}, bearer: ops["access_token"].(string)})
	expectProblem(t, r, 401, "credential_conflict")
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	in := start(t)
	first := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
	// Logging in while presenting a cookie must destroy that cookie's session.
	r := in.do(t, req{method: "POST", path: "/auth/login", cookies: []*http.Cookie{first},
		json: map[string]string{"email": aliceEmail, "password": alicePass}})
	second := r.cookie("ts_session")
	if second == nil || second.Value == first.Value {
		t.Fatalf("login reused the presented session id")
	}
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{first}}), 401, "invalid_session")
}

// TestRedisRestartAndTwoInstances: credentials survive an instance restart, and
// two instances on one Redis accept each other's credentials and logouts.
func TestRedisRestartAndTwoInstances(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	keys := keysDir(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keys}
	a := start(t, env...)
	b := start(t, env...)

	lr := a.login(t, aliceEmail, alicePass, "web")
	sess := lr.cookie("ts_session")
	access := lr.json(t)["access_token"].(string)
	refresh := lr.json(t)["refresh_token"].(string)

	a.restart()
	if r := a.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
		t.Fatalf("session after restart: %d %s", r.status, r.body)
	}
	if r := a.do(t, req{path: "/auth/me", bearer: access}); r.status != 200 {
		t.Fatalf("token after restart: %d %s", r.status, r.body)
	}
	for _, in := range []*instance{a, b} {
		if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
			t.Fatalf("session on %s: %d %s", in.URL, r.status, r.body)
		}
		if r := in.do(t, req{path: "/auth/me", bearer: access}); r.status != 200 {
			t.Fatalf("token on %s: %d %s", in.URL, r.status, r.body)
		}
	}
	// Logout on B is honoured by A.
	if r := b.do(t, req{method: "POST", path: "/auth/logout", bearer: access}); r.status != 204 {
		t.Fatalf("logout on b: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(time.Second)
	for {
		r := a.do(t, req{path: "/auth/me", bearer: access})
		if r.status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance a still accepts the token 1s after logout on b")
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectProblem(t, a.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 401, "invalid_session")
	expectProblem(t, a.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh}}), 401, "invalid_token")
}

func TestRedisDownGives503(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	in := start(t, "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL(), "TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=300ms",
		"TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=300ms")
	sess := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
	srv.Stop()
	began := time.Now()
	expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 503, "store_unavailable")
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("503 took %s; the configured timeouts are 300ms", d)
	}
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass}}), 503, "store_unavailable")
	expectProblem(t, in.do(t, req{path: "/readyz"}), 503, "store_unavailable")
}
