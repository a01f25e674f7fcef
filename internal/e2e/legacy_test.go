package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/legacyapps"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// legacyConfig writes a config file holding legacy.sources (YAML list
// entries, indented under "sources:").
func legacyConfig(t *testing.T, sources string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenshift.yaml")
	if err := os.WriteFile(path, []byte("legacy:\n  sources:\n"+sources), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// redisCalls is how many reads (GET, PTTL) the legacy Redis has served.
func redisCalls(t *testing.T, rc *redis.Client) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, cmd := range []string{"cmdstat_get:", "cmdstat_pttl:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd+"calls="); ok {
				v, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
				n += v
			}
		}
	}
	return n
}

func legacyMe(t *testing.T, in *instance, c *http.Cookie, extra ...*http.Cookie) *resp {
	t.Helper()
	return in.do(t, req{path: "/auth/me", cookies: append([]*http.Cookie{c}, extra...)})
}

func expectLegacyUser(t *testing.T, r *resp, user, source string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("GET /auth/me: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["user_id"] != user || m["source"] != source || m["scheme"] != "session" || m["client_id"] != "web" {
		t.Fatalf("GET /auth/me = %s, want %s through source %s, scheme session, client web", r.body, user, source)
	}
}

// An Express app (express-session + connect-redis) logs its users in;
// tokenshift, in front of it, accepts those cookies as sessions of web,
// for both layouts and with a rotated secret; refuses forgeries without
// reading Redis, users it does not know, and sessions the app logged out;
// retires them with the phases and brings them back on rollback; counts
// them in the usage report.
func TestLegacyExpress(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	users := map[string]string{"u-alice": "alice-legacy-pw", "u-ghost": "ghost-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"shop-new-secret", "shop-old-secret"}, Users: users})
	// The same app before the rotation: its cookies are signed with the
	// secret that is now second.
	shopOld := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"shop-old-secret"}, Users: users})
	pass := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"passport-secret"}, Prefix: "pp:",
		Layout: legacyapps.LayoutPassport, Cookie: "pp.sid", Users: users})

	cfg := legacyConfig(t, `    - name: shop
      kind: express
      client: web
      cookie: connect.sid
      user_id: userId
      secrets: [shop-new-secret, shop-old-secret]
      redis_url: `+rs.URL()+`
      key_prefix: "sess:"
    - name: passport
      kind: express
      client: web
      cookie: pp.sid
      user_id: passport.user
      secrets: [passport-secret]
      redis_url: `+rs.URL()+`
      key_prefix: "pp:"
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms")

	alice := shop.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")
	expectLegacyUser(t, legacyMe(t, in, pass.Login(t, "u-alice", users["u-alice"])), "u-alice", "passport")
	expectLegacyUser(t, legacyMe(t, in, shopOld.Login(t, "u-alice", users["u-alice"])), "u-alice", "shop")

	// Forged: another secret's signature. Refused, and Redis is not read.
	before := redisCalls(t, rc)
	forged := &http.Cookie{Name: "connect.sid", Value: strings.Replace(alice.Value, "s%3A", "s%3AX", 1)}
	expectProblem(t, legacyMe(t, in, forged), 401, "invalid_session")
	expectProblem(t, legacyMe(t, in, &http.Cookie{Name: "connect.sid", Value: "s%3Aabc.bm90LWEtc2lnbmF0dXJl"}), 401, "invalid_session")
	if after := redisCalls(t, rc); after != before {
		t.Fatalf("forged cookies cost %d legacy Redis reads, want none", after-before)
	}

	// A user the Express app knows and tokenshift's user store does not.
	expectProblem(t, legacyMe(t, in, shop.Login(t, "u-ghost", users["u-ghost"])), 401, "invalid_session")

	// The Express app's own logout: tokenshift refuses the cookie too.
	bye := shop.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, bye), "u-alice", "shop")
	shop.Logout(t, bye)
	if st, _ := shop.Me(t, bye); st != 401 {
		t.Fatalf("the Express app still knows the logged-out session: %d", st)
	}
	// Within cache_ttl (default 1s): the near cache is not told of it.
	eventually(t, "the Express app's logout refused by tokenshift", func() bool { return legacyMe(t, in, bye).status == 401 })
	expectProblem(t, legacyMe(t, in, bye), 401, "invalid_session")

	// Phases: retired exactly like an own session, back on rollback.
	op := newOperator(t, in)
	for _, ph := range []map[string]any{
		{"phase": "retiring", "rollout": 100},
		{"phase": "jwt-only", "rollout": 100},
	} {
		ph["force"], ph["reason"] = true, "legacy e2e"
		op.mustPut(t, ph)
		expectProblem(t, legacyMe(t, in, alice), 401, "session_retired")
	}
	op.mustPut(t, map[string]any{"phase": "dual", "rollout": 100, "force": true, "reason": "rollback"})
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")

	// Usage: under sources, and as session use of web.
	rep := readReport(t, in, op.token, "window=1h")
	s := rep.Sources["shop"]
	if s.Requests < 4 || s.Rejected < 5 || s.Users == nil || *s.Users != 1 || s.LastSeen == nil {
		t.Fatalf("usage sources = %+v, want shop with >= 4 requests, >= 5 refused, 1 user, last seen", rep.Sources)
	}
	if p := rep.Sources["passport"]; p.Requests != 1 {
		t.Fatalf("passport = %+v, want 1 request", p)
	}
	var web *usage.ClientUsage
	for i := range rep.Clients {
		if rep.Clients[i].ClientID == "web" {
			web = &rep.Clients[i]
		}
	}
	if web == nil || web.Schemes["session"].Requests < s.Requests+1 {
		t.Fatalf("web session use = %+v, want the legacy requests in it", web)
	}
	m := in.do(t, req{path: "/metrics"})
	if !strings.Contains(string(m.body), `tokenshift_auth_requests_total{client="web",outcome="accepted",scheme="session",source="shop"}`) {
		t.Fatalf("metrics without the source label:\n%s", m.body)
	}
}

// When the legacy Redis is down, /readyz names the source and a request
// carrying only the legacy cookie answers 503; a bearer token and
// tokenshift's own session keep working.
func TestLegacyExpressStoreDown(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	users := map[string]string{"u-alice": "alice-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"down-secret"}, Users: users})
	cfg := legacyConfig(t, `    - name: shop
      kind: express
      client: web
      user_id: userId
      secrets: [down-secret]
      redis_url: `+rs.URL()+`
      timeout: 300ms
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	alice := shop.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")
	if r := in.do(t, req{path: "/readyz"}); r.status != 200 {
		t.Fatalf("/readyz = %d %s", r.status, r.body)
	}
	lr := in.login(t, aliceEmail, alicePass, "web")
	bearer, _ := lr.json(t)["access_token"].(string)
	own := lr.cookie("ts_session")

	// A session tokenshift has not seen yet is not known alive.
	unseen := shop.Login(t, "u-alice", users["u-alice"])

	rs.Stop()
	start := time.Now()
	expectProblem(t, legacyMe(t, in, unseen), 503, "store_unavailable")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("503 after %v, want within the source's timeout", d)
	}
	// A session this instance verified is known alive for at most
	// cache_ttl (default 1s) after its read; then 503 as well.
	for legacyMe(t, in, alice).status != 503 {
		if time.Since(start) > 3*time.Second {
			t.Fatalf("a cached legacy session still accepted %v into the outage", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	expectProblem(t, legacyMe(t, in, alice), 503, "store_unavailable")
	r := in.do(t, req{path: "/readyz"})
	expectProblem(t, r, 503, "store_unavailable")
	if !strings.Contains(string(r.body), "shop") {
		t.Fatalf("/readyz does not name the source: %s", r.body)
	}
	if r := in.do(t, req{path: "/auth/me", bearer: bearer, cookies: []*http.Cookie{alice}}); r.status != 200 {
		t.Fatalf("bearer next to the legacy cookie: %d %s", r.status, r.body)
	}
	if r := legacyMe(t, in, own, alice); r.status != 200 || r.json(t)["source"] != nil {
		t.Fatalf("own session next to the legacy cookie: %d %s", r.status, r.body)
	}
}

// Suspending a user refuses their legacy sessions, and deletes the ones
// tokenshift has seen from the Express app's store; lifting it does not
// bring back a session saved before the revocation (IssuedAt), and a new
// login through the Express app works again.
func TestLegacyExpressRevoked(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	users := map[string]string{"u-alice": "alice-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"rev-secret"}, Users: users, MaxAge: time.Hour})
	cfg := legacyConfig(t, `    - name: shop
      kind: express
      client: web
      user_id: userId
      secrets: [rev-secret]
      redis_url: `+rs.URL()+`
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	op := newOperator(t, in)
	alice := shop.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, alice), "u-alice", "shop")

	if r := in.do(t, req{method: "POST", path: "/admin/users/u-alice/suspend", bearer: op.token, json: map[string]string{"reason": "legacy e2e"}}); r.status != 200 {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	expectProblem(t, legacyMe(t, in, alice), 401, "invalid_session")
	if r := in.do(t, req{method: "DELETE", path: "/admin/users/u-alice/suspend", bearer: op.token}); r.status != 200 {
		t.Fatalf("unsuspend: %d %s", r.status, r.body)
	}
	expectProblem(t, legacyMe(t, in, alice), 401, "invalid_session")
	// alice's session was seen (used through tokenshift above): the
	// suspension deleted it from the Express app's Redis too.
	if st, _ := shop.Me(t, alice); st != 401 {
		t.Fatalf("the Express app still accepts the seen session after the suspension: %d", st)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := legacyMe(t, in, shop.Login(t, "u-alice", users["u-alice"]))
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new legacy login after the suspension is refused: %d %s", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
