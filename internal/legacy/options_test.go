package legacy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

func TestOptionsValidation(t *testing.T) {
	redisOK := store.RedisOptions{URL: "redis://127.0.0.1:6379/1"}
	express := func(mod func(*Options)) Options {
		o := Options{Name: "shop", Kind: KindExpress, Client: "web", UserID: "userId", Secrets: []string{"s1"}, Redis: redisOK}
		mod(&o)
		return o
	}
	tests := []struct {
		name      string
		o         Options
		wantField string // "" = valid
	}{
		{name: "express ok", o: express(func(*Options) {})},
		{name: "bad name", o: express(func(o *Options) { o.Name = "Shop!" }), wantField: "name"},
		{name: "no client", o: express(func(o *Options) { o.Client = "" }), wantField: "client"},
		{name: "no kind", o: express(func(o *Options) { o.Kind = "" }), wantField: "kind"},
		{name: "unknown kind", o: express(func(o *Options) { o.Kind = "rails" }), wantField: "kind"},
		{name: "express without secrets", o: express(func(o *Options) { o.Secrets = nil }), wantField: "secrets"},
		{name: "express empty secret", o: express(func(o *Options) { o.Secrets = []string{"a", ""} }), wantField: "secrets"},
		{name: "express without user_id", o: express(func(o *Options) { o.UserID = "" }), wantField: "user_id"},
		{name: "bad user_id path", o: express(func(o *Options) { o.UserID = "a..b" }), wantField: "user_id"},
		{name: "express without redis", o: express(func(o *Options) { o.Redis.URL = "" }), wantField: "redis_url"},
		{name: "bad redis url", o: express(func(o *Options) { o.Redis.URL = "http://u:hunter2@x" }), wantField: "redis_url"},
		{name: "bad cookie name", o: express(func(o *Options) { o.Cookie = "a b" }), wantField: "cookie"},
		{name: "negative timeout", o: express(func(o *Options) { o.Timeout = -1 }), wantField: "timeout"},
		{name: "php ok", o: Options{Name: "p", Kind: KindPHP, Client: "web", UserID: "uid", Redis: redisOK}},
		{name: "php bad handler", o: Options{Name: "p", Kind: KindPHP, Client: "web", UserID: "uid", Redis: redisOK, SerializeHandler: "igbinary"}, wantField: "serialize_handler"},
		{name: "django ok", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://u:hunter2@h/db"}},
		{name: "django mysql ok", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "u:hunter2@tcp(h:3306)/db"}},
		{name: "django no key", o: Options{Name: "d", Kind: KindDjango, Client: "web", DSN: "postgres://h/db"}, wantField: "secret_key"},
		{name: "django no dsn", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k"}, wantField: "dsn"},
		{name: "django bad dsn", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://u:hunter2@h:notaport/db"}, wantField: "dsn"},
		{name: "django unknown dsn shape", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "hunter2"}, wantField: "driver"},
		{name: "django table injection", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db", Table: "s; DROP TABLE x"}, wantField: "table"},
		{name: "django schema.table", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db", Table: "app.django_session"}},
		{name: "callout ok", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://app/me", ForwardCookies: []string{"JSESSIONID"}, Subject: "id"}},
		{name: "callout no url", o: Options{Name: "c", Kind: KindCallout, Client: "web", ForwardCookies: []string{"J"}, Subject: "id"}, wantField: "url"},
		{name: "callout relative url", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "/me", ForwardCookies: []string{"J"}, Subject: "id"}, wantField: "url"},
		{name: "callout url credentials", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://u:hunter2@app/me", ForwardCookies: []string{"J"}, Subject: "id"}, wantField: "url"},
		{name: "callout no cookies", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://app/me", Subject: "id"}, wantField: "forward_cookies"},
		{name: "callout no subject", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://app/me", ForwardCookies: []string{"J"}}, wantField: "subject"},
		{name: "callout cache too long", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://app/me", ForwardCookies: []string{"J"}, Subject: "id", CacheTTL: 2 * time.Second}, wantField: "cache_ttl"},
		{name: "express cache too long", o: Options{Name: "e", Kind: KindExpress, Client: "web", UserID: "userId", Secrets: []string{"s"}, Redis: store.RedisOptions{URL: "redis://127.0.0.1:6379"}, CacheTTL: 1001 * time.Millisecond}, wantField: "cache_ttl"},
		{name: "django negative cache", o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db", CacheTTL: -time.Second}, wantField: "cache_ttl"},
		{name: "callout bad roles path", o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://app/me", ForwardCookies: []string{"J"}, Subject: "id", Roles: "a b"}, wantField: "roles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.o)
			s, newErr := New(tc.o)
			if s != nil {
				_ = s.Close()
			}
			if tc.wantField == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Check: %v, New: %v", err, newErr)
				}
				return
			}
			for _, e := range []error{err, newErr} {
				var oe *OptionError
				if !errors.As(e, &oe) || oe.Field != tc.wantField || !errors.Is(e, ErrOptions) {
					t.Fatalf("err = %v, want an OptionError on %s", e, tc.wantField)
				}
				if strings.Contains(e.Error(), "hunter2") {
					t.Fatalf("error quotes a secret: %v", e)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	for _, tc := range []struct {
		o                 Options
		cookie, keyPrefix string
	}{
		{o: Options{Name: "e", Kind: KindExpress, Client: "web", UserID: "u", Secrets: []string{"s"}, Redis: store.RedisOptions{URL: "redis://h"}}, cookie: "connect.sid", keyPrefix: "sess:"},
		{o: Options{Name: "p", Kind: KindPHP, Client: "web", UserID: "u", Redis: store.RedisOptions{URL: "redis://h"}}, cookie: "PHPSESSID", keyPrefix: "PHPREDIS_SESSION:"},
		{o: Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db"}, cookie: "sessionid"},
		{o: Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://a/me", ForwardCookies: []string{"SID", "X"}, UserID: "id"}, cookie: "SID"},
	} {
		n, err := tc.o.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if n.Cookie != tc.cookie || n.KeyPrefix != tc.keyPrefix || n.Timeout != DefaultTimeout {
			t.Errorf("%s: cookie %q prefix %q timeout %v", tc.o.Kind, n.Cookie, n.KeyPrefix, n.Timeout)
		}
		s := mustSource(t, tc.o)
		if s.Cookies()[0] != tc.cookie || s.Kind() != tc.o.Kind || s.Name() != tc.o.Name || s.Client() != "web" {
			t.Errorf("%s: %v %s %s", tc.o.Kind, s.Cookies(), s.Kind(), s.Name())
		}
	}
	if n, _ := (Options{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db"}).withDefaults(); n.Table != "django_session" || n.UserID != "_auth_user_id" || n.Driver != "pgx" {
		t.Errorf("django defaults: %+v", n)
	}
	if n, _ := (Options{Name: "c", Kind: KindCallout, Client: "web", URL: "http://a/me", ForwardCookies: []string{"S"}, UserID: "id"}).withDefaults(); n.CacheTTL != time.Second || n.Subject != "id" {
		t.Errorf("callout defaults: %+v", n)
	}
	// cache_ttl is every kind's: 1s by default, CacheOff (cache_ttl: 0) off.
	for _, o := range []Options{
		{Name: "d", Kind: KindDjango, Client: "web", SecretKey: "k", DSN: "postgres://h/db"},
		{Name: "c", Kind: KindCallout, Client: "web", URL: "http://a/me", ForwardCookies: []string{"S"}, UserID: "id"},
	} {
		if n, _ := o.withDefaults(); n.CacheTTL != time.Second {
			t.Errorf("%s cache_ttl default: %v", o.Kind, n.CacheTTL)
		}
		o.CacheOff, o.CacheTTL = true, 0
		if n, _ := o.withDefaults(); n.CacheTTL != 0 {
			t.Errorf("%s cache_ttl off: %v", o.Kind, n.CacheTTL)
		}
	}
}

func TestIDHash(t *testing.T) {
	a, b := IDHash("shop", "abc"), IDHash("other", "abc")
	if a == b || len(a) != 32 || strings.Contains(a, "abc") || IDHash("shop", "abc") != a {
		t.Fatalf("IDHash: %q %q", a, b)
	}
}
