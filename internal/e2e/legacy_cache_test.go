package e2e

import (
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/legacyapps"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// The legacy near cache on two instances in front of a real Express app
// (express-session + connect-redis): a legacy cookie B has seen is
// answered from memory (no read of the Express Redis); log out everywhere
// on A refuses it on B within 100 ms (the mirror, not the 1 s cache_ttl,
// decides); the Express app's own logout, which tokenshift is not told of,
// is refused within cache_ttl plus a margin.
func TestLegacyNearCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	store := redistest.Start(t)
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	users := map[string]string{"u-alice": "alice-legacy-pw"}
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: rs.URL(), Secrets: []string{"cache-secret"}, Users: users, MaxAge: time.Hour})
	const cacheTTL = time.Second
	cfg := legacyConfig(t, `    - name: shop
      kind: express
      client: web
      user_id: userId
      secrets: [cache-secret]
      redis_url: `+rs.URL()+`
      cache_ttl: 1s
`)
	env := []string{"TOKENSHIFT_CONFIG=" + cfg, "TOKENSHIFT_STORAGE_REDIS_URL=" + store.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t)}
	a := start(t, env...)
	b := start(t, env...)

	// warm makes sure B has c cached: its second request reads nothing
	// from the Express Redis.
	warm := func(t *testing.T, c *http.Cookie) {
		t.Helper()
		expectLegacyUser(t, legacyMe(t, b, c), "u-alice", "shop")
		before := redisCalls(t, rc)
		for range 5 {
			expectLegacyUser(t, legacyMe(t, b, c), "u-alice", "shop")
		}
		if n := redisCalls(t, rc) - before; n != 0 {
			t.Fatalf("B read the Express Redis %d times for a cookie it had verified, want none (near cache)", n)
		}
	}

	t.Run("log out everywhere on A", func(t *testing.T) {
		const trials = 5
		var took []time.Duration
		for i := range trials {
			if i > 0 {
				// A session read less than a second after its user's
				// not-before is not answered from the cache (the
				// revocation might still be on its way): wait that out.
				time.Sleep(1100 * time.Millisecond)
			}
			c := shop.Login(t, "u-alice", users["u-alice"])
			warm(t, c)
			csrf := a.do(t, req{path: "/auth/csrf", cookies: []*http.Cookie{c}})
			if csrf.status != 200 {
				t.Fatalf("GET /auth/csrf with the legacy cookie: %d %s", csrf.status, csrf.body)
			}
			r := a.do(t, req{method: "POST", path: "/auth/logout?all=true", cookies: []*http.Cookie{c},
				header: map[string]string{"X-CSRF-Token": csrf.json(t)["csrf_token"].(string)}})
			if r.status != 204 {
				t.Fatalf("log out everywhere with the legacy cookie: %d %s", r.status, r.body)
			}
			ended := time.Now()
			for {
				r := legacyMe(t, b, c)
				if r.status == 401 {
					took = append(took, time.Since(ended))
					break
				}
				if time.Since(ended) > 100*time.Millisecond {
					t.Fatalf("B still accepts the legacy cookie %v after log out everywhere on A: %d %s", time.Since(ended), r.status, r.body)
				}
				time.Sleep(2 * time.Millisecond)
			}
			// A new legacy login after the revocation works on both.
			time.Sleep(5 * time.Millisecond) // the Express app dates its save after the not-before
			fresh := shop.Login(t, "u-alice", users["u-alice"])
			expectLegacyUser(t, legacyMe(t, b, fresh), "u-alice", "shop")
			expectLegacyUser(t, legacyMe(t, a, fresh), "u-alice", "shop")
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("B refused the cached legacy cookie after log out everywhere on A: %d trials, median %v, max %v", trials, took[trials/2], took[trials-1])
	})

	t.Run("the Express app's own logout", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // past the last not-before, as above
		c := shop.Login(t, "u-alice", users["u-alice"])
		warm(t, c)
		shop.Logout(t, c)
		if st, _ := shop.Me(t, c); st != 401 {
			t.Fatalf("the Express app still knows the logged-out session: %d", st)
		}
		gone := time.Now()
		for {
			r := legacyMe(t, b, c)
			if r.status == 401 {
				expectProblem(t, r, 401, "invalid_session")
				t.Logf("B refused the cookie %v after the Express app's own logout (cache_ttl %v)", time.Since(gone), cacheTTL)
				break
			}
			if time.Since(gone) > cacheTTL+500*time.Millisecond {
				t.Fatalf("B still accepts a session the Express app logged out %v ago (cache_ttl %v)", time.Since(gone), cacheTTL)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
