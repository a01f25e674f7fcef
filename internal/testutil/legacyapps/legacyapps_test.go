package legacyapps

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func redisClient(t *testing.T, s *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// expressSign is cookie-signature's sign: "s:" + id + "." + base64(HMAC-SHA256) without padding.
func expressSign(id, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(id))
	return "s:" + id + "." + base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// TestExpress logs in through the real Express app for both layouts and
// checks where the session lands (sess:<id> JSON, user id at the layout's
// path, TTL from maxAge), that the first secret signs and every one
// verifies, and that its logout deletes the session.
func TestExpress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		layout  string
		numeric bool
		prefix  string
		userID  string
		wantID  any // the id as stored in the JSON
		path    []string
	}{
		{name: "userId", layout: LayoutUserID, userID: "u-1", wantID: "u-1", path: []string{"userId"}},
		{name: "passport numeric", layout: LayoutPassport, numeric: true, prefix: "shop:", userID: "42", wantID: float64(42), path: []string{"passport", "user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := redistest.Start(t)
			rc := redisClient(t, r)
			app := StartExpress(t, ExpressOptions{
				RedisURL: r.URL(), Secrets: []string{"s1", "s0"}, Layout: tc.layout,
				Prefix: tc.prefix, NumericIDs: tc.numeric, MaxAge: time.Hour,
				Users: map[string]string{tc.userID: "pw", "other": "pw2"},
			})
			prefix := tc.prefix
			if prefix == "" {
				prefix = "sess:"
			}
			if c, status := app.TryLogin(t, tc.userID, "wrong"); c != nil || status != http.StatusUnauthorized {
				t.Fatalf("wrong password: cookie %v, status %d; want none, 401", c, status)
			}
			c := app.Login(t, tc.userID, "pw")
			if c.Name != "connect.sid" {
				t.Fatalf("cookie name %q", c.Name)
			}
			if status, id := app.Me(t, c); status != http.StatusOK || id != tc.userID {
				t.Fatalf("/me: %d %q, want 200 %q", status, id, tc.userID)
			}

			raw, err := url.QueryUnescape(c.Value)
			if err != nil {
				t.Fatal(err)
			}
			id, _, ok := strings.Cut(strings.TrimPrefix(raw, "s:"), ".")
			if !ok || raw != expressSign(id, "s1") {
				t.Fatalf("cookie %q is not s:<id>.<HMAC-SHA256(first secret)>", raw)
			}
			// The second secret still verifies: what a rotation relies on.
			old := &http.Cookie{Name: c.Name, Value: url.QueryEscape(expressSign(id, "s0"))}
			if status, got := app.Me(t, old); status != http.StatusOK || got != tc.userID {
				t.Fatalf("/me with the cookie signed by the old secret: %d %q", status, got)
			}
			forged := &http.Cookie{Name: c.Name, Value: url.QueryEscape(expressSign(id, "nope"))}
			if status, _ := app.Me(t, forged); status != http.StatusUnauthorized {
				t.Fatalf("/me with a forged signature: %d, want 401", status)
			}

			ctx := context.Background()
			data, err := rc.Get(ctx, prefix+id).Bytes()
			if err != nil {
				t.Fatalf("GET %s%s: %v", prefix, id, err)
			}
			var sess map[string]any
			if err := json.Unmarshal(data, &sess); err != nil {
				t.Fatalf("session data is not JSON: %q", data)
			}
			var at any = sess
			for _, k := range tc.path {
				m, _ := at.(map[string]any)
				at = m[k]
			}
			if at != tc.wantID {
				t.Fatalf("session %s: %v at %v, want %#v", data, at, tc.path, tc.wantID)
			}
			if _, ok := sess["cookie"].(map[string]any)["expires"].(string); !ok {
				t.Fatalf("session %s has no cookie.expires", data)
			}
			if ttl := rc.TTL(ctx, prefix+id).Val(); ttl < 59*time.Minute || ttl > time.Hour {
				t.Fatalf("TTL of the session key %s, want about MaxAge (1h)", ttl)
			}

			app.Logout(t, c)
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Fatalf("/me after logout: %d, want 401", status)
			}
			if n := rc.Exists(ctx, prefix+id).Val(); n != 0 {
				t.Fatal("the session key is still in Redis after logout")
			}
		})
	}
}

// TestPHP logs in through the real PHP app with phpredis sessions, for both
// serialize handlers, and checks PHPREDIS_SESSION:<id> and its logout.
func TestPHP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		handler   string
		numeric   bool
		prefix    string
		wantPiece string // in the stored data
	}{
		{name: "php", handler: "", wantPiece: `user_id|s:2:"u1";`},
		{name: "php_serialize numeric", handler: "php_serialize", numeric: true, prefix: "APP:", wantPiece: `s:7:"user_id";i:1;`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := redistest.Start(t)
			rc := redisClient(t, r)
			app := StartPHP(t, PHPOptions{
				RedisURL: r.URL(), SerializeHandler: tc.handler, KeyPrefix: tc.prefix,
				NumericIDs: tc.numeric, MaxLifetime: 30 * time.Minute,
				Users: map[string]string{"u1": "pw1", "1": "pw1"},
			})
			user := "u1"
			if tc.numeric {
				user = "1"
			}
			prefix := tc.prefix
			if prefix == "" {
				prefix = "PHPREDIS_SESSION:"
			}
			if c, status := app.TryLogin(t, user, "wrong"); c != nil || status != http.StatusUnauthorized {
				t.Fatalf("wrong password: cookie %v, status %d; want none, 401", c, status)
			}
			c := app.Login(t, user, "pw1")
			if c.Name != "PHPSESSID" {
				t.Fatalf("cookie name %q", c.Name)
			}
			if status, id := app.Me(t, c); status != http.StatusOK || id != user {
				t.Fatalf("/me: %d %q, want 200 %q", status, id, user)
			}
			ctx := context.Background()
			data, err := rc.Get(ctx, prefix+c.Value).Result()
			if err != nil {
				t.Fatalf("GET %s%s: %v", prefix, c.Value, err)
			}
			if !strings.Contains(data, tc.wantPiece) {
				t.Fatalf("session data %q lacks %q", data, tc.wantPiece)
			}
			if ttl := rc.TTL(ctx, prefix+c.Value).Val(); ttl < 29*time.Minute || ttl > 30*time.Minute {
				t.Fatalf("TTL of the session key %s, want MaxLifetime (30m)", ttl)
			}
			// use_strict_mode: an id the store does not know is not adopted.
			if status, _ := app.Me(t, &http.Cookie{Name: "PHPSESSID", Value: "abcdefabcdefabcdefabcdefab"}); status != http.StatusUnauthorized {
				t.Fatalf("/me with an unknown id: %d, want 401", status)
			}
			app.Logout(t, c)
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Fatalf("/me after logout: %d, want 401", status)
			}
			if n := rc.Exists(ctx, prefix+c.Value).Val(); n != 0 {
				t.Fatal("the session key is still in Redis after logout")
			}
		})
	}
}

// djangoSessionData reads session_data of key from django_session and
// decodes its payload (signing.dumps: [.]base64url(zlib?(json)):ts:sig; the
// signature is not checked here, only where the data is).
func djangoSessionData(t *testing.T, d *DjangoApp, key string) (map[string]any, time.Time, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, d.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var data string
	var expire time.Time
	err = c.QueryRow(ctx, `SELECT session_data, expire_date FROM django_session WHERE session_key = $1`, key).Scan(&data, &expire)
	if err == pgx.ErrNoRows {
		return nil, time.Time{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	payload, _, _ := strings.Cut(data, ":")
	compressed := strings.HasPrefix(payload, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(payload, "."))
	if err != nil {
		t.Fatalf("session_data %q: %v", data, err)
	}
	if compressed {
		zr, err := zlib.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("session payload %q: %v", b, err)
	}
	return m, expire, true
}

// TestDjango logs in through Django's own LoginView (CSRF dance), checks the
// django_session row, and that a password change ends the user's other
// sessions in Django (update_session_auth_hash keeps only the changer's).
func TestDjango(t *testing.T) {
	t.Parallel()
	d := StartDjango(t, DjangoOptions{
		Users:            []DjangoUser{{Username: "alice", Password: "pw-alice", Email: "alice@example.com"}},
		SessionCookieAge: time.Hour,
	})
	alice := d.UserIDs["alice"]
	if alice == "" || d.SecretKey == "" || !strings.Contains(d.DSN, d.Database) {
		t.Fatalf("DjangoApp: ids %v, secret %q, DSN %q", d.UserIDs, d.SecretKey, d.DSN)
	}
	if c, _ := d.TryLogin(t, "alice", "wrong"); c != nil {
		t.Fatal("wrong password: got a session cookie")
	}
	c1 := d.Login(t, "alice", "pw-alice")
	c2 := d.Login(t, "alice", "pw-alice")
	if c1.Name != "sessionid" || c1.Value == c2.Value {
		t.Fatalf("cookies %v %v", c1, c2)
	}
	for _, c := range []*http.Cookie{c1, c2} {
		if status, id := d.Me(t, c); status != http.StatusOK || id != alice {
			t.Fatalf("/me: %d %q, want 200 %q", status, id, alice)
		}
	}
	sess, expire, ok := djangoSessionData(t, d, c1.Value)
	if !ok {
		t.Fatal("no django_session row for the cookie")
	}
	if sess["_auth_user_id"] != alice || sess["_auth_user_hash"] == nil {
		t.Fatalf("session data %v: want _auth_user_id %q and _auth_user_hash", sess, alice)
	}
	if left := time.Until(expire); left < 59*time.Minute || left > 61*time.Minute {
		t.Fatalf("expire_date in %s, want SessionCookieAge (1h)", left)
	}

	// The user changes their password keeping their own session: c1 lives on
	// under a new key, c2 ends.
	c1b := d.ChangePassword(t, PasswordChange{Cookie: c1, Password: "pw-2", KeepSession: true})
	if c1b == nil {
		t.Fatal("update_session_auth_hash set no new session cookie")
	}
	if status, _ := d.Me(t, c1b); status != http.StatusOK {
		t.Fatalf("/me with the changer's new cookie: %d", status)
	}
	if status, _ := d.Me(t, c2); status != http.StatusUnauthorized {
		t.Fatalf("/me with another session after a password change: %d, want 401", status)
	}
	// A reset by someone else ends every session.
	d.ChangePassword(t, PasswordChange{Username: "alice", Password: "pw-3"})
	if status, _ := d.Me(t, c1b); status != http.StatusUnauthorized {
		t.Fatalf("/me after a password reset: %d, want 401", status)
	}

	bob := d.AddUser(t, DjangoUser{Username: "bob", Password: "pw-bob"})
	c3 := d.Login(t, "bob", "pw-bob")
	if status, id := d.Me(t, c3); status != http.StatusOK || id != bob {
		t.Fatalf("/me of bob: %d %q, want 200 %q", status, id, bob)
	}
	d.Logout(t, c3)
	if status, _ := d.Me(t, c3); status != http.StatusUnauthorized {
		t.Fatalf("/me after logout: %d, want 401", status)
	}
	if _, _, ok := djangoSessionData(t, d, c3.Value); ok {
		t.Fatal("the django_session row is still there after logout")
	}
}
