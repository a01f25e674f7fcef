package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func expressSource() LegacySourceConfig {
	return LegacySourceConfig{Name: "shop", Kind: "express", Client: "web", Cookie: "connect.sid", UserID: "userId",
		Secrets: []string{"sig-s3cret-1", "sig-s3cret-0"}, RedisURL: "redis://:redis-s3cret@127.0.0.1:6379/1"}
}

func djangoSource() LegacySourceConfig {
	return LegacySourceConfig{Name: "admin", Kind: "django", Client: "web", SecretKey: "dj-s3cret",
		DSN: "postgres://app:pg-s3cret@db:5432/django"}
}

func TestValidateLegacy(t *testing.T) {
	tests := []struct {
		name    string
		sources func() []LegacySourceConfig
		sql     bool   // users.sql set (without query_by_id)
		wantKey string // "" = valid
		wantVal string
	}{
		{name: "sql store without query_by_id", sql: true, sources: func() []LegacySourceConfig { return []LegacySourceConfig{expressSource()} }, wantKey: "users.sql.query_by_id"},
		{name: "none", sources: func() []LegacySourceConfig { return nil }},
		{name: "express and django", sources: func() []LegacySourceConfig { return []LegacySourceConfig{expressSource(), djangoSource()} }},
		{name: "no secrets", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Secrets = nil
			return []LegacySourceConfig{djangoSource(), s}
		}, wantKey: "legacy.sources[1].secrets"},
		{name: "unregistered client", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Client = "kiosk"
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].client", wantVal: "kiosk"},
		{name: "own session cookie", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Cookie = "ts_session"
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].cookie", wantVal: "ts_session"},
		{name: "own cookie with host prefix", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Cookie = "__Host-ts_access"
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].cookie"},
		{name: "forwarded own cookie", sources: func() []LegacySourceConfig {
			return []LegacySourceConfig{{Name: "b", Kind: "callout", Client: "web", URL: "http://127.0.0.1:1/s", ForwardCookies: []string{"JSESSIONID", "ts_refresh"}, Subject: "id"}}
		}, wantKey: "legacy.sources[0].forward_cookies", wantVal: "ts_refresh"},
		{name: "one cookie two sources", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Name = "shop2"
			return []LegacySourceConfig{expressSource(), s}
		}, wantKey: "legacy.sources[1].cookie"},
		{name: "duplicate names", sources: func() []LegacySourceConfig {
			s := djangoSource()
			s.Name = "shop"
			return []LegacySourceConfig{expressSource(), s}
		}, wantKey: "legacy.sources[1].name"},
		{name: "unknown kind", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.Kind = "rails"
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].kind", wantVal: "rails"},
		{name: "callout cache too long", sources: func() []LegacySourceConfig {
			return []LegacySourceConfig{{Name: "b", Kind: "callout", Client: "web", URL: "http://127.0.0.1:1/s", ForwardCookies: []string{"JSESSIONID"}, Subject: "id", CacheTTL: durationPtr(5e9)}}
		}, wantKey: "legacy.sources[0].cache_ttl", wantVal: "5s"},
		{name: "express cache too long", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.CacheTTL = durationPtr(1500 * time.Millisecond)
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].cache_ttl", wantVal: "1.5s"},
		{name: "negative cache_ttl", sources: func() []LegacySourceConfig {
			s := djangoSource()
			s.CacheTTL = durationPtr(-time.Second)
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].cache_ttl", wantVal: "-1s"},
		{name: "on_exchange", sources: func() []LegacySourceConfig {
			s := expressSource()
			s.OnExchange = "delete"
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].on_exchange", wantVal: "delete"},
		{name: "django without dsn", sources: func() []LegacySourceConfig {
			s := djangoSource()
			s.DSN = ""
			return []LegacySourceConfig{s}
		}, wantKey: "legacy.sources[0].dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.sql {
				withSQL(c)
			}
			c.Legacy.Sources = tc.sources()
			err = c.Validate()
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a ValidationError", err)
			}
			var f *FieldError
			for _, fe := range ve.Fields {
				if fe.Key == tc.wantKey {
					f = fe
				}
			}
			if f == nil {
				t.Fatalf("no error for %s in:\n%v", tc.wantKey, err)
			}
			if tc.wantVal != "" && !strings.Contains(f.Error(), tc.wantVal) {
				t.Fatalf("%q does not show the value %q", f.Error(), tc.wantVal)
			}
			for _, secret := range []string{"sig-s3cret", "dj-s3cret", "pg-s3cret", "redis-s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("secret %s in %v", secret, err)
				}
			}
		})
	}
}

// The example file and the YAML keys of the issue decode (ErrorUnused
// refuses a misspelt key), validate, and print masked.
func TestLegacyExampleFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "configs", "legacy.example.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Legacy.Sources) != 4 || c.Legacy.Sources[0].Secrets[0] != "change-me-new" || c.Legacy.Sources[3].CacheTTL.String() != "1s" ||
		c.Legacy.Sources[0].CacheTTL.String() != "1s" || c.Legacy.Sources[1].CacheTTL != nil {
		t.Fatalf("sources = %+v", c.Legacy.Sources)
	}
	out := fmt.Sprint(Redacted(c))
	for _, secret := range []string{"change-me-new", "change-me-old", "django-insecure-change-me", ":secret@"} {
		if strings.Contains(out, secret) {
			t.Fatalf("%s printed: %s", secret, out)
		}
	}
}

func TestLegacyUnknownKeyRefused(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte("legacy:\n  sources:\n    - name: a\n      kind: express\n      secret: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(f, nil); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("Load = %v, want the unknown key named", err)
	}
}

func durationPtr(d time.Duration) *time.Duration { return &d }

// cache_ttl: absent is the default (1s), 0 turns the near cache off, any
// other value up to 1s is kept; every kind has it.
func TestLegacyCacheTTLOptions(t *testing.T) {
	tests := []struct {
		name    string
		ttl     *time.Duration
		wantTTL time.Duration
		wantOff bool
	}{
		{name: "absent", ttl: nil, wantTTL: 0},
		{name: "off", ttl: durationPtr(0), wantTTL: 0, wantOff: true},
		{name: "half a second", ttl: durationPtr(500 * time.Millisecond), wantTTL: 500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := expressSource()
			s.CacheTTL = tc.ttl
			c := &Config{Legacy: LegacyConfig{Sources: []LegacySourceConfig{s}}}
			o := c.LegacyOptions()[0]
			if o.CacheTTL != tc.wantTTL || o.CacheOff != tc.wantOff {
				t.Fatalf("options = ttl %v off %v, want %v %v", o.CacheTTL, o.CacheOff, tc.wantTTL, tc.wantOff)
			}
		})
	}
}
