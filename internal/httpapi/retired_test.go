package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/token"
)

// phaseControl is the real flag Manager (memory backend) behind a dev
// server, so tests move phases forward and roll them back as operators do.
type phaseControl struct {
	m *featureflags.Manager
}

func withPhaseControl(tb testing.TB, start featureflags.Phase) (devOption, *phaseControl) {
	tb.Helper()
	m, err := featureflags.NewManager(context.Background(), featureflags.Options{
		Initial:      featureflags.State{Phase: start, RolloutSeed: "test"},
		KnownClients: []string{"web", "spa", "mobile"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return func(o *testOptions, _ *token.Options) { o.Flags = m.Flags() }, &phaseControl{m: m}
}

func (pc *phaseControl) set(tb testing.TB, phase featureflags.Phase, rollout float64) {
	tb.Helper()
	cur := pc.m.Flags().Current()
	_, err := pc.m.Apply(context.Background(), featureflags.Change{
		Expect: cur.Version, Actor: "test", Reason: "test", Force: true,
		Edit: func(s *featureflags.State) error { s.Phase, s.Rollout = phase, rollout; return nil },
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func (pc *phaseControl) rollback(tb testing.TB) {
	tb.Helper()
	if _, err := pc.m.Rollback(context.Background(), "test", "test"); err != nil {
		tb.Fatal(err)
	}
}

// withSessionClock replaces the session manager by one on clk (idle timeout
// 30m, touch interval 1m).
func withSessionClock(tb testing.TB, clk *fakeclock.Clock) devOption {
	return func(o *testOptions, _ *token.Options) {
		m, err := session.New(o.Store, session.Options{IdleTimeout: 30 * time.Minute, TouchInterval: time.Minute, Clock: clk.Now})
		if err != nil {
			tb.Fatal(err)
		}
		o.Sessions = m
	}
}

// cleared reports whether the answer expires the cookie name.
func cleared(a *answer, name string) bool {
	c := a.cookie[name]
	return c != nil && c.Value == "" && (c.MaxAge < 0 || c.Expires.Before(time.Now()))
}

// TestRetiredSessionCanEndItself: in retiring and jwt-only a session cookie
// is refused for ordinary use, but it must still be able to log out and to
// list and end the caller's logins; otherwise the login stays live and comes
// back with a rollback.
func TestRetiredSessionCanEndItself(t *testing.T) {
	for _, tc := range []struct {
		name    string
		phase   featureflags.Phase
		rollout float64
		end     func(s *devServer, cookie map[string]string, csrf, sid string) *answer
	}{
		{name: "logout in jwt-only", phase: featureflags.PhaseJWTOnly, end: func(s *devServer, cookie map[string]string, csrf, _ string) *answer {
			return s.do(t, call{method: "POST", path: "/auth/logout", cookies: cookie, header: map[string]string{HeaderCSRF: csrf}})
		}},
		{name: "logout in retiring", phase: featureflags.PhaseRetiring, rollout: 100, end: func(s *devServer, cookie map[string]string, csrf, _ string) *answer {
			return s.do(t, call{method: "POST", path: "/auth/logout", cookies: cookie, header: map[string]string{HeaderCSRF: csrf}})
		}},
		{name: "DELETE /auth/sessions/:sid in jwt-only", phase: featureflags.PhaseJWTOnly, end: func(s *devServer, cookie map[string]string, csrf, sid string) *answer {
			return s.do(t, call{method: "DELETE", path: "/auth/sessions/" + sid, cookies: cookie, header: map[string]string{HeaderCSRF: csrf}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt, pc := withPhaseControl(t, featureflags.PhaseLegacy)
			s := newDevServer(t, opt)
			s.loginJSON(t, aliceEmail, alicePassword, "web") // another login of alice, listed too
			a := s.loginJSON(t, aliceEmail, alicePassword, "web")
			m := a.json(t)
			cookie := map[string]string{"ts_session": a.cookie["ts_session"].Value}
			csrf, sid := m["csrf_token"].(string), m["sid"].(string)

			pc.set(t, tc.phase, tc.rollout)
			expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeSessionRetired)

			// Listing its logins works with the retired cookie.
			list := s.do(t, call{path: "/auth/sessions", cookies: cookie})
			if list.status != 200 || len(list.json(t)["sessions"].([]any)) != 2 {
				t.Fatalf("GET /auth/sessions with a retired session: %d %s", list.status, list.body)
			}
			// CSRF still applies.
			expectProblem(t, s.do(t, call{method: "POST", path: "/auth/logout", cookies: cookie}), 403, auth.CodeCSRF)

			out := tc.end(s, cookie, csrf, sid)
			if out.status != 204 || !cleared(out, "ts_session") {
				t.Fatalf("ending a retired session: %d %s, cookies %v", out.status, out.body, out.cookie)
			}
			pc.rollback(t)
			expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeInvalidSession)
		})
	}
}

// TestRefusedRequestsDoNotKeepASessionAlive: requests a phase refuses must
// not move the session's idle deadline, or a client hammering with a retired
// cookie would keep the login alive until a rollback revives it.
func TestRefusedRequestsDoNotKeepASessionAlive(t *testing.T) {
	clk := fakeclock.New(time.Now())
	opt, pc := withPhaseControl(t, featureflags.PhaseDual)
	s := newDevServer(t, opt, withSessionClock(t, clk))
	a := s.loginJSON(t, aliceEmail, alicePassword, "web")
	cookie := map[string]string{"ts_session": a.cookie["ts_session"].Value}
	// Accepted use moves the deadline: 20 + 20 minutes with a use between
	// outlive the 30-minute idle timeout.
	clk.Advance(20 * time.Minute)
	if r := s.do(t, call{path: "/auth/me", cookies: cookie}); r.status != 200 {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	clk.Advance(20 * time.Minute)
	if r := s.do(t, call{path: "/auth/me", cookies: cookie}); r.status != 200 {
		t.Fatalf("an accepted use did not move the idle deadline: %d %s", r.status, r.body)
	}

	pc.set(t, featureflags.PhaseJWTOnly, 0)
	for range 25 {
		clk.Advance(time.Minute)
		expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeSessionRetired)
		// Listing is admitted (to let the session end itself) but is no use.
		if r := s.do(t, call{path: "/auth/sessions", cookies: cookie}); r.status != 200 {
			t.Fatalf("sessions: %d %s", r.status, r.body)
		}
	}
	clk.Advance(6 * time.Minute)
	pc.rollback(t)
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeInvalidSession)
}

// TestRetiredSessionGetsItsCSRFTokenForExchange: in retiring, GET /auth/csrf
// gives a retired session its own token (not a pre-session one), which is
// what POST /auth/exchange needs; where no exchange is offered (jwt-only),
// the caller is treated as anonymous.
func TestRetiredSessionGetsItsCSRFTokenForExchange(t *testing.T) {
	opt, pc := withPhaseControl(t, featureflags.PhaseDual)
	s := newDevServer(t, opt)
	a := s.loginJSON(t, aliceEmail, alicePassword, "web")
	m := a.json(t)
	cookie := map[string]string{"ts_session": a.cookie["ts_session"].Value}

	pc.set(t, featureflags.PhaseRetiring, 100)
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeSessionRetired)
	c := s.do(t, call{path: "/auth/csrf", cookies: cookie})
	got := c.json(t)
	if c.status != 200 || got["pre_session"] != nil || got["csrf_token"] != m["csrf_token"] {
		t.Fatalf("GET /auth/csrf with a retired session: %d %s; want the login's token %v", c.status, c.body, m["csrf_token"])
	}
	ex := s.do(t, call{method: "POST", path: "/auth/exchange", cookies: cookie, header: map[string]string{HeaderCSRF: got["csrf_token"].(string)}})
	if ex.status != 200 || ex.json(t)["sid"] != m["sid"] || ex.json(t)["access_token"] == nil {
		t.Fatalf("exchange with that token: %d %s", ex.status, ex.body)
	}

	pc.set(t, featureflags.PhaseJWTOnly, 0)
	c = s.do(t, call{path: "/auth/csrf", cookies: cookie})
	if c.status != 200 || c.json(t)["pre_session"] != true {
		t.Fatalf("GET /auth/csrf in jwt-only: %d %s; want a pre-session token", c.status, c.body)
	}
}

// TestExchangeRegistersTheTokenFamily: a session from a phase that issued no
// tokens gets its family at exchange, so the login lists with tokens, outlives
// the cookie's idle timeout while its refresh chain lives, and stays
// revocable by sid.
func TestExchangeRegistersTheTokenFamily(t *testing.T) {
	clk := fakeclock.New(time.Now())
	opt, pc := withPhaseControl(t, featureflags.PhaseLegacy)
	s := newDevServer(t, opt, withSessionClock(t, clk))
	a := s.loginJSON(t, aliceEmail, alicePassword, "web")
	m := a.json(t)
	if m["access_token"] != nil {
		t.Fatalf("legacy login issued tokens: %s", a.body)
	}
	cookie := map[string]string{"ts_session": a.cookie["ts_session"].Value}
	pc.set(t, featureflags.PhasePreferJWT, 0)
	ex := s.do(t, call{method: "POST", path: "/auth/exchange", cookies: cookie, header: map[string]string{HeaderCSRF: m["csrf_token"].(string)}})
	if ex.status != 200 {
		t.Fatalf("exchange: %d %s", ex.status, ex.body)
	}
	tokens := ex.json(t)
	access, rt := tokens["access_token"].(string), tokens["refresh_token"].(string)

	list := s.do(t, call{path: "/auth/sessions", bearer: access})
	sessions := list.json(t)["sessions"].([]any)
	if len(sessions) != 1 || sessions[0].(map[string]any)["tokens"] != true {
		t.Fatalf("after exchange the login lists %s; want tokens:true", list.body)
	}

	// The cookie times out; the login lives on for its tokens.
	clk.Advance(31 * time.Minute)
	expectProblem(t, s.do(t, call{path: "/auth/me", cookies: cookie}), 401, auth.CodeInvalidSession)
	r := s.do(t, call{method: "POST", path: "/auth/refresh", ctype: "application/json", body: `{"refresh_token":"` + rt + `"}`})
	if r.status != 200 {
		t.Fatalf("refresh after the cookie timed out: %d %s", r.status, r.body)
	}
	rt = r.json(t)["refresh_token"].(string)
	access = r.json(t)["access_token"].(string)
	if l := s.do(t, call{path: "/auth/sessions", bearer: access}); len(l.json(t)["sessions"].([]any)) != 1 {
		t.Fatalf("the exchanged login is not listed: %s", l.body)
	}
	// Revocable by sid, like any login.
	if d := s.do(t, call{method: "DELETE", path: "/auth/sessions/" + m["sid"].(string), bearer: access}); d.status != 204 {
		t.Fatalf("DELETE own login: %d %s", d.status, d.body)
	}
	expectProblem(t, s.do(t, call{method: "POST", path: "/auth/refresh", ctype: "application/json", body: `{"refresh_token":"` + rt + `"}`}), 401, auth.CodeInvalidToken)
}

// TestRefreshRefusedWhenTheLoginIsGone: a refresh token whose login record
// has disappeared (a family that escaped the registry) is refused and its
// family revoked: it could no longer be listed or revoked by sid. The
// refresh state lives in the login's own hash, so what can escape is that
// state without the session's record (a refresh racing a logout writes
// one); a login hash deleted whole takes its refresh token with it.
func TestRefreshRefusedWhenTheLoginIsGone(t *testing.T) {
	s := newDevServer(t)
	m := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)
	rt, access, sid := m["refresh_token"].(string), m["access_token"].(string), m["sid"].(string)
	// Every field but the refresh token's state and the identity it needs.
	h, err := s.store.HGetAll(context.Background(), store.LoginKey(sid))
	if err != nil {
		t.Fatal(err)
	}
	for f := range h {
		if f != "t" && !strings.HasPrefix(f, "a") {
			if err := s.store.HDel(context.Background(), store.LoginKey(sid), f); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := s.do(t, call{method: "POST", path: "/auth/refresh", ctype: "application/json", body: `{"refresh_token":"` + rt + `"}`})
	expectProblem(t, r, 401, auth.CodeInvalidToken)
	expectProblem(t, s.do(t, call{path: "/auth/me", bearer: access}), 401, auth.CodeInvalidToken)
}
