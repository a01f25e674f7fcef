package legacy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

type expressFixtures struct {
	Cookies []struct{ ID, Secret, Cookie string }
}

// The cookies were made by the real cookie-signature package
// (testdata/gen_express.js), as express-session sets them.
func TestExpressCookieGolden(t *testing.T) {
	var fx expressFixtures
	readFixture(t, "express_fixtures.json", &fx)
	if len(fx.Cookies) == 0 {
		t.Fatal("no fixtures")
	}
	for _, c := range fx.Cookies {
		id, err := verifyExpressCookie(c.Cookie, [][]byte{[]byte("other"), []byte(c.Secret)})
		if err != nil || id != c.ID {
			t.Errorf("verify(%q) = %q, %v; want %q", c.Cookie, id, err, c.ID)
		}
		if got := SignExpressCookie(c.ID, c.Secret); got != c.Cookie {
			// QueryEscape and encodeURIComponent differ only on characters
			// a signature and these ids do not hold.
			t.Errorf("SignExpressCookie(%q) = %q, want %q", c.ID, got, c.Cookie)
		}
	}
}

func TestExpressCookieForged(t *testing.T) {
	secrets := [][]byte{[]byte("s1"), []byte("s0")}
	good := SignExpressCookie("abc", "s1")
	tests := []struct {
		name, cookie string
	}{
		{name: "other secret", cookie: SignExpressCookie("abc", "s2")},
		{name: "unsigned id", cookie: "abc"},
		{name: "no s: prefix", cookie: strings.Replace(good, "s%3A", "", 1)},
		{name: "id changed", cookie: strings.Replace(good, "abc", "abd", 1)},
		{name: "signature cut", cookie: good[:len(good)-1]},
		{name: "signature longer", cookie: good + "A"},
		{name: "padding kept", cookie: good + "%3D"},
		{name: "no dot", cookie: "s%3Aabc"},
		{name: "empty id", cookie: SignExpressCookie("", "s1")},
		{name: "bad percent", cookie: "s%3Aabc.%zz"},
		{name: "huge", cookie: "s%3A" + strings.Repeat("a", 5000) + ".x"},
		{name: "signed id with a space", cookie: SignExpressCookie("a b", "s1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := verifyExpressCookie(tc.cookie, secrets); !errors.Is(err, ErrForged) || !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("verify = %q, %v; want ErrForged", id, err)
			}
		})
	}
	// Secret rotation: the old secret still verifies, the order does not matter.
	for _, sec := range []string{"s1", "s0"} {
		if id, err := verifyExpressCookie(SignExpressCookie("abc", sec), secrets); err != nil || id != "abc" {
			t.Errorf("signed with %s: %q, %v", sec, id, err)
		}
	}
	// Unencoded, as some proxies or clients pass it.
	if id, err := verifyExpressCookie("s:"+signExpress("abc", []byte("s1")), secrets); err != nil || id != "abc" {
		t.Errorf("raw cookie: %q, %v", id, err)
	}
}

func expressOptions(h *redisHarness, clock *fakeclock.Clock, userPath string) Options {
	return Options{
		Name: "shop", Kind: KindExpress, Client: "web", UserID: userPath,
		Secrets: []string{"s1", "s0"}, Redis: h.opts(), Clock: clock.Now, Timeout: 500 * time.Millisecond,
	}
}

func TestExpressLoad(t *testing.T) {
	h := startRedis(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := fakeclock.New(now)
	expires := now.Add(2 * time.Hour)
	cookieJSON := fmt.Sprintf(`{"originalMaxAge":86400000,"expires":%q,"secure":false,"httpOnly":true,"path":"/"}`, expires.Format("2006-01-02T15:04:05.000Z"))

	tests := []struct {
		name     string
		userPath string
		data     string
		ttl      time.Duration // 0: no TTL
		wantUser string
		wantExp  time.Time
		wantIss  time.Time
		wantErr  error
	}{
		{name: "userId number, TTL earlier than cookie", userPath: "userId", data: `{"cookie":` + cookieJSON + `,"userId":42}`, ttl: time.Hour,
			wantUser: "42", wantExp: now.Add(time.Hour), wantIss: expires.Add(-24 * time.Hour)},
		// connect-redis's touch extends the TTL and leaves the stored
		// cookie.expires of the last save: the app still accepts the session.
		{name: "passport.user string, TTL extended past a stale cookie.expires", userPath: "passport.user", data: `{"cookie":` + cookieJSON + `,"passport":{"user":"u-9"}}`, ttl: 5 * time.Hour,
			wantUser: "u-9", wantExp: now.Add(5 * time.Hour), wantIss: expires.Add(-24 * time.Hour)},
		{name: "stored cookie.expires passed, TTL alive", userPath: "userId", data: `{"cookie":{"originalMaxAge":60000,"expires":"2026-12-04T11:59:59.000Z"},"userId":1}`, ttl: time.Hour,
			wantUser: "1", wantExp: now.Add(time.Hour), wantIss: time.Date(2026, 12, 4, 11, 58, 59, 0, time.UTC)},
		{name: "no TTL (disableTTL): cookie.expires bounds", userPath: "userId", data: `{"cookie":` + cookieJSON + `,"userId":3}`,
			wantUser: "3", wantExp: expires, wantIss: expires.Add(-24 * time.Hour)},
		{name: "no TTL, cookie.expires passed", userPath: "userId", data: `{"cookie":{"expires":"2026-12-04T11:59:59.000Z"},"userId":1}`, wantErr: ErrNotFound},
		{name: "browser-session cookie, no TTL", userPath: "userId", data: `{"cookie":{"originalMaxAge":null,"expires":null},"userId":"7"}`,
			wantUser: "7", wantExp: now.Add(noExpiryLife)},
		{name: "big integer id keeps its digits", userPath: "userId", data: `{"userId":123456789012345678901234}`, ttl: time.Hour,
			wantUser: "123456789012345678901234", wantExp: now.Add(time.Hour)},
		{name: "anonymous session", userPath: "userId", data: `{"cookie":` + cookieJSON + `}`, ttl: time.Hour, wantErr: ErrNotFound},
		{name: "logged out passport", userPath: "passport.user", data: `{"passport":{}}`, ttl: time.Hour, wantErr: ErrNotFound},
		{name: "null user", userPath: "userId", data: `{"userId":null}`, ttl: time.Hour, wantErr: ErrNotFound},
		{name: "not JSON", userPath: "userId", data: `userId=1`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "JSON array", userPath: "userId", data: `[1]`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "trailing garbage", userPath: "userId", data: `{"userId":1}{}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "user id object", userPath: "userId", data: `{"userId":{"id":1}}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "user id float", userPath: "userId", data: `{"userId":1.5}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "user id bool", userPath: "userId", data: `{"userId":true}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "cookie not an object", userPath: "userId", data: `{"cookie":"x","userId":1}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "expires a number", userPath: "userId", data: `{"cookie":{"expires":5},"userId":1}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "expires not a time", userPath: "userId", data: `{"cookie":{"expires":"tomorrow"},"userId":1}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "originalMaxAge a string", userPath: "userId", data: `{"cookie":{"originalMaxAge":"1"},"userId":1}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "deep", userPath: "userId", data: `{"userId":1,"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, ttl: time.Hour, wantErr: ErrMalformed},
		{name: "huge", userPath: "userId", data: `{"userId":1,"x":"` + strings.Repeat("a", MaxDataBytes) + `"}`, ttl: time.Hour, wantErr: ErrMalformed},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := mustSource(t, expressOptions(h, clock, tc.userPath))
			id := fmt.Sprintf("sid%02dAbCdEfGhIjKlMnOpQrStUvWxYz", i)
			if err := h.admin.Set(ctx, "sess:"+id, tc.data, tc.ttl).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := src.Parse(cookieJar(map[string]string{"connect.sid": SignExpressCookie(id, "s0")}))
			if err != nil || got != id {
				t.Fatalf("Parse = %q, %v", got, err)
			}
			sess, err := src.Load(ctx, id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Load err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), tc.data[:min(len(tc.data), 12)]) && len(tc.data) > 12 {
					t.Errorf("error quotes the session data: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if sess.UserID != tc.wantUser || sess.ID != id || sess.Source != "shop" || sess.Client != "web" {
				t.Errorf("session = %+v", sess)
			}
			// Redis reports the TTL in milliseconds, counted from the SET.
			if d := sess.ExpiresAt.Sub(tc.wantExp); d > 0 || d < -2*time.Second {
				t.Errorf("ExpiresAt = %v, want %v", sess.ExpiresAt, tc.wantExp)
			}
			if !sess.IssuedAt.Equal(tc.wantIss) {
				t.Errorf("IssuedAt = %v, want %v", sess.IssuedAt, tc.wantIss)
			}
		})
	}

	t.Run("absent", func(t *testing.T) {
		src := mustSource(t, expressOptions(h, clock, "userId"))
		if _, err := src.Load(ctx, "nosuchsession"); !errors.Is(err, ErrNotFound) || !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key of another type", func(t *testing.T) {
		src := mustSource(t, expressOptions(h, clock, "userId"))
		h.admin.SAdd(ctx, "sess:aset", "x")
		if _, err := src.Load(ctx, "aset"); !errors.Is(err, ErrMalformed) {
			t.Fatalf("err = %v", err)
		}
	})
}

// A cookie that does not verify is refused by Parse, and the middleware
// never calls Load: Redis sees no command at all.
func TestExpressForgedNeverTouchesStore(t *testing.T) {
	h := startRedis(t)
	src := mustSource(t, expressOptions(h, fakeclock.New(time.Now()), "userId"))
	h.admin.Set(context.Background(), "sess:victim", `{"userId":1}`, time.Hour)
	before := h.commandCalls(t)
	forged := []string{
		SignExpressCookie("victim", "guess"),
		"s%3Avictim.AAAA",
		"victim",
		"s%3Avictim",
	}
	for _, c := range forged {
		if _, err := src.Parse(cookieJar(map[string]string{"connect.sid": c})); !errors.Is(err, ErrForged) {
			t.Errorf("Parse(%q) err = %v, want ErrForged", c, err)
		}
	}
	after := h.commandCalls(t)
	if n := sessionCommands(after) - sessionCommands(before); n != 0 {
		t.Fatalf("forged cookies sent %d session commands to Redis (%v -> %v)", n, before, after)
	}
	// The counter works: one real Load is one GET and one PTTL.
	id, err := src.Parse(cookieJar(map[string]string{"connect.sid": SignExpressCookie("victim", "s1")}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n := sessionCommands(h.commandCalls(t)) - sessionCommands(after); n != 2 {
		t.Fatalf("one Load sent %d commands, want 2 (GET, PTTL in one pipeline)", n)
	}
}

func TestExpressEndAndNoCookie(t *testing.T) {
	h := startRedis(t)
	ctx := context.Background()
	src := mustSource(t, expressOptions(h, fakeclock.New(time.Now()), "userId"))
	if _, err := src.Parse(cookieJar(nil)); !errors.Is(err, ErrNoCookie) {
		t.Fatalf("no cookie: %v", err)
	}
	h.admin.Set(ctx, "sess:gone", `{"userId":1}`, time.Hour)
	if err := src.End(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if n := h.admin.Exists(ctx, "sess:gone").Val(); n != 0 {
		t.Fatal("End left the key")
	}
	if err := src.End(ctx, "gone"); err != nil {
		t.Fatalf("End is not idempotent: %v", err)
	}
	if _, err := src.Load(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after End: %v", err)
	}
}

// A Redis that does not answer costs one read timeout, then an error
// wrapping auth.ErrUnavailable (503 store_unavailable), not ErrNotFound.
func TestExpressUnavailable(t *testing.T) {
	h := startRedis(t)
	ctx := context.Background()
	src := mustSource(t, expressOptions(h, fakeclock.New(time.Now()), "userId"))
	h.admin.Set(ctx, "sess:x", `{"userId":1}`, time.Hour)
	if _, err := src.Load(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	h.srv.Pause()
	defer h.srv.Resume()
	start := time.Now()
	_, err := src.Load(ctx, "x")
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("paused Redis: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want about the 300ms read timeout", d)
	}
	if err := src.Ping(ctx); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("Ping: %v", err)
	}
	if err := src.End(ctx, "x"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("End: %v", err)
	}
}

// The session Redis may be a Cluster (redis+cluster://, as for storage):
// the GET+PTTL pipeline is on one key, so one node answers it.
func TestExpressCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	ctx := context.Background()
	admin := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer admin.Close()
	src := mustSource(t, Options{Name: "shop", Kind: KindExpress, Client: "web", UserID: "userId",
		Secrets: []string{"s1"}, Redis: store.RedisOptions{URL: c.URL()}})
	// Ids on different masters.
	ids := map[int]string{}
	for i := 0; len(ids) < 3 && i < 1000; i++ {
		id := fmt.Sprintf("cluster-%d", i)
		ids[c.MasterOf("sess:"+id).Port] = id
	}
	for _, id := range ids {
		if err := admin.Set(ctx, "sess:"+id, `{"userId":"`+id+`"}`, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := src.Parse(cookieJar(map[string]string{"connect.sid": SignExpressCookie(id, "s1")}))
		if err != nil {
			t.Fatal(err)
		}
		sess, err := src.Load(ctx, got)
		if err != nil || sess.UserID != id {
			t.Fatalf("Load %s: %+v, %v", id, sess, err)
		}
		if err := src.End(ctx, got); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Load(ctx, got); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after End: %v", err)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("ids on %d masters, want 3", len(ids))
	}
}
