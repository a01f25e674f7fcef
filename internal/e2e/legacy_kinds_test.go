package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/legacyapps"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// A Django project's database sessions: tokenshift reads auth_user through
// the SQL user store (Django's PBKDF2 hashes, users.sql.query_by_id) and
// django_session, accepts the sessionid cookie, and follows Django's rule
// that a password change ends the user's sessions (_auth_user_hash).
func TestLegacyDjango(t *testing.T) {
	t.Parallel()
	d := legacyapps.StartDjango(t, legacyapps.DjangoOptions{
		Users:            []legacyapps.DjangoUser{{Username: "alice", Password: "pw-alice-dj", Email: "alice@example.com"}},
		SessionCookieAge: time.Hour,
	})
	cfg := legacyConfig(t, `    - name: admin
      kind: django
      client: web
      secret_key: "`+d.SecretKey+`"
      dsn: "`+d.DSN+`"
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg,
		"TOKENSHIFT_USERS_SQL_DRIVER=pgx", "TOKENSHIFT_USERS_SQL_DSN="+d.DSN,
		"TOKENSHIFT_USERS_SQL_QUERY=SELECT id::text, email, password, CASE WHEN is_superuser THEN 'admin' ELSE 'user' END FROM auth_user WHERE lower(email) = $1 AND is_active",
		"TOKENSHIFT_USERS_SQL_QUERY_BY_ID=SELECT id::text, email, password, CASE WHEN is_superuser THEN 'admin' ELSE 'user' END FROM auth_user WHERE id::text = $1 AND is_active")
	id := d.UserIDs["alice"]
	c := d.Login(t, "alice", "pw-alice-dj")
	expectLegacyUser(t, legacyMe(t, in, c), id, "admin")
	if m := legacyMe(t, in, c).json(t); m["email"] != "alice@example.com" {
		t.Fatalf("email from auth_user = %v", m["email"])
	}
	// The same user logs in to tokenshift with the Django password: one
	// user store for both.
	in.login(t, "alice@example.com", "pw-alice-dj", "web")

	// A forged id format is refused.
	expectProblem(t, legacyMe(t, in, &http.Cookie{Name: "sessionid", Value: "not-a-django-key!"}), 401, "invalid_session")

	// A password change in Django ends the session, here and in Django.
	// tokenshift is asked first: Django deletes the row when it sees the
	// stale hash, and the row must still be there to prove the hash rule.
	// tokenshift sees it at the session's next store read, within cache_ttl
	// (default 1s) of the near cache.
	d.ChangePassword(t, legacyapps.PasswordChange{Username: "alice", Password: "pw-alice-dj-2"})
	eventually(t, "a password changed in Django refused by tokenshift", func() bool { return legacyMe(t, in, c).status == 401 })
	expectProblem(t, legacyMe(t, in, c), 401, "invalid_session")
	if st, _ := d.Me(t, c); st == 200 {
		t.Fatal("Django still accepts the session after the password change")
	}
	expectLegacyUser(t, legacyMe(t, in, d.Login(t, "alice", "pw-alice-dj-2")), id, "admin")
}

// A PHP app with the phpredis session handler: PHPSESSID accepted.
func TestLegacyPHP(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	users := map[string]string{"u-alice": "alice-php-pw"}
	p := legacyapps.StartPHP(t, legacyapps.PHPOptions{RedisURL: rs.URL(), Users: users})
	cfg := legacyConfig(t, `    - name: forum
      kind: php
      client: web
      user_id: user_id
      redis_url: `+rs.URL()+`
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	c := p.Login(t, "u-alice", users["u-alice"])
	expectLegacyUser(t, legacyMe(t, in, c), "u-alice", "forum")
	expectProblem(t, legacyMe(t, in, &http.Cookie{Name: "PHPSESSID", Value: "bad id!"}), 401, "invalid_session")
	p.Logout(t, c)
	// Within cache_ttl (default 1s): the near cache is not told of it.
	eventually(t, "the PHP app's logout refused by tokenshift", func() bool { return legacyMe(t, in, c).status == 401 })
	expectProblem(t, legacyMe(t, in, c), 401, "invalid_session")
}

// Any other stack through a callout: the endpoint's answer is cached at
// most a second, so a session the legacy app ends is refused within it.
func TestLegacyCallout(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	live := map[string]string{"jsess-alice-1": "u-alice"}
	calls := 0
	legacyApp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		c, err := r.Cookie("JSESSIONID")
		if err != nil || live[c.Value] == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"id": live[c.Value]}})
	}))
	t.Cleanup(legacyApp.Close)
	cfg := legacyConfig(t, `    - name: billing
      kind: callout
      client: web
      url: `+legacyApp.URL+`/session
      forward_cookies: [JSESSIONID]
      subject: user.id
      cache_ttl: 1s
      timeout: 500ms
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	c := &http.Cookie{Name: "JSESSIONID", Value: "jsess-alice-1"}
	for range 3 {
		expectLegacyUser(t, legacyMe(t, in, c), "u-alice", "billing")
	}
	mu.Lock()
	if calls < 1 || calls > 3 {
		t.Errorf("%d callouts for 3 requests", calls)
	}
	delete(live, "jsess-alice-1") // the legacy app logs the session out
	mu.Unlock()
	ended := time.Now()
	for {
		r := legacyMe(t, in, c)
		if r.status == 401 {
			break
		}
		if time.Since(ended) > 1500*time.Millisecond {
			t.Fatalf("still accepted %v after the legacy app ended it: %d %s", time.Since(ended), r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectProblem(t, legacyMe(t, in, &http.Cookie{Name: "JSESSIONID", Value: "unknown"}), 401, "invalid_session")
}
