package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// loginAnswer is what one login of the failover run got back.
type loginAnswer struct {
	at      time.Time
	status  int
	code    string
	cookies []*http.Cookie
	refresh string
	err     error
}

// TestSentinelFailoverLosesNoLogin: logins run without pause while the
// sentinels fail the master over (SENTINEL FAILOVER: the old master keeps
// answering writes until it is demoted seconds later, then drops them in its
// resync). With storage.redis.min_replicas 1, every login answered 200 must
// still work afterwards, by its session cookie and by its refresh token; the
// others must have answered 503 store_unavailable. Without min_replicas,
// logins that reached the old master after the promotion answered 200 and
// were then gone (issue 10, item 12).
func TestSentinelFailoverLosesNoLogin(t *testing.T) {
	t.Parallel()
	top := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1, Sentinels: 3, DownAfter: time.Second, FailoverTimeout: 5 * time.Second})
	a := start(t, "TOKENSHIFT_STORAGE_REDIS_URL="+top.URL(), "TOKENSHIFT_JWT_KEYS_DIR="+keysDir(t),
		"TOKENSHIFT_STORAGE_REDIS_MIN_REPLICAS=1", "TOKENSHIFT_STORAGE_REDIS_REPLICA_TIMEOUT=200ms",
		"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=500ms", "TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=500ms", "TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=500ms",
		"TOKENSHIFT_RATELIMIT_PER_ACCOUNT=1000", "TOKENSHIFT_RATELIMIT_PER_IP=1000")

	var (
		mu      sync.Mutex
		answers []loginAnswer
		wg      sync.WaitGroup
	)
	stop := make(chan struct{})
	accounts := [][2]string{{aliceEmail, alicePass}, {opsEmail, opsPass}}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := accounts[w%len(accounts)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				ans := postLogin(a.URL, acct[0], acct[1])
				mu.Lock()
				answers = append(answers, ans)
				mu.Unlock()
			}
		}()
	}
	successesSince := func(since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ans := range answers {
			if ans.status == 200 && ans.at.After(since) {
				n++
			}
		}
		return n
	}
	waitSuccesses := func(since time.Time, n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for successesSince(since) < n {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("fewer than %d logins answered 200 within %s\n%s", n, within, a.logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	begin := time.Now()
	waitSuccesses(begin, 5, 15*time.Second)
	failoverAt := time.Now()
	_, promoted := top.Failover(t)
	promotedAt := time.Now()
	// Until the old master is a synced replica of the new one, what it
	// accepted after the promotion is still readable from it; after, it is
	// gone, and the check below can see the loss.
	top.WaitSettled(t, promoted, 30*time.Second)
	settledAt := time.Now()
	waitSuccesses(settledAt, 3, 15*time.Second)
	close(stop)
	wg.Wait()

	var ok, unavailable, lost int
	for _, ans := range answers {
		switch {
		case ans.err != nil:
			t.Errorf("login at +%s: %v", ans.at.Sub(begin).Round(time.Millisecond), ans.err)
		case ans.status == 503 && ans.code == "store_unavailable":
			unavailable++
		case ans.status != 200:
			t.Errorf("login at +%s answered %d %s, want 200 or 503 store_unavailable", ans.at.Sub(begin).Round(time.Millisecond), ans.status, ans.code)
		default:
			ok++
			if why := loginLost(t, a, ans); why != "" {
				lost++
				t.Errorf("login answered 200 at +%s (failover asked at +%s, promoted by +%s, settled at +%s) is lost: %s",
					ans.at.Sub(begin).Round(time.Millisecond), failoverAt.Sub(begin).Round(time.Millisecond),
					promotedAt.Sub(begin).Round(time.Millisecond), settledAt.Sub(begin).Round(time.Millisecond), why)
			}
		}
	}
	t.Logf("%d logins: %d answered 200 (%d of them lost), %d answered 503; failover at +%s, settled at +%s",
		len(answers), ok, lost, unavailable, failoverAt.Sub(begin).Round(time.Millisecond), settledAt.Sub(begin).Round(time.Millisecond))
}

// postLogin logs in through client web (session cookie and token pair) and
// never fails the test itself: it runs on the workers' goroutines.
func postLogin(base, email, password string) loginAnswer {
	ans := loginAnswer{at: time.Now()}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": "web"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, "POST", base+"/auth/login", bytes.NewReader(body))
	if err != nil {
		ans.err = err
		return ans
	}
	hr.Header.Set("Content-Type", "application/json")
	res, err := client.Do(hr)
	if err != nil {
		ans.err = err
		return ans
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	ans.status, ans.cookies = res.StatusCode, res.Cookies()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		ans.err = fmt.Errorf("status %d, body not JSON: %q", res.StatusCode, b)
		return ans
	}
	ans.code, _ = m["code"].(string)
	ans.refresh, _ = m["refresh_token"].(string)
	if ans.status == 200 && (ans.refresh == "" || len(ans.cookies) == 0) {
		ans.err = fmt.Errorf("200 without a session cookie and a refresh token: %s", b)
	}
	return ans
}

// loginLost says why a login that answered 200 no longer works ("" if it
// does): its session cookie must authenticate and its refresh token refresh.
func loginLost(t *testing.T, in *instance, ans loginAnswer) string {
	t.Helper()
	var sess []*http.Cookie
	for _, c := range ans.cookies {
		if c.Name == "ts_session" {
			sess = append(sess, c)
		}
	}
	if r := in.do(t, req{path: "/auth/me", cookies: sess}); r.status != 200 {
		return fmt.Sprintf("session cookie: %d %s", r.status, r.body)
	}
	if r := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": ans.refresh}}); r.status != 200 {
		return fmt.Sprintf("refresh token: %d %s", r.status, r.body)
	}
	return ""
}
