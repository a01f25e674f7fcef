package e2e

import (
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// percentile is the nearest-rank percentile of sorted durations: the
// smallest value with at least p% of the samples at or below it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if percentile(d, 50) != 50 || percentile(d, 99) != 99 || percentile(d, 100) != 100 || percentile(d[:10], 99) != 10 || percentile(d[:1], 50) != 1 {
		t.Fatal("nearest-rank percentile is wrong")
	}
}

// "Log out everywhere" on instance A must stop the user's bearer token AND
// session cookie on instance B (same Redis) within 100 ms (DESIGN.md §5).
// Each trial: log in on A, warm both credentials on B (the verified-token
// cache holds the bearer), send POST /auth/logout?all=true to A, and poll B
// with both credentials until both are refused. The latency runs from
// sending the logout to the later of the two refusals, so it includes the
// logout request itself.
//
// TOKENSHIFT_PROPAGATION_TRIALS overrides the number of trials (default 100).
func TestLogoutEverywherePropagation(t *testing.T) {
	t.Parallel()
	trials := 100
	if v, err := strconv.Atoi(os.Getenv("TOKENSHIFT_PROPAGATION_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	srv := redistest.Start(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t)}
	a := start(t, env...)
	b := start(t, env...)

	lat := make([]time.Duration, 0, trials)
	var bearerLat, cookieLat []time.Duration
	for i := range trials {
		lr := a.login(t, aliceEmail, alicePass, "web")
		access := lr.json(t)["access_token"].(string)
		sess := lr.cookie("ts_session")
		if r := b.do(t, req{path: "/auth/me", bearer: access}); r.status != 200 {
			t.Fatalf("trial %d: B refuses a fresh token: %d %s", i, r.status, r.body)
		}
		if r := b.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}); r.status != 200 {
			t.Fatalf("trial %d: B refuses a fresh session: %d %s", i, r.status, r.body)
		}

		began := time.Now()
		var wg sync.WaitGroup
		var refusedBearer, refusedCookie time.Duration
		poll := func(r req, out *time.Duration) {
			defer wg.Done()
			for time.Since(began) < 5*time.Second {
				if b.do(t, r).status == 401 {
					*out = time.Since(began)
					return
				}
			}
			*out = -1
		}
		wg.Add(2)
		go poll(req{path: "/auth/me", bearer: access}, &refusedBearer)
		go poll(req{path: "/auth/me", cookies: []*http.Cookie{sess}}, &refusedCookie)
		if r := a.do(t, req{method: "POST", path: "/auth/logout?all=true", bearer: access}); r.status != 204 {
			t.Fatalf("trial %d: logout?all=true on A: %d %s", i, r.status, r.body)
		}
		wg.Wait()
		if refusedBearer < 0 || refusedCookie < 0 {
			t.Fatalf("trial %d: B still accepts the user's credentials 5s after log-out-everywhere on A (bearer %v, cookie %v)", i, refusedBearer, refusedCookie)
		}
		bearerLat = append(bearerLat, refusedBearer)
		cookieLat = append(cookieLat, refusedCookie)
		lat = append(lat, max(refusedBearer, refusedCookie))
	}
	for _, s := range [][]time.Duration{lat, bearerLat, cookieLat} {
		slices.Sort(s)
	}
	p99 := percentile(lat, 99)
	t.Logf("log out everywhere A→B over %d trials: p50 %v, p99 %v, max %v (bearer p50 %v p99 %v; cookie p50 %v p99 %v)",
		trials, percentile(lat, 50), p99, lat[len(lat)-1],
		percentile(bearerLat, 50), percentile(bearerLat, 99), percentile(cookieLat, 50), percentile(cookieLat, 99))
	// DESIGN.md asks for 100 ms, and that is asserted: on the shared 2-core
	// machine, with load averages of 14-17 (the whole suite and other
	// builds running), eight runs measured p99 between 6 and 31 ms, single
	// outliers up to 176 ms (the p99 of 100 trials needs two). The figures
	// are in docs/security.md.
	if p99 >= 100*time.Millisecond {
		t.Fatalf("p99 propagation %v; want < 100ms", p99)
	}
}
