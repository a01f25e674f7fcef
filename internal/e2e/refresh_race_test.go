package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// TestRefreshRaceIsReuse (issue 10, item 2): two refreshes of one token at
// once. Exactly one gets a new pair; the other is reuse (RFC 9700 §4.14.2),
// so the whole login dies: the winner's new tokens and the session cookie.
// Before the consume-and-mark step was atomic, the loser could find neither
// the token nor its used marker and got "not valid", and the family lived.
func TestRefreshRaceIsReuse(t *testing.T) {
	env := []string{"TOKENSHIFT_RATELIMIT_PER_ACCOUNT=1000", "TOKENSHIFT_RATELIMIT_PER_IP=1000"}
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		refreshRace(t, start(t, env...))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		refreshRace(t, start(t, append(env, "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL())...))
	})
}

func refreshRace(t *testing.T, in *instance) {
	const trials = 40
	failed := 0
	for trial := range trials {
		lr := in.login(t, aliceEmail, alicePass, "web")
		sess := lr.cookie("ts_session")
		refresh, _ := lr.json(t)["refresh_token"].(string)
		if sess == nil || refresh == "" {
			t.Fatalf("web login without session cookie or refresh token: %s", lr.body)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			res   [2]*resp
		)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh}})
			}()
		}
		close(start)
		wg.Wait()

		var winner, loser *resp
		for _, r := range res {
			if r.status == 200 {
				winner = r
			} else {
				loser = r
			}
		}
		if winner == nil || loser == nil {
			failed++
			t.Errorf("trial %d: want one 200 and one 401; got %d %s and %d %s", trial, res[0].status, res[0].body, res[1].status, res[1].body)
			continue
		}
		detail, _ := loser.json(t)["detail"].(string)
		if loser.status != 401 || !strings.Contains(detail, "revoked") {
			failed++
			t.Errorf("trial %d: the loser got %d %s; want 401 with the reuse answer (revoked)", trial, loser.status, loser.body)
			continue
		}
		expectProblem(t, loser, 401, "invalid_token")
		// The reuse ended the login: the pair the winner got is dead, and so
		// is the session cookie of the login.
		w := winner.json(t)
		newAccess, newRefresh := w["access_token"].(string), w["refresh_token"].(string)
		dead := []struct {
			what string
			r    *resp
			code string
		}{
			{what: "the winner's new refresh token", code: "invalid_token",
				r: in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": newRefresh}})},
			{what: "the winner's new access token", code: "invalid_token",
				r: in.do(t, req{path: "/auth/me", bearer: newAccess})},
			{what: "the session cookie", code: "invalid_session",
				r: in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}})},
		}
		for _, d := range dead {
			if d.r.status != 401 {
				failed++
				t.Errorf("trial %d: %s after the reuse: %d %s; want 401 %s", trial, d.what, d.r.status, d.r.body, d.code)
				break
			}
			expectProblem(t, d.r, 401, d.code)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d refresh races did not end as one winner and a revoked login", failed, trials)
	}
}

// TestRefreshFamilyAbsoluteLifetime (issue 10, item 9): refreshing renews the
// refresh token for jwt.refresh_ttl but never past jwt.refresh_absolute_ttl
// after the login; then the refresh is refused and only a new login helps.
func TestRefreshFamilyAbsoluteLifetime(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_JWT_ACCESS_TTL=1s", "TOKENSHIFT_JWT_REFRESH_TTL=4s", "TOKENSHIFT_JWT_REFRESH_ABSOLUTE_TTL=6s")
	refresh := in.login(t, aliceEmail, alicePass, "mobile").json(t)["refresh_token"].(string)
	// The server's login instant is at most this, so the deadline is at
	// most login + 6s.
	login := time.Now()
	steps := []struct {
		at            time.Duration // since the login
		wantExpiresIn float64       // refresh_expires_in, seconds
	}{
		{at: 2 * time.Second, wantExpiresIn: 4},
		{at: 4 * time.Second, wantExpiresIn: 2}, // capped: 4s would pass the deadline
	}
	for _, st := range steps {
		time.Sleep(time.Until(login.Add(st.at)))
		r := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh}})
		if r.status != 200 {
			t.Fatalf("refresh %v after the login: %d %s", st.at, r.status, r.body)
		}
		b := r.json(t)
		// Whole seconds rounded up, and the request took some time.
		if got := b["refresh_expires_in"].(float64); got > st.wantExpiresIn || got < st.wantExpiresIn-1 {
			t.Fatalf("refresh %v after the login: refresh_expires_in %v; want about %v", st.at, got, st.wantExpiresIn)
		}
		refresh = b["refresh_token"].(string)
	}
	time.Sleep(time.Until(login.Add(6*time.Second + 300*time.Millisecond)))
	expectProblem(t, in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": refresh}}), 401, "invalid_token")
	if r := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": in.login(t, aliceEmail, alicePass, "mobile").json(t)["refresh_token"].(string)}}); r.status != 200 {
		t.Fatalf("refresh after a new login: %d %s", r.status, r.body)
	}
}
