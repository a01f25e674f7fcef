package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/legacyapps"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// Issue 12's flows that write: exchange, logout, log-out-everywhere and the
// whole migration of an Express app, each against the real binary, a real
// Express app (express-session + connect-redis) and real redis-servers.

// shopSource is legacy.sources entry "shop" for an Express app on redisURL
// signing with secret; extra lines (indented six spaces) are appended.
func shopSource(redisURL, secret, extra string) string {
	return `    - name: shop
      kind: express
      client: web
      cookie: connect.sid
      user_id: userId
      secrets: [` + secret + `]
      redis_url: ` + redisURL + `
      key_prefix: "sess:"
` + extra
}

// expressKey is the connect-redis key of an express-session cookie
// ("s%3A<id>.<signature>").
func expressKey(t *testing.T, c *http.Cookie) string {
	t.Helper()
	v, err := url.QueryUnescape(c.Value)
	if err != nil || !strings.HasPrefix(v, "s:") || strings.LastIndexByte(v, '.') < 3 {
		t.Fatalf("not an express-session cookie: %q", c.Value)
	}
	return "sess:" + v[2:strings.LastIndexByte(v, '.')]
}

func keyExists(t *testing.T, rc *redis.Client, key string) bool {
	t.Helper()
	n, err := rc.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// legacyCSRF is the CSRF token GET /auth/csrf gives the legacy session of c
// (bound to it, not a pre-session token).
func legacyCSRF(t *testing.T, in *instance, c *http.Cookie) string {
	t.Helper()
	r := in.do(t, req{path: "/auth/csrf", cookies: []*http.Cookie{c}})
	if r.status != 200 {
		t.Fatalf("GET /auth/csrf with the legacy cookie: %d %s", r.status, r.body)
	}
	m := r.json(t)
	tok, _ := m["csrf_token"].(string)
	if tok == "" || m["pre_session"] == true {
		t.Fatalf("GET /auth/csrf with the legacy cookie gave no token of the session: %s", r.body)
	}
	return tok
}

// legacyPost sends a cookie-authenticated POST as a same-origin browser page
// would: the legacy cookie, the CSRF token (when not empty) and Origin.
func legacyPost(t *testing.T, in *instance, path string, c *http.Cookie, csrf, origin string) *resp {
	t.Helper()
	h := map[string]string{"Origin": origin}
	if csrf != "" {
		h["X-CSRF-Token"] = csrf
	}
	return in.do(t, req{method: "POST", path: path, cookies: []*http.Cookie{c}, header: h})
}

// exchanged checks an exchange answer: a token pair for user through web,
// and the tokenshift session cookie when wantSession.
type exchangedLogin struct {
	sid, access, refresh string
	session              *http.Cookie
}

func expectExchanged(t *testing.T, in *instance, r *resp, user string, wantSession bool) exchangedLogin {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("POST /auth/exchange: %d %s\n%s", r.status, r.body, in.logs.String())
	}
	m := r.json(t)
	x := exchangedLogin{session: r.cookie("ts_session")}
	x.sid, _ = m["sid"].(string)
	x.access, _ = m["access_token"].(string)
	x.refresh, _ = m["refresh_token"].(string)
	if m["user_id"] != user || m["client_id"] != "web" || x.sid == "" || x.access == "" || x.refresh == "" {
		t.Fatalf("exchange answer = %s, want a token pair and a login of %s through web", r.body, user)
	}
	if (x.session != nil) != wantSession || m["session"] != wantSession {
		t.Fatalf("exchange answer: session cookie %v, \"session\" %v, want %v (body %s)", x.session, m["session"], wantSession, r.body)
	}
	if wantSession && m["csrf_token"] == nil {
		t.Fatalf("exchange answer sets a session cookie without its CSRF token: %s", r.body)
	}
	// The tokens are the user's, of web, and not a legacy session.
	me := in.do(t, req{path: "/auth/me", bearer: x.access})
	if mm := me.json(t); me.status != 200 || mm["user_id"] != user || mm["client_id"] != "web" || mm["scheme"] != "bearer" || mm["source"] != nil {
		t.Fatalf("GET /auth/me with the exchanged token: %d %s", me.status, me.body)
	}
	if wantSession {
		me := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{x.session}})
		if mm := me.json(t); me.status != 200 || mm["user_id"] != user || mm["scheme"] != "session" || mm["source"] != nil {
			t.Fatalf("GET /auth/me with the exchanged session: %d %s", me.status, me.body)
		}
	}
	return x
}

// listedLogins are the sids GET /auth/sessions lists for the bearer's user.
func listedLogins(t *testing.T, in *instance, bearer string) map[string]map[string]any {
	t.Helper()
	r := in.do(t, req{path: "/auth/sessions", bearer: bearer})
	if r.status != 200 {
		t.Fatalf("GET /auth/sessions: %d %s", r.status, r.body)
	}
	out := map[string]map[string]any{}
	list, _ := r.json(t)["sessions"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		sid, _ := m["sid"].(string)
		out[sid] = m
	}
	return out
}

func expectExpress(t *testing.T, app *legacyapps.App, c *http.Cookie, wantStatus int, what string) {
	t.Helper()
	if st, _ := app.Me(t, c); st != wantStatus {
		t.Fatalf("%s: the Express app's /me answers %d, want %d", what, st, wantStatus)
	}
}

// TestLegacyExchange: a user logged in through Express's own /login gets a
// CSRF token for that session from GET /auth/csrf and exchanges it, from
// the same origin, for a login of tokenshift's own (a token pair, and in
// dual a tokenshift session) for the same user and client, listed in GET
// /auth/sessions. With on_exchange keep the Express session lives on; with
// end it is gone from Redis, and both the Express app and tokenshift refuse
// it. A foreign Origin, no CSRF token, a wrong one, and the token of
// another session are refused, and make no login.
func TestLegacyExchange(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	users := map[string]string{"u-alice": "alice-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"xchg-secret"}, Users: users, MaxAge: time.Hour})
	keep := start(t, "TOKENSHIFT_CONFIG="+legacyConfig(t, shopSource(rs.URL(), "xchg-secret", "")))
	end := start(t, "TOKENSHIFT_CONFIG="+legacyConfig(t, shopSource(rs.URL(), "xchg-secret", "      on_exchange: end\n")))

	// Refusals first, on a session that must survive them all.
	alice := shop.Login(t, "u-alice", users["u-alice"])
	csrf := legacyCSRF(t, keep, alice)
	other := legacyCSRF(t, keep, shop.Login(t, "u-alice", users["u-alice"]))
	own, ownCSRF := webSession(t, keep)
	_ = own
	for _, tc := range []struct {
		name, csrf, origin string
	}{
		{name: "foreign origin", csrf: csrf, origin: "https://evil.example"},
		{name: "null origin", csrf: csrf, origin: "null"},
		{name: "no CSRF token", csrf: "", origin: keep.URL},
		{name: "wrong CSRF token", csrf: "not-the-token", origin: keep.URL},
		{name: "another legacy session's token", csrf: other, origin: keep.URL},
		{name: "an own session's token", csrf: ownCSRF, origin: keep.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, legacyPost(t, keep, "/auth/exchange", alice, tc.csrf, tc.origin), 403, "csrf_failed")
		})
	}
	expectExpress(t, shop, alice, 200, "after the refused exchanges")

	// keep: a login of tokenshift's own, and the Express session lives on.
	x := expectExchanged(t, keep, legacyPost(t, keep, "/auth/exchange", alice, csrf, keep.URL), "u-alice", true)
	listed := listedLogins(t, keep, x.access)
	if l, ok := listed[x.sid]; !ok || l["client_id"] != "web" {
		t.Fatalf("GET /auth/sessions = %v, want the exchanged login %s of web", listed, x.sid)
	}
	if len(listed) != 2 { // the exchanged login and the web login above
		t.Fatalf("GET /auth/sessions lists %d logins, want 2: %v", len(listed), listed)
	}
	expectExpress(t, shop, alice, 200, "on_exchange keep")
	expectLegacyUser(t, legacyMe(t, keep, alice), "u-alice", "shop")

	// end: the Express session is deleted; nobody accepts the cookie.
	bob := shop.Login(t, "u-alice", users["u-alice"])
	key := expressKey(t, bob)
	expectLegacyUser(t, legacyMe(t, end, bob), "u-alice", "shop")
	y := expectExchanged(t, end, legacyPost(t, end, "/auth/exchange", bob, legacyCSRF(t, end, bob), end.URL), "u-alice", true)
	if _, ok := listedLogins(t, end, y.access)[y.sid]; !ok {
		t.Fatalf("the exchanged login %s is not listed", y.sid)
	}
	if keyExists(t, rc, key) {
		t.Fatalf("on_exchange end left %s in the Express app's Redis", key)
	}
	expectExpress(t, shop, bob, 401, "on_exchange end")
	expectProblem(t, legacyMe(t, end, bob), 401, "invalid_session")
	expectProblem(t, legacyMe(t, keep, bob), 401, "invalid_session")
	// A second exchange of the ended session makes nothing.
	expectProblem(t, legacyPost(t, end, "/auth/exchange", bob, legacyCSRF(t, keep, alice), end.URL), 401, "invalid_session")
}

// TestLegacyLogoutEndsExpressSession: POST /auth/logout through tokenshift
// with the legacy cookie and the CSRF token from GET /auth/csrf deletes the
// session from the Express app's Redis, so Express's own /me refuses the
// cookie, and so does tokenshift. Without the CSRF token the logout is
// refused and ends nothing.
func TestLegacyLogoutEndsExpressSession(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	users := map[string]string{"u-alice": "alice-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"bye-secret"}, Users: users, MaxAge: time.Hour})
	in := start(t, "TOKENSHIFT_CONFIG="+legacyConfig(t, shopSource(rs.URL(), "bye-secret", "")))

	alice := shop.Login(t, "u-alice", users["u-alice"])
	other := shop.Login(t, "u-alice", users["u-alice"])
	key := expressKey(t, alice)
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")
	csrf := legacyCSRF(t, in, alice)

	expectProblem(t, legacyPost(t, in, "/auth/logout", alice, "", in.URL), 403, "csrf_failed")
	expectProblem(t, legacyPost(t, in, "/auth/logout", alice, csrf, "https://evil.example"), 403, "csrf_failed")
	if !keyExists(t, rc, key) {
		t.Fatal("a refused logout deleted the Express session")
	}
	expectExpress(t, shop, alice, 200, "after the refused logouts")

	if r := legacyPost(t, in, "/auth/logout", alice, csrf, in.URL); r.status != 204 {
		t.Fatalf("POST /auth/logout with the legacy cookie: %d %s", r.status, r.body)
	}
	if keyExists(t, rc, key) {
		t.Fatalf("the logout left %s in the Express app's Redis", key)
	}
	expectExpress(t, shop, alice, 401, "after the logout through tokenshift")
	expectProblem(t, legacyMe(t, in, alice), 401, "invalid_session")
	// Only that session: the user's other Express session is untouched.
	expectExpress(t, shop, other, 200, "the user's other session")
	expectLegacyUser(t, legacyMe(t, in, other), "u-alice", "shop")

	// ?all=true with a legacy cookie: every login of the user, the
	// tokenshift ones and every legacy session tokenshift has seen.
	third := shop.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, third), "u-alice", "shop")
	bearer, _ := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	if r := legacyPost(t, in, "/auth/logout?all=true", other, legacyCSRF(t, in, other), in.URL); r.status != 204 {
		t.Fatalf("POST /auth/logout?all=true with the legacy cookie: %d %s", r.status, r.body)
	}
	for _, c := range []*http.Cookie{other, third} {
		expectExpress(t, shop, c, 401, "after the logout everywhere through tokenshift")
		expectProblem(t, legacyMe(t, in, c), 401, "invalid_session")
	}
	if r := in.do(t, req{path: "/auth/me", bearer: bearer}); r.status != 401 {
		t.Fatalf("the user's own token after the logout everywhere: %d %s", r.status, r.body)
	}

	// A browser that exchanged its Express session (on_exchange keep)
	// holds both cookies; it logs out with the tokenshift session's CSRF
	// token. Both sessions end: otherwise the Express cookie, still sent,
	// would keep the user logged in after the logout.
	browser := shop.Login(t, "u-alice", users["u-alice"])
	xr := legacyPost(t, in, "/auth/exchange", browser, legacyCSRF(t, in, browser), in.URL)
	x := expectExchanged(t, in, xr, "u-alice", true)
	xcsrf, _ := xr.json(t)["csrf_token"].(string)
	both := []*http.Cookie{browser, x.session}
	if r := in.do(t, req{path: "/auth/me", cookies: both}); r.status != 200 {
		t.Fatalf("GET /auth/me with both cookies: %d %s", r.status, r.body)
	}
	if r := in.do(t, req{method: "POST", path: "/auth/logout", cookies: both, header: map[string]string{"Origin": in.URL, "X-CSRF-Token": xcsrf}}); r.status != 204 {
		t.Fatalf("POST /auth/logout with both cookies: %d %s", r.status, r.body)
	}
	expectProblem(t, legacyMe(t, in, x.session), 401, "invalid_session")
	expectExpress(t, shop, browser, 401, "after the logout with both cookies")
	expectProblem(t, legacyMe(t, in, browser), 401, "invalid_session")
	if r := in.do(t, req{path: "/auth/me", cookies: both}); r.status != 401 {
		t.Fatalf("GET /auth/me with both cookies after the logout: %d %s", r.status, r.body)
	}
}

// TestLegacyRevocationEndsEverywhere: two instances on one tokenshift Redis,
// in front of one Express app. The user has two Express sessions, each
// used once through tokenshift (one per instance), so both are in the seen
// index. Logging out everywhere, changing the password or a suspension on
// instance A ends both: within 100 ms instance B and the Express app
// itself refuse both cookies. A new Express login afterwards works through
// tokenshift.
func TestLegacyRevocationEndsEverywhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, a *instance, bearer, admin string)
	}{
		{name: "logout everywhere", revoke: func(t *testing.T, a *instance, bearer, _ string) {
			if r := a.do(t, req{method: "POST", path: "/auth/logout?all=true", bearer: bearer}); r.status != 204 {
				t.Fatalf("POST /auth/logout?all=true: %d %s", r.status, r.body)
			}
		}},
		{name: "password change", revoke: func(t *testing.T, a *instance, bearer, _ string) {
			r := a.do(t, req{method: "POST", path: "/auth/password", bearer: bearer,
				json: map[string]string{"current_password": alicePass, "new_password": "alice-new-legacy-password"}})
			if r.status/100 != 2 {
				t.Fatalf("POST /auth/password: %d %s", r.status, r.body)
			}
		}},
		{name: "admin suspend", revoke: func(t *testing.T, a *instance, _, admin string) {
			r := a.do(t, req{method: "POST", path: "/admin/users/u-alice/suspend", bearer: admin, json: map[string]string{"reason": "legacy e2e"}})
			if r.status != 200 {
				t.Fatalf("suspend: %d %s", r.status, r.body)
			}
			if r := a.do(t, req{method: "DELETE", path: "/admin/users/u-alice/suspend", bearer: admin}); r.status != 200 {
				t.Fatalf("unsuspend: %d %s", r.status, r.body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := redistest.Start(t)
			rs := redistest.Start(t)
			users := map[string]string{"u-alice": "alice-legacy-pw"}
			shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"everywhere"}, Users: users, MaxAge: time.Hour})
			env := []string{
				"TOKENSHIFT_CONFIG=" + legacyConfig(t, shopSource(rs.URL(), "everywhere", "")),
				"TOKENSHIFT_STORAGE_REDIS_URL=" + store.URL(),
				"TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t),
			}
			a, b := start(t, env...), start(t, env...)

			one := shop.Login(t, "u-alice", users["u-alice"])
			two := shop.Login(t, "u-alice", users["u-alice"])
			expectLegacyUser(t, legacyMe(t, a, one), "u-alice", "shop")
			expectLegacyUser(t, legacyMe(t, b, two), "u-alice", "shop")
			// A third session tokenshift never saw: not in the index, so
			// only the user's not-before (the session's save time) ends it.
			unseen := shop.Login(t, "u-alice", users["u-alice"])
			bearer, _ := a.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
			admin := newOperator(t, a).token
			// The user's not-before has whole-second precision: the
			// sessions above must be saved in an earlier second than it.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

			began := time.Now()
			tc.revoke(t, a, bearer, admin)
			acked := time.Now()
			for {
				refusedB := legacyMe(t, b, one).status == 401 && legacyMe(t, b, two).status == 401
				st1, _ := shop.Me(t, one)
				st2, _ := shop.Me(t, two)
				if refusedB && st1 == 401 && st2 == 401 {
					break
				}
				if since := time.Since(acked); since > 100*time.Millisecond {
					t.Fatalf("%v after the revocation on A answered: B refuses both %v, Express answers %d and %d; want all refused within 100ms", since, refusedB, st1, st2)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("both legacy sessions refused on B and by Express %v after the revocation on A answered (%v after it was sent)",
				time.Since(acked).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
			expectProblem(t, legacyMe(t, b, one), 401, "invalid_session")
			expectProblem(t, legacyMe(t, a, two), 401, "invalid_session")
			expectProblem(t, legacyMe(t, b, unseen), 401, "invalid_session")
			expectProblem(t, legacyMe(t, a, unseen), 401, "invalid_session")
			// Both seen sessions are gone from the index with the Express keys.
			sc := redis.NewClient(&redis.Options{Addr: store.Addr()})
			defer sc.Close()
			if n, err := sc.HLen(context.Background(), "ts:lseen:u-alice").Result(); err != nil || n != 0 {
				t.Fatalf("seen index after the revocation: %d entries (%v), want none", n, err)
			}

			// A new Express login works through tokenshift, on both (the
			// user's not-before has whole-second precision: the next second).
			deadline := time.Now().Add(3 * time.Second)
			for {
				fresh := shop.Login(t, "u-alice", users["u-alice"])
				ra, rb := legacyMe(t, a, fresh), legacyMe(t, b, fresh)
				if ra.status == 200 && rb.status == 200 {
					expectLegacyUser(t, ra, "u-alice", "shop")
					expectLegacyUser(t, rb, "u-alice", "shop")
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a new Express login after the revocation: A %d %s, B %d %s", ra.status, ra.body, rb.status, rb.body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// migrationUsers is a users file with the dev users and bob, so the
// migration has two legacy users. bob shares alice's dev password hash.
func migrationUsers(t *testing.T) string {
	t.Helper()
	const aliceHash = "$2a$10$Rm4VZCINn23lJsays7S9gO4bSzrZwM2scuGam4hahHZsziKtKoNEe"
	path := filepath.Join(t.TempDir(), "users.yaml")
	yaml := `users:
  - {id: u-alice, email: alice@example.com, password_hash: "` + aliceHash + `", roles: [user]}
  - {id: u-bob, email: bob@example.com, password_hash: "` + aliceHash + `", roles: [user]}
  - {id: u-ops, email: ops@example.com, password_hash: "$2a$10$iQnBxg9qQHeqTb80d17Cy.IMfp.QaOYFG8g2NVVrK2wgbtZcw0h2q", roles: [admin]}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// webUsage is client web's row and source shop of a report.
func webUsage(t *testing.T, rep *usage.Report) (usage.ClientUsage, usage.SourceUsage) {
	t.Helper()
	for _, cu := range rep.Clients {
		if cu.ClientID == "web" {
			return cu, rep.Sources["shop"]
		}
	}
	t.Fatalf("no web row in the usage report: %+v", rep.Clients)
	return usage.ClientUsage{}, usage.SourceUsage{}
}

// migrationStep is what the usage report says of client web and source
// shop at one step of the migration.
type migrationStep struct {
	name                        string
	sessions, bearer, sourceReq int64
	users                       int64
}

func expectMigrationUsage(t *testing.T, in *instance, token string, want migrationStep) *usage.Report {
	t.Helper()
	rep := readReport(t, in, token, "window=1h")
	web, shop := webUsage(t, rep)
	sess, bear := web.Schemes["session"], web.Schemes["bearer"]
	share := 0.0
	if web.Requests > 0 {
		share = float64(sess.Requests) / float64(web.Requests)
	}
	t.Logf("%s: web session %d, bearer %d, session share %.3f; sources.shop %d requests", want.name,
		sess.Requests, bear.Requests, sess.Share, shop.Requests)
	if sess.Requests != want.sessions || bear.Requests != want.bearer || web.Requests != want.sessions+want.bearer {
		t.Fatalf("%s: web = %+v, want %d session and %d bearer requests", want.name, web, want.sessions, want.bearer)
	}
	if diff := sess.Share - share; diff > 1e-9 || diff < -1e-9 {
		t.Fatalf("%s: web session share %v, want %v", want.name, sess.Share, share)
	}
	// Every session web used is the Express app's: legacy requests are
	// session use of their client, and nothing else was.
	if shop.Requests != want.sourceReq || shop.Users == nil || *shop.Users != want.users || shop.LastSeen == nil {
		t.Fatalf("%s: sources.shop = %+v (users %v), want %d requests of %d users, last seen set", want.name, shop, shop.Users, want.sourceReq, want.users)
	}
	return rep
}

// guardFigures are the figures of a guard refusal.
func guardFigures(t *testing.T, r *resp) map[string]any {
	t.Helper()
	expectProblem(t, r, 409, "guard_refused")
	fig, _ := r.json(t)["figures"].(map[string]any)
	if fig == nil {
		t.Fatalf("guard refusal without figures: %s", r.body)
	}
	return fig
}

// TestLegacyMigrationOfAnExpressApp is issue 12's whole migration of an
// Express app, client web, whose users are logged in through Express:
//
//	legacy:   their cookies are session use of web and sources.shop
//	dual:     they exchange them; their bearer tokens count as bearer
//	          the guard refuses retiring while legacy sessions are used
//	          they stop, the share falls under guard.max_session_share
//	retiring: accepted; the legacy cookie gets 401 session_retired (and is
//	          counted as session use), yet can still be exchanged for tokens
//	jwt-only: accepted; exchange is over
//	rollback: the legacy cookie is accepted again
//
// The guard judges a 1m window over usage data seeded 25h back. Its window
// cannot move past the legacy traffic within a test (1m is guard.window's
// minimum, buckets are per minute), so "they stop" is shown the other way
// the share falls: the users' bearer traffic goes on without them.
func TestLegacyMigrationOfAnExpressApp(t *testing.T) {
	t.Parallel()
	store := redistest.Start(t)
	seedUsageHistory(t, store, 25*time.Hour)
	rs := redistest.Start(t)
	users := map[string]string{"u-alice": "alice-shop-pw", "u-bob": "bob-shop-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"migrate"}, Users: users, MaxAge: time.Hour})
	in := start(t, "TOKENSHIFT_CONFIG="+legacyConfig(t, shopSource(rs.URL(), "migrate", "")),
		"TOKENSHIFT_STORAGE_REDIS_URL="+store.URL(), "TOKENSHIFT_JWT_KEYS_DIR="+keysDir(t),
		"TOKENSHIFT_USERS_FILE="+migrationUsers(t), "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms",
		"TOKENSHIFT_GUARD_WINDOW=1m", "TOKENSHIFT_GUARD_MAX_SESSION_SHARE=0.25", "TOKENSHIFT_USAGE_MAX_SESSION_SHARE=0.25")
	// The operator is a bearer of client mobile: nothing it does is web's.
	op := newOperator(t, in)
	setWeb := func(phase, why string) map[string]any {
		t.Helper()
		return op.put(t, map[string]any{"clients": map[string]any{"web": map[string]any{"phase": phase}}, "rollout": 100, "reason": why}).json(t)
	}
	meN := func(n int, r req, wantStatus int, wantCode string) {
		t.Helper()
		for range n {
			got := in.do(t, r)
			if got.status != wantStatus {
				t.Fatalf("GET /auth/me: %d %s, want %d", got.status, got.body, wantStatus)
			}
			if wantCode != "" {
				expectProblem(t, got, wantStatus, wantCode)
			}
		}
	}

	// legacy: tokenshift in front of the Express app, nothing changed for
	// its users, who are counted.
	if r := op.put(t, map[string]any{"clients": map[string]any{"web": map[string]any{"phase": "legacy"}}, "reason": "tokenshift in front of the shop"}); r.status != 200 {
		t.Fatalf("web → legacy: %d %s", r.status, r.body)
	}
	alice := shop.Login(t, "u-alice", users["u-alice"])
	bob := shop.Login(t, "u-bob", users["u-bob"])
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")
	expectLegacyUser(t, legacyMe(t, in, bob), "u-bob", "shop")
	meN(4, req{path: "/auth/me", cookies: []*http.Cookie{alice}}, 200, "")
	meN(4, req{path: "/auth/me", cookies: []*http.Cookie{bob}}, 200, "")
	// No exchange yet: the phase issues no tokens (GET /auth/csrf and the
	// refused exchange are two more legacy requests).
	expectProblem(t, legacyPost(t, in, "/auth/exchange", alice, legacyCSRF(t, in, alice), in.URL), 403, "not_allowed_in_phase")
	expectMigrationUsage(t, in, op.token, migrationStep{name: "legacy", sessions: 12, sourceReq: 12, users: 2})

	// dual: the users exchange their Express sessions (GET /auth/csrf and
	// POST /auth/exchange are two more legacy requests each).
	setWeb("dual", "offer tokens to the shop's users")
	var tokens []string
	for _, u := range []struct {
		id string
		c  *http.Cookie
	}{{"u-alice", alice}, {"u-bob", bob}} {
		x := expectExchanged(t, in, legacyPost(t, in, "/auth/exchange", u.c, legacyCSRF(t, in, u.c), in.URL), u.id, true)
		tokens = append(tokens, x.access)
	}
	// expectExchanged used each login once: one bearer, one own session.
	for _, tok := range tokens {
		meN(9, req{path: "/auth/me", bearer: tok}, 200, "")
	}
	meN(2, req{path: "/auth/me", cookies: []*http.Cookie{alice}}, 200, "") // alice's old tab
	// 12 + 2×2 (csrf, exchange) + 2 own sessions + 2 legacy = 20 session;
	// 2×10 bearer.
	expectMigrationUsage(t, in, op.token, migrationStep{name: "dual", sessions: 20, bearer: 20, sourceReq: 18, users: 2})

	// The guard refuses retiring while the legacy sessions are in use.
	fig := guardFigures(t, op.put(t, map[string]any{"clients": map[string]any{"web": map[string]any{"phase": "retiring"}}, "rollout": 100, "reason": "retire the shop's cookies"}))
	if fig["window"] != "1m" || fig["covered"] != "1m" || fig["max_share"] != 0.25 || fig["session_requests"] != 20.0 || fig["total_requests"] != 40.0 ||
		fig["retired_requests"] != 0.0 || !sameStrings(fig["clients"], "web") {
		t.Fatalf("guard figures = %v, want web's 20 session of 40 requests in 1m", fig)
	}
	if r, _ := fig["reasons"].([]any); len(r) != 1 || !strings.HasPrefix(r[0].(string), "session share 50.00% (20 of 40 requests)") {
		t.Fatalf("guard reasons = %v, want the session share alone", fig["reasons"])
	}
	if p := op.flags(t)["effective"].(map[string]any)["web"]; p != "dual" {
		t.Fatalf("the refused change moved web to %v", p)
	}
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop") // still used: 21

	// They stop: only their tokens from now on, until the share is under
	// 25 % (21 of 85 is 24.7 %).
	for _, tok := range tokens {
		meN(22, req{path: "/auth/me", bearer: tok}, 200, "")
	}
	expectMigrationUsage(t, in, op.token, migrationStep{name: "dual, legacy stopped", sessions: 21, bearer: 64, sourceReq: 19, users: 2})
	if r := setWeb("retiring", "the shop's users moved to tokens"); r["effective"].(map[string]any)["web"] != "retiring" {
		t.Fatalf("web → retiring: %v", r)
	}

	// retiring: the legacy cookie is retired like an own session, and a
	// retired request is session use still. It can still be exchanged,
	// for tokens only: the phase issues no sessions to web any more.
	retired := legacyMe(t, in, alice)
	expectProblem(t, retired, 401, "session_retired")
	if d, _ := retired.json(t)["detail"].(string); !strings.Contains(d, "POST /auth/exchange") {
		t.Errorf("retiring: the legacy session's refusal does not offer the exchange: %q", d)
	}
	late := shop.Login(t, "u-bob", users["u-bob"])
	expectProblem(t, legacyMe(t, in, late), 401, "session_retired")
	expectExchanged(t, in, legacyPost(t, in, "/auth/exchange", late, legacyCSRF(t, in, late), in.URL), "u-bob", false)
	// The two retired requests are refused; GET /auth/csrf and the
	// exchange, which a retired session may still use, are accepted.
	rep := readReport(t, in, op.token, "window=1h")
	web, src := webUsage(t, rep)
	if ws := web.Schemes["session"]; ws.Requests != 23 || ws.Rejected != 2 || src.Requests != 21 || src.Rejected != 2 || web.Schemes["bearer"].Requests != 65 {
		t.Fatalf("retiring: web %+v, sources.shop %+v: want 23 accepted and 2 retired session requests, 65 bearer", web, src)
	}
	for _, tok := range tokens {
		meN(10, req{path: "/auth/me", bearer: tok}, 200, "")
	}

	// jwt-only: the guard counts the retired requests and lets it pass.
	r := op.put(t, map[string]any{"clients": map[string]any{"web": map[string]any{"phase": "jwt-only"}}, "reason": "sessions are over"})
	if r.status != 200 {
		t.Fatalf("web → jwt-only: %d %s", r.status, r.body)
	}
	if e := op.audit(t, 1)[0]; e["action"] != "set" || e["forced"] != false {
		t.Fatalf("audit of web → jwt-only = %v", e)
	} else if f := e["figures"].(map[string]any); f["retired_requests"] != 2.0 || f["session_requests"] != 25.0 || f["total_requests"] != 110.0 {
		t.Fatalf("guard figures of web → jwt-only = %v, want the 2 retired legacy requests counted as session use: 25 of 110", f)
	}
	expectProblem(t, legacyMe(t, in, alice), 401, "session_retired")
	// As for an own session: the exchange is over, and GET /auth/csrf
	// treats the cookie as none (a pre-session token for a login form).
	if r := in.do(t, req{path: "/auth/csrf", cookies: []*http.Cookie{bob}}); r.status != 200 || r.json(t)["pre_session"] != true {
		t.Fatalf("jwt-only: GET /auth/csrf with the legacy cookie: %d %s, want a pre-session token", r.status, r.body)
	}
	ex := legacyPost(t, in, "/auth/exchange", bob, "", in.URL)
	expectProblem(t, ex, 401, "session_retired")
	if d, _ := ex.json(t)["detail"].(string); strings.Contains(d, "exchange") {
		t.Errorf("jwt-only: the refusal offers an exchange the phase refuses: %q", d)
	}
	meN(1, req{path: "/auth/me", bearer: tokens[0]}, 200, "")

	// rollback: to retiring, then back to dual; the Express cookies the
	// users still hold are accepted again and counted as before.
	rb := in.do(t, req{method: "POST", path: "/admin/flags/rollback", bearer: op.token, json: map[string]string{"reason": "the shop's checkout still needs its cookie"}})
	if rb.status != 200 || rb.json(t)["effective"].(map[string]any)["web"] != "retiring" {
		t.Fatalf("rollback: %d %s", rb.status, rb.body)
	}
	expectProblem(t, legacyMe(t, in, alice), 401, "session_retired")
	setWeb("dual", "roll back to dual")
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")
	expectLegacyUser(t, legacyMe(t, in, bob), "u-bob", "shop")
	rep = readReport(t, in, op.token, "window=1h")
	web, src = webUsage(t, rep)
	if src.Requests != 23 || web.Schemes["session"].Requests != 25 || src.LastSeen == nil || time.Since(*src.LastSeen) > 10*time.Second {
		t.Fatalf("after the rollback: web %+v, sources.shop %+v: want the two legacy requests accepted again", web, src)
	}
}

// sameStrings reports whether v (a decoded JSON array) holds exactly want.
func sameStrings(v any, want ...string) bool {
	list, _ := v.([]any)
	if len(list) != len(want) {
		return false
	}
	for i, e := range list {
		if e != want[i] {
			return false
		}
	}
	return true
}
