package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	e2eSunset     = "2027-06-30T00:00:00Z"
	e2eSunsetHTTP = "Wed, 30 Jun 2027 00:00:00 GMT"
	e2eDocsLink   = `<http://localhost:8080/docs/migration>; rel="deprecation"; type="text/html"`
)

// TestPhaseBehaviour walks one instance through every phase (switched through
// the admin API) and checks, in each, what a login issues, which credential
// /auth/me accepts, whether the session can be exchanged, and the deprecation
// headers. The credentials under test come from one login made in dual, when
// every kind is issued.
func TestPhaseBehaviour(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_MIGRATION_SUNSET="+e2eSunset)
	op := newOperator(t, in)
	// The operator's own client stays in dual whatever the global phase.
	pinned := map[string]any{"mobile": map[string]string{"phase": "dual"}}
	op.mustPut(t, map[string]any{"clients": pinned, "reason": "pin the operator's client"})

	web := in.login(t, aliceEmail, alicePass, "web")
	session := web.cookie("ts_session")
	csrf, _ := web.json(t)["csrf_token"].(string)
	bearer, _ := web.json(t)["access_token"].(string)
	sid, _ := web.json(t)["sid"].(string)
	jwtCookie := in.login(t, aliceEmail, alicePass, "spa").cookie("ts_access")
	if session == nil || csrf == "" || bearer == "" || jwtCookie == nil {
		t.Fatalf("the dual logins did not give a session, a CSRF token, a bearer token and a JWT cookie")
	}

	type expect struct {
		status int
		code   string
	}
	ok := expect{status: 200}
	retired := expect{401, "session_retired"}
	refusedToken := expect{401, "invalid_token"}
	tests := []struct {
		name string
		set  map[string]any
		// What a login issues to web (token_transport body) and spa (cookie).
		webSession, webTokens, spaSession, spaCookies bool
		// /auth/me with each credential.
		session, bearer, jwtCookie expect
		headers                    bool   // deprecation headers on the session answer
		retiredDetail              string // in the session_retired detail
		exchange                   expect
	}{
		{name: "legacy", set: map[string]any{"phase": "legacy"},
			webSession: true, spaSession: true,
			session: ok, bearer: refusedToken, jwtCookie: refusedToken, exchange: expect{403, "not_allowed_in_phase"}},
		{name: "dual", set: map[string]any{"phase": "dual"},
			webSession: true, webTokens: true, spaSession: true, spaCookies: true,
			session: ok, bearer: ok, jwtCookie: ok, exchange: ok},
		{name: "prefer-jwt", set: map[string]any{"phase": "prefer-jwt"},
			webSession: true, webTokens: true, spaSession: true, spaCookies: true,
			session: ok, bearer: ok, jwtCookie: ok, headers: true, exchange: ok},
		{name: "retiring 0%", set: map[string]any{"phase": "retiring", "rollout": 0},
			webSession: true, webTokens: true, spaSession: true, spaCookies: true,
			session: ok, bearer: ok, jwtCookie: ok, headers: true, exchange: ok},
		{name: "retiring 100%", set: map[string]any{"phase": "retiring", "rollout": 100},
			webTokens: true, spaCookies: true,
			session: retired, bearer: ok, jwtCookie: ok, retiredDetail: "exchange the session for tokens with POST /auth/exchange", exchange: ok},
		{name: "retiring 100% with web exempt", set: map[string]any{"phase": "retiring", "rollout": 100, "exempt_clients": []string{"web"}},
			webSession: true, webTokens: true, spaCookies: true,
			session: ok, bearer: ok, jwtCookie: ok, headers: true, exchange: ok},
		{name: "jwt-only", set: map[string]any{"phase": "jwt-only", "rollout": 100, "exempt_clients": []string{"web"}},
			webTokens: true, spaCookies: true,
			session: retired, bearer: ok, jwtCookie: ok, retiredDetail: "log in again to receive tokens", exchange: retired},
	}
	var firstDeprecation string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"clients": pinned, "rollout": 0, "exempt_clients": []string{}, "force": true, "reason": "phase table: " + tt.name}
			for k, v := range tt.set {
				body[k] = v
			}
			state := op.mustPut(t, body)

			// Login.
			for _, l := range []struct {
				client         string
				session, token bool
			}{{"web", tt.webSession, tt.webTokens}, {"spa", tt.spaSession, tt.spaCookies}} {
				lr := in.login(t, aliceEmail, alicePass, l.client)
				got := lr.json(t)
				hasSession := lr.cookie("ts_session") != nil
				hasToken := got["access_token"] != nil
				if l.client == "spa" {
					hasToken = lr.cookie("ts_access") != nil && got["access_token"] == nil
				}
				if hasSession != l.session || hasToken != l.token || got["session"] != l.session {
					t.Errorf("%s login: session cookie %v (body %v), tokens %v; want session %v, tokens %v",
						l.client, hasSession, got["session"], hasToken, l.session, l.token)
				}
			}

			// /auth/me with each scheme.
			check := func(scheme string, r req, want expect) *resp {
				t.Helper()
				got := in.do(t, r)
				if want.code != "" {
					expectProblem(t, got, want.status, want.code)
				} else if got.status != want.status || got.json(t)["scheme"] != scheme {
					t.Errorf("/auth/me with %s: %d %s, want %d as %s", scheme, got.status, got.body, want.status, scheme)
				}
				if scheme != "session" && (got.header.Get("Deprecation") != "" || got.header.Get("Sunset") != "") {
					t.Errorf("a %s answer carries deprecation headers", scheme)
				}
				return got
			}
			s := check("session", req{path: "/auth/me", cookies: []*http.Cookie{session}}, tt.session)
			check("bearer", req{path: "/auth/me", bearer: bearer}, tt.bearer)
			check("jwt_cookie", req{path: "/auth/me", cookies: []*http.Cookie{jwtCookie}}, tt.jwtCookie)

			if tt.retiredDetail != "" {
				if d, _ := s.json(t)["detail"].(string); !strings.Contains(d, tt.retiredDetail) {
					t.Errorf("session_retired detail = %q, want it to say %q", d, tt.retiredDetail)
				}
				if tt.exchange.status != 200 && strings.Contains(s.json(t)["detail"].(string), "exchange") {
					t.Errorf("the detail offers an exchange the phase refuses: %s", s.body)
				}
			}

			// Headers: RFC 9745 Deprecation as @<unix> of this client's
			// date, RFC 8594 Sunset as an HTTP-date, Link rel="deprecation".
			dep, sun, link := s.header.Get("Deprecation"), s.header.Get("Sunset"), s.header.Values("Link")
			if tt.headers {
				if !regexp.MustCompile(`^@\d+$`).MatchString(dep) || dep != deprecationOf(t, state, "web") {
					t.Errorf("Deprecation = %q, want @<unix> of web's date %q", dep, deprecationOf(t, state, "web"))
				}
				if sun != e2eSunsetHTTP {
					t.Errorf("Sunset = %q, want %q", sun, e2eSunsetHTTP)
				}
				if len(link) != 1 || link[0] != e2eDocsLink {
					t.Errorf("Link = %q, want %q", link, e2eDocsLink)
				}
				// The date stays the one of the first move into prefer-jwt.
				if firstDeprecation == "" {
					firstDeprecation = dep
				} else if dep != firstDeprecation {
					t.Errorf("Deprecation moved from %s to %s while sessions stayed deprecated", firstDeprecation, dep)
				}
			} else if dep != "" || sun != "" || len(link) != 0 {
				t.Errorf("unexpected deprecation headers: Deprecation %q, Sunset %q, Link %q", dep, sun, link)
			}

			// Exchange: a cookie-authenticated unsafe request, so CSRF first.
			if tt.exchange.status == 200 {
				noCSRF := in.do(t, req{method: "POST", path: "/auth/exchange", cookies: []*http.Cookie{session}})
				expectProblem(t, noCSRF, 403, "csrf_failed")
			}
			ex := in.do(t, req{method: "POST", path: "/auth/exchange", cookies: []*http.Cookie{session}, header: map[string]string{"X-CSRF-Token": csrf}})
			if tt.exchange.code != "" {
				expectProblem(t, ex, tt.exchange.status, tt.exchange.code)
			} else {
				got := ex.json(t)
				at, _ := got["access_token"].(string)
				if ex.status != 200 || at == "" || got["sid"] != sid {
					t.Fatalf("exchange: %d %s, want tokens bound to sid %s", ex.status, ex.body, sid)
				}
				if me := in.do(t, req{path: "/auth/me", bearer: at}); me.status != 200 || me.json(t)["sid"] != sid {
					t.Errorf("the exchanged token: %d %s", me.status, me.body)
				}
			}
		})
	}

	// The Link target exists: the guide for client developers, with the
	// sunset date from the current state.
	docs := in.do(t, req{path: "/docs/migration"})
	if docs.status != 200 || !strings.HasPrefix(docs.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(docs.body), e2eSunsetHTTP) || !strings.Contains(docs.header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("GET /docs/migration: %d %q CSP %q", docs.status, docs.header.Get("Content-Type"), docs.header.Get("Content-Security-Policy"))
	}
}

// deprecationOf is the Deprecation value a client's session answers should
// carry according to the flags: its own date, else the global one.
func deprecationOf(t *testing.T, state map[string]any, client string) string {
	t.Helper()
	raw, _ := state["deprecated_at"].(string)
	if per, ok := state["clients_deprecated_at"].(map[string]any); ok {
		if v, ok := per[client].(string); ok {
			raw = v
		}
	}
	ts, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		t.Fatalf("flags carry no deprecation date for %s: %v", client, state)
	}
	return "@" + strconv.FormatInt(ts.Unix(), 10)
}
