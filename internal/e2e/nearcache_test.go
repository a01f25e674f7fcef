package e2e

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// The session near cache (docs/security.md, "The session near cache"): an
// instance answers a session it has seen from memory. These tests run the
// real binary twice on one redis-server and check that caching changes
// nothing a client can observe about how a session ends.

// nearLogin is one web login of the racer: a session and its tokens.
type nearLogin struct {
	cookie          *http.Cookie
	bearer, refresh string
	sid             string
	pw              string
}

func nearLoginOn(t *testing.T, in *instance, pw string) nearLogin {
	t.Helper()
	r := in.login(t, racerEmail, pw, "web")
	m := r.json(t)
	l := nearLogin{cookie: r.cookie("ts_session"), pw: pw}
	l.bearer, _ = m["access_token"].(string)
	l.refresh, _ = m["refresh_token"].(string)
	l.sid, _ = m["sid"].(string)
	if l.cookie == nil || l.bearer == "" || l.refresh == "" || l.sid == "" {
		t.Fatalf("login without a session and tokens: %s", r.body)
	}
	return l
}

func (l nearLogin) me(t *testing.T, in *instance) *resp {
	return in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{l.cookie}})
}

// TestNearCacheEndingsPropagate: for every way a login ends on instance A,
// instance B, which has the session cached (it answered it twice), refuses
// it within the propagation bound (p99 < 100 ms, as
// TestLogoutEverywherePropagation), and A refuses it at once.
//
// TOKENSHIFT_PROPAGATION_TRIALS overrides the trials per ending (default 13,
// so that the p99 of the 104 samples tolerates one outlier).
func TestNearCacheEndingsPropagate(t *testing.T) {
	t.Parallel()
	trials := 13
	if v, err := strconv.Atoi(os.Getenv("TOKENSHIFT_PROPAGATION_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	const maxPerUser = 4
	srv := redistest.Start(t)
	env := append(racerEnv(t), "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR="+keysDir(t),
		"TOKENSHIFT_SESSION_MAX_PER_USER="+strconv.Itoa(maxPerUser))
	a := start(t, env...)
	b := start(t, env...)
	admin := a.login(t, opsEmail, opsPass, "mobile").json(t)["access_token"].(string)
	pwGen := 0
	pw := racerPassword(pwGen)

	endings := []struct {
		name string
		// end ends l on A and reports the moment the ending was sent (some
		// endings need requests first that end nothing).
		end func(t *testing.T, l nearLogin) time.Time
	}{
		{name: "logout", end: func(t *testing.T, l nearLogin) time.Time {
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "POST", path: "/auth/logout", bearer: l.bearer}), 204)
			return began
		}},
		{name: "logout everywhere", end: func(t *testing.T, l nearLogin) time.Time {
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "POST", path: "/auth/logout?all=true", bearer: l.bearer}), 204)
			return began
		}},
		{name: "DELETE /auth/sessions/{sid}", end: func(t *testing.T, l nearLogin) time.Time {
			other := nearLoginOn(t, a, pw)
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "DELETE", path: "/auth/sessions/" + l.sid, bearer: other.bearer}), 204)
			return began
		}},
		{name: "eviction by max_per_user", end: func(t *testing.T, l nearLogin) time.Time {
			for range maxPerUser - 1 {
				nearLoginOn(t, a, pw)
			}
			began := time.Now()
			nearLoginOn(t, a, pw) // the limit's oldest login is l
			return began
		}},
		{name: "password change", end: func(t *testing.T, l nearLogin) time.Time {
			pwGen++
			next := racerPassword(pwGen)
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "POST", path: "/auth/password", bearer: l.bearer,
				json: map[string]string{"current_password": pw, "new_password": next}}), 204)
			pw = next
			return began
		}},
		{name: "suspension", end: func(t *testing.T, l nearLogin) time.Time {
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "POST", path: "/admin/users/" + racerID + "/suspend", bearer: admin,
				json: map[string]string{"reason": "near cache test"}}), 200)
			return began
		}},
		{name: "operator revocation", end: func(t *testing.T, l nearLogin) time.Time {
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "DELETE", path: "/admin/users/" + racerID + "/sessions/" + l.sid, bearer: admin}), 204)
			return began
		}},
		{name: "refresh-token reuse", end: func(t *testing.T, l nearLogin) time.Time {
			expectStatus(t, a.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": l.refresh}}), 200)
			began := time.Now()
			expectStatus(t, a.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": l.refresh}}), 401)
			return began
		}},
	}

	var lat []time.Duration
	for _, e := range endings {
		for k := range trials {
			// A clean slate: no earlier login of the racer counts against
			// max_per_user, and the account is not suspended.
			expectStatus(t, a.do(t, req{method: "DELETE", path: "/admin/users/" + racerID + "/suspend", bearer: admin}), 200)
			expectStatus(t, a.do(t, req{method: "DELETE", path: "/admin/users/" + racerID + "/sessions", bearer: admin}), 204)
			l := nearLoginOn(t, a, pw)
			for range 2 { // the first read caches it on B, the second is a hit
				if r := l.me(t, b); r.status != 200 {
					t.Fatalf("%s trial %d: B refuses a fresh session: %d %s", e.name, k, r.status, r.body)
				}
			}
			began := e.end(t, l)
			if r := l.me(t, a); r.status != 401 {
				t.Fatalf("%s trial %d: A still answers the session it ended: %d %s", e.name, k, r.status, r.body)
			}
			var refused time.Duration = -1
			for time.Since(began) < 5*time.Second {
				r := l.me(t, b)
				if r.status == 200 {
					continue
				}
				if r.status != 401 {
					t.Fatalf("%s trial %d: B answers an ended session %d, want 401: %s", e.name, k, r.status, r.body)
				}
				refused = time.Since(began)
				break
			}
			if refused < 0 {
				t.Fatalf("%s trial %d: B still accepts the session 5s after it ended on A", e.name, k)
			}
			lat = append(lat, refused)
		}
	}
	slices.Sort(lat)
	p99 := percentile(lat, 99)
	t.Logf("near cache: %d endings (%d kinds) A→B: p50 %v, p99 %v, max %v", len(lat), len(endings), percentile(lat, 50), p99, lat[len(lat)-1])
	if p99 >= 100*time.Millisecond {
		t.Fatalf("p99 propagation to the near cache %v; want < 100ms", p99)
	}
}

func expectStatus(t *testing.T, r *resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}

// TestNearCacheIdleAcrossInstances: a session cached on A and then used
// only on B stays alive on A past its idle timeout counted from A's own last
// sight of it (A re-reads the store, which B's batched touches keep current),
// and still ends idle_timeout after its last use everywhere.
func TestNearCacheIdleAcrossInstances(t *testing.T) {
	t.Parallel()
	const idle = 3 * time.Second
	srv := redistest.Start(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t),
		"TOKENSHIFT_SESSION_IDLE_TIMEOUT=" + idle.String()}
	a := start(t, env...)
	b := start(t, env...)

	lr := a.login(t, aliceEmail, alicePass, "web")
	sess := lr.cookie("ts_session")
	me := func(in *instance) *resp { return in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}) }
	expectStatus(t, me(a), 200) // cached on A, seen = login
	used := time.Now()
	for time.Since(used) < 2*idle+time.Second {
		expectStatus(t, me(b), 200)
		time.Sleep(150 * time.Millisecond)
	}
	if r := me(a); r.status != 200 {
		t.Fatalf("A expired a session used on B all along (A last saw it %v ago, idle_timeout %v): %d %s",
			time.Since(used).Round(time.Millisecond), idle, r.status, r.body)
	}
	// Unused everywhere: both end it. Touches reach the store up to
	// TouchInterval (idle/10) plus one flush (1s) after the use, so the
	// session may end that much earlier, never later.
	time.Sleep(idle + 500*time.Millisecond)
	for _, in := range []*instance{a, b} {
		r := me(in)
		expectProblem(t, r, 401, "invalid_session")
		if !strings.Contains(string(r.body), "expired") {
			t.Fatalf("an idle session is refused, but not as expired: %s", r.body)
		}
	}
}

// TestNearCacheRedisPaused: while Redis does not answer, a session is
// accepted only if it is known alive (docs/security.md): cached on this
// instance, read from the store less than near_cache_ttl ago, and not ended
// in the revocation mirror. Any other session gets 503, and one that was
// ended is never accepted.
func TestNearCacheRedisPaused(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Second
	srv := redistest.Start(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t),
		"TOKENSHIFT_SESSION_NEAR_CACHE_TTL=" + ttl.String(),
		"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=300ms"}
	a := start(t, env...)
	b := start(t, env...)
	login := func() (*http.Cookie, string) {
		r := a.login(t, aliceEmail, alicePass, "web")
		return r.cookie("ts_session"), r.json(t)["access_token"].(string)
	}
	me := func(in *instance, c *http.Cookie) *resp {
		return in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{c}})
	}

	known, _ := login()
	cachedAt := time.Now()
	expectStatus(t, me(b, known), 200)
	unseen, _ := login()
	ended, endedBearer := login()
	expectStatus(t, me(b, ended), 200)
	expectStatus(t, a.do(t, req{method: "POST", path: "/auth/logout", bearer: endedBearer}), 204)
	eventually(t, "B refuses the session ended on A", func() bool { return me(b, ended).status == 401 })

	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	if r := me(b, known); r.status != 200 {
		t.Fatalf("Redis paused: B refuses a session it knows alive: %d %s", r.status, r.body)
	}
	expectProblem(t, me(b, unseen), 503, "store_unavailable")
	if r := me(b, ended); r.status == 200 {
		t.Fatalf("Redis paused: B accepts a session ended on A: %s", r.body)
	}
	time.Sleep(time.Until(cachedAt.Add(ttl + 200*time.Millisecond)))
	expectProblem(t, me(b, known), 503, "store_unavailable")

	srv.Resume()
	resumed = true
	deadline := time.Now().Add(10 * time.Second)
	for me(b, known).status != 200 {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Sprintf("B does not accept the session again within 10s of Redis answering: %s", b.logs.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := me(b, ended); r.status != 401 {
		t.Fatalf("after the pause, B answers the ended session %d, want 401", r.status)
	}
}
