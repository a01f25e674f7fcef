package httpapi

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/logins"
)

// Concurrent guesses: each attempt reserves its unit before the password
// check, so however many arrive at once, at most the limit reach Verify.
func TestLoginLimiterConcurrentGuesses(t *testing.T) {
	tests := []struct {
		name     string
		perAcct  int
		perIP    int
		attempts int
		email    func(i int) string
		limit    int
	}{
		{name: "one account", perAcct: 5, perIP: 1000, attempts: 60, email: func(int) string { return "alice@example.com" }, limit: 5},
		{name: "one IP, many accounts", perAcct: 1000, perIP: 7, attempts: 60, email: func(i int) string { return fmt.Sprintf("user%d@example.com", i) }, limit: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func(o *testOptions) {
				o.RateLimit = logins.RateLimit{PerAccount: tc.perAcct, PerIP: tc.perIP, Window: time.Minute}
			})
			ts.users.delay = 20 * time.Millisecond // the checks overlap
			var unauthorized, limited, other atomic.Int64
			parallel(tc.attempts, func(i int) {
				r := ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": tc.email(i), "password": "wrong"}})
				switch r.status {
				case 401:
					unauthorized.Add(1)
				case 429:
					limited.Add(1)
					secs, err := strconv.Atoi(r.header.Get("Retry-After"))
					if err != nil || secs < 1 || secs > 60 {
						t.Errorf("Retry-After %q; want 1..60 s (the window's remaining time)", r.header.Get("Retry-After"))
					}
				default:
					other.Add(1)
				}
			})
			t.Logf("%d attempts: %d reached the password check, %d answered 401, %d answered 429", tc.attempts, ts.users.calls.Load(), unauthorized.Load(), limited.Load())
			if n := ts.users.calls.Load(); n > int64(tc.limit) {
				t.Fatalf("%d password checks ran; the limit is %d", n, tc.limit)
			}
			if unauthorized.Load() != int64(tc.limit) || limited.Load() != int64(tc.attempts-tc.limit) || other.Load() != 0 {
				t.Fatalf("401 %d, 429 %d, other %d; want %d, %d, 0", unauthorized.Load(), limited.Load(), other.Load(), tc.limit, tc.attempts-tc.limit)
			}
		})
	}
}

func TestLoginLimiterRefundsAndRetryAfter(t *testing.T) {
	ts := newTestServer(t, func(o *testOptions) { o.RateLimit = logins.RateLimit{PerAccount: 3, PerIP: 6, Window: time.Minute} })
	peer := "192.0.2.10"
	login := func(email, pass string) *tresp {
		return ts.do(t, treq{method: "POST", path: "/auth/login", peer: peer, json: map[string]string{"email": email, "password": pass}})
	}
	// Successful logins refund the IP budget: an office behind one address
	// is not locked out by its own users.
	for range 10 {
		if r := login("alice@example.com", "alice-pass"); r.status != 200 {
			t.Fatalf("good login: %d %s", r.status, r.body)
		}
	}
	// Two failures, then a success resets the account budget.
	for range 2 {
		wantProblem(t, login("alice@example.com", "x"), 401, "invalid_credentials")
	}
	if r := login("alice@example.com", "alice-pass"); r.status != 200 {
		t.Fatalf("good login after 2 failures: %d", r.status)
	}
	for range 3 {
		wantProblem(t, login("alice@example.com", "x"), 401, "invalid_credentials")
	}
	r := login("alice@example.com", "alice-pass")
	wantProblem(t, r, 429, "rate_limited")
	secs, _ := strconv.Atoi(r.header.Get("Retry-After"))
	if secs < 55 || secs > 60 {
		t.Fatalf("Retry-After %q; want the window's real remaining time (~60s)", r.header.Get("Retry-After"))
	}
	if got := r.json(t)["retry_after"]; got != float64(secs) {
		t.Fatalf("retry_after %v; want %d", got, secs)
	}
	// The account refusal did not spend the IP's budget: another account
	// from the same address still gets its attempt.
	wantProblem(t, login("ops@example.com", "x"), 401, "invalid_credentials")

	// Failures now spent the whole IP budget (2 + 3 + 1 = 6): the next
	// attempt from this address is refused whatever the account.
	wantProblem(t, login("ops@example.com", "ops-pass"), 429, "rate_limited")

	// The user store failing is not the client's fault: nothing is spent.
	peer = "192.0.2.11"
	ts.users.down.Store(true)
	for range 10 {
		wantProblem(t, login("ops@example.com", "x"), 503, "user_store_unavailable")
	}
	ts.users.down.Store(false)
	wantProblem(t, login("ops@example.com", "x"), 401, "invalid_credentials")
}

// The limiter's store failing means no login at all (fail closed), never an
// unlimited one.
func TestLoginLimiterFailsClosed(t *testing.T) {
	ts := newTestServer(t, nil)
	_ = ts.st.Close()
	before := ts.users.calls.Load()
	wantProblem(t, ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}}), 503, "store_unavailable")
	if ts.users.calls.Load() != before {
		t.Fatal("the password was checked without a rate-limit reservation")
	}
}

// TestLoginLimiterLegitBurst: correct passwords give their unit back before
// answering. A burst of overlapping correct logins larger than the budget
// may see some 429s (each attempt holds a unit while its password is being
// checked), worded as attempts, not failures; once they have answered, any
// number of further correct logins pass.
func TestLoginLimiterLegitBurst(t *testing.T) {
	ts := newTestServer(t, func(o *testOptions) { o.RateLimit = logins.RateLimit{PerAccount: 5, PerIP: 20, Window: time.Minute} })
	ts.users.delay = 20 * time.Millisecond
	var ok, limited atomic.Int64
	parallel(10, func(int) {
		r := ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}})
		switch r.status {
		case 200:
			ok.Add(1)
		case 429:
			limited.Add(1)
			if d, _ := r.json(t)["detail"].(string); !strings.HasPrefix(d, "too many login attempts") {
				t.Errorf("429 detail %q; want it to speak of attempts, not failed logins", d)
			}
		default:
			t.Errorf("burst login: %d %s", r.status, r.body)
		}
	})
	t.Logf("burst of 10 correct logins, budget 5: %d passed, %d limited", ok.Load(), limited.Load())
	if ok.Load() < 5 {
		t.Fatalf("only %d of 10 correct logins passed with a budget of 5", ok.Load())
	}
	for i := range 15 {
		if r := ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}}); r.status != 200 {
			t.Fatalf("correct login %d after the burst: %d %s", i, r.status, r.body)
		}
	}
}
