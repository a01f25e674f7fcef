package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// With Redis down, bearer tokens are checked against the in-memory revocation
// mirror (the documented trade-off: availability of stateless tokens), while
// everything that needs the store fails closed with 503. A logout during the
// outage still takes effect on this instance, and once Redis is back (empty)
// the instance writes the revocation back, so an instance started afterwards
// refuses the token too.
func TestRedisOutageAndEmptyRestart(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	env := []string{"TOKENSHIFT_STORAGE_REDIS_URL=" + srv.URL(), "TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t),
		"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=300ms"}
	a := start(t, env...)
	lr := a.login(t, aliceEmail, alicePass, "web")
	access := lr.json(t)["access_token"].(string)
	other := a.login(t, opsEmail, opsPass, "mobile").json(t)["access_token"].(string)
	sess := lr.cookie("ts_session")

	srv.Stop()
	if r := a.do(t, req{path: "/auth/me", bearer: other}); r.status != 200 {
		t.Fatalf("bearer with Redis down: %d %s (the mirror should answer)", r.status, r.body)
	}
	expectProblem(t, a.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}), 503, "store_unavailable")
	expectProblem(t, a.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass}}), 503, "store_unavailable")
	// Logout cannot be stored: 503, but this instance applies it at once.
	expectProblem(t, a.do(t, req{method: "POST", path: "/auth/logout", bearer: access}), 503, "store_unavailable")
	expectProblem(t, a.do(t, req{path: "/auth/me", bearer: access}), 401, "invalid_token")

	srv.Restart() // empty: it keeps nothing on disk
	// A re-syncs on reconnect and writes its revocation back; B, started
	// later, loads it from the store.
	deadline := time.Now().Add(15 * time.Second)
	for {
		b := start(t, env...)
		r := b.do(t, req{path: "/auth/me", bearer: access})
		b.kill()
		if r.status == 401 {
			expectProblem(t, r, 401, "invalid_token")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an instance started after Redis restarted empty still accepts the revoked token: %d", r.status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := a.do(t, req{path: "/auth/me", bearer: other}); r.status != 200 {
		t.Fatalf("an unrelated token after the restart: %d", r.status)
	}
}
