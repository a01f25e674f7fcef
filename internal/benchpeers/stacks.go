package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

const (
	bareName   = "bare Fiber"
	aliceEmail = "alice@example.com" // tokenshift's development user
	alicePass  = "alice-dev-password"
	aliceID    = "u-alice"
	oidcEmail  = "jane.doe@example.com" // mockoidc.DefaultUser
)

// target is what the load generators send for a stack and how an answer is
// judged: check accepts only an authenticated answer for the logged-in user.
type target struct {
	url    string
	header http.Header
	check  func(status int, h http.Header, body []byte) error
	anon   bool // a request without the credential must be refused (false only for bare)
}

type stack struct {
	name   string
	server string                                                // the server it needs (env.server)
	tools  []string                                              // commands it needs on PATH
	login  func(ctx context.Context, s *server) (*target, error) // logs in once, after the server is up
	target *target
}

// allStacks is every stack, bare first. Names are what -stacks matches.
func allStacks() []*stack {
	st := []*stack{
		{name: bareName, server: "bare", login: bareLogin},
		{name: "Fiber session middleware, Redis", server: "fiber-session", tools: []string{"redis-server"}, login: fiberSessionLogin},
		{name: "gofiber/contrib/jwt, HS256", server: "fiber-jwt-HS256", login: fiberJWTLogin},
		{name: "gofiber/contrib/jwt, EdDSA", server: "fiber-jwt-EdDSA", login: fiberJWTLogin},
		{name: "oauth2-proxy /oauth2/auth, Redis", server: "oauth2-proxy", tools: []string{"redis-server"}, login: oauth2ProxyLogin},
		{name: "Express + express-session + connect-redis", server: "express", tools: []string{"redis-server", "node", "npm"}, login: expressLogin},
	}
	for _, store := range []string{"memory", "redis"} {
		for _, path := range []string{"/auth/me", "/auth/verify"} {
			for _, scheme := range []string{"session", "bearer", "jwt_cookie"} {
				s := &stack{name: fmt.Sprintf("tokenshift %s, %s, %s", scheme, store, path), server: "tokenshift-" + store, login: tokenshiftLogin(scheme, path)}
				if store == "redis" {
					s.tools = []string{"redis-server"}
				}
				st = append(st, s)
			}
		}
	}
	// The sessions the Express peer already has, read by tokenshift from the
	// Express peer's Redis (legacy.sources, kind express): the same cookie
	// as the Express stack, answered by tokenshift's forward-auth.
	st = append(st, &stack{name: legacyStackName, server: "tokenshift-legacy", tools: []string{"redis-server", "node", "npm"}, login: tokenshiftLegacyLogin})
	return st
}

const legacyStackName = "tokenshift legacy express, redis, /auth/verify"

func selectStacks(re *regexp.Regexp) []*stack {
	var out []*stack
	for _, s := range allStacks() {
		if s.name == bareName || re.MatchString(s.name) {
			out = append(out, s)
		}
	}
	return out
}

// verify asks the stack once with its credential and once without.
func (s *stack) verify(ctx context.Context) error {
	status, h, body, err := get(ctx, s.target.url, s.target.header)
	if err != nil {
		return err
	}
	if err := s.target.check(status, h, body); err != nil {
		return fmt.Errorf("%w: with its credential: %v (status %d, body %.200q)", errBadStack, err, status, body)
	}
	if s.target.anon {
		status, _, body, err := get(ctx, s.target.url, nil)
		if err != nil {
			return err
		}
		if status < 400 {
			return fmt.Errorf("%w: without a credential it answered %d %.200q", errBadStack, status, body)
		}
	}
	return nil
}

var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(ctx context.Context, u string, h http.Header) (int, http.Header, []byte, error) {
	return do(ctx, "GET", u, h, nil)
}

func do(ctx context.Context, method, u string, h http.Header, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

// jsonUser accepts a 200 JSON body naming user (and scheme, when not empty).
func jsonUser(user, scheme string) func(int, http.Header, []byte) error {
	return func(status int, _ http.Header, body []byte) error {
		if status != http.StatusOK {
			return fmt.Errorf("status %d, want 200", status)
		}
		var m struct {
			UserID string `json:"user_id"`
			Scheme string `json:"scheme"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("body is not JSON: %w", err)
		}
		if m.UserID != user {
			return fmt.Errorf("user_id %q, want %q", m.UserID, user)
		}
		if scheme != "" && m.Scheme != scheme {
			return fmt.Errorf("scheme %q, want %q", m.Scheme, scheme)
		}
		return nil
	}
}

// headerUser accepts status with header name equal to want (forward-auth).
func headerUser(status int, name, want string, more map[string]string) func(int, http.Header, []byte) error {
	return func(got int, h http.Header, _ []byte) error {
		if got != status {
			return fmt.Errorf("status %d, want %d", got, status)
		}
		if v := h.Get(name); v != want {
			return fmt.Errorf("%s %q, want %q", name, v, want)
		}
		for k, w := range more {
			if v := h.Get(k); v != w {
				return fmt.Errorf("%s %q, want %q", k, v, w)
			}
		}
		return nil
	}
}

// cookieHeader is a Cookie header of the response's cookies whose name
// matches one of names.
func cookieHeader(h http.Header, names ...string) (http.Header, error) {
	res := http.Response{Header: h}
	var parts []string
	for _, c := range res.Cookies() {
		for _, n := range names {
			if c.Name == n && c.Value != "" {
				parts = append(parts, c.Name+"="+c.Value)
			}
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("login set no cookie %v (Set-Cookie %q)", names, h.Values("Set-Cookie"))
	}
	return http.Header{"Cookie": {strings.Join(parts, "; ")}}, nil
}

func bareLogin(_ context.Context, s *server) (*target, error) {
	return &target{url: s.url + "/auth/me", check: jsonUser(aliceID, "")}, nil
}

func fiberSessionLogin(ctx context.Context, s *server) (*target, error) {
	status, h, body, err := do(ctx, "POST", s.url+"/login", nil, nil)
	if err != nil || status != http.StatusNoContent {
		return nil, fmt.Errorf("login: %d %q %v", status, body, err)
	}
	ck, err := cookieHeader(h, "session_id")
	if err != nil {
		return nil, err
	}
	return &target{url: s.url + "/auth/me", header: ck, check: jsonUser(aliceID, "session"), anon: true}, nil
}

func fiberJWTLogin(ctx context.Context, s *server) (*target, error) {
	status, _, body, err := do(ctx, "POST", s.url+"/login", nil, nil)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("login: %d %q %v", status, body, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return nil, fmt.Errorf("login answered no token: %q", body)
	}
	return &target{url: s.url + "/auth/me", header: http.Header{"Authorization": {"Bearer " + tok.AccessToken}},
		check: jsonUser(aliceID, "bearer"), anon: true}, nil
}

func expressLogin(ctx context.Context, s *server) (*target, error) {
	status, h, body, err := do(ctx, "POST", s.url+"/login", nil, nil)
	if err != nil || status != http.StatusNoContent {
		return nil, fmt.Errorf("login: %d %q %v", status, body, err)
	}
	ck, err := cookieHeader(h, "sid")
	if err != nil {
		return nil, err
	}
	return &target{url: s.url + "/auth/me", header: ck, check: jsonUser(aliceID, "session"), anon: true}, nil
}

// oauth2ProxyLogin walks the browser's OIDC authorization-code flow:
// /oauth2/start → mockoidc's authorize endpoint (which logs its default user
// in) → /oauth2/callback, which stores the session in Redis and sets the
// session cookie (a ticket: id and key of the encrypted Redis record).
func oauth2ProxyLogin(ctx context.Context, s *server) (*target, error) {
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/oauth2/start?rd=%2F", nil)
	res, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("login flow: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 { // the upstream static://202 after the last redirect
		return nil, fmt.Errorf("login flow ended with %d %.300q", res.StatusCode, body)
	}
	u, _ := url.Parse(s.url)
	var parts []string
	for _, c := range jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "_oauth2_proxy") && !strings.Contains(c.Name, "csrf") {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("login flow set no _oauth2_proxy cookie")
	}
	return &target{url: s.url + "/oauth2/auth", header: http.Header{"Cookie": {strings.Join(parts, "; ")}},
		check: headerUser(http.StatusAccepted, "X-Auth-Request-Email", oidcEmail, nil), anon: true}, nil
}

// tokenshiftLogin logs in as the development user through the client whose
// transport gives scheme: web (session cookie and bearer token) or spa
// (jwt_cookie).
func tokenshiftLogin(scheme, path string) func(context.Context, *server) (*target, error) {
	return func(ctx context.Context, s *server) (*target, error) {
		client := "web"
		if scheme == "jwt_cookie" {
			client = "spa"
		}
		status, h, body, err := do(ctx, "POST", s.url+"/auth/login", nil, map[string]string{"email": aliceEmail, "password": alicePass, "client_id": client})
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("login: %d %q %v", status, body, err)
		}
		var hdr http.Header
		switch scheme {
		case "session":
			hdr, err = cookieHeader(h, "ts_session", "__Host-ts_session")
		case "jwt_cookie":
			hdr, err = cookieHeader(h, "ts_access", "__Host-ts_access")
		case "bearer":
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err = json.Unmarshal(body, &tok); err == nil && tok.AccessToken == "" {
				err = fmt.Errorf("login answered no access_token: %q", body)
			}
			hdr = http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
		}
		if err != nil {
			return nil, err
		}
		t := &target{url: s.url + path, header: hdr, anon: true}
		if path == "/auth/verify" {
			t.check = headerUser(http.StatusOK, "X-Auth-User", aliceID, map[string]string{"X-Auth-Scheme": scheme})
		} else {
			t.check = jsonUser(aliceID, scheme)
		}
		return t, nil
	}
}

// tokenshiftLegacyLogin logs in through the Express peer (its own /login,
// its own cookie) and asks tokenshift with that cookie: forward-auth must
// name the Express user, and GET /auth/me once must name the legacy source,
// so an own tokenshift session cannot pass for a legacy one.
func tokenshiftLegacyLogin(ctx context.Context, s *server) (*target, error) {
	if s.app == nil {
		return nil, fmt.Errorf("tokenshift-legacy has no legacy app")
	}
	status, h, body, err := do(ctx, "POST", s.app.url+"/login", nil, nil)
	if err != nil || status != http.StatusNoContent {
		return nil, fmt.Errorf("express login: %d %q %v", status, body, err)
	}
	ck, err := cookieHeader(h, "sid")
	if err != nil {
		return nil, err
	}
	status, _, body, err = get(ctx, s.url+"/auth/me", ck)
	if err != nil {
		return nil, err
	}
	if err := jsonUser(aliceID, "session")(status, nil, body); err != nil {
		return nil, fmt.Errorf("%w: GET /auth/me with the Express cookie: %v (%.200q)", errBadStack, err, body)
	}
	var me struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal(body, &me); err != nil || me.Source != legacySourceName {
		return nil, fmt.Errorf("%w: GET /auth/me with the Express cookie names source %q, want %q", errBadStack, me.Source, legacySourceName)
	}
	return &target{url: s.url + "/auth/verify", header: ck, anon: true,
		check: headerUser(http.StatusOK, "X-Auth-User", aliceID, map[string]string{"X-Auth-Scheme": "session", "X-Auth-Client": "web"})}, nil
}
