package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEmbeddedDefaultsAreValid(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("embedded defaults invalid: %v", err)
	}
	if c.Server.Addr != ":8080" || c.Migration.Phase != "dual" || c.Storage.Redis.URL != "" || c.Env != "development" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.Clients) != 3 || c.Clients[1].ID != "spa" || c.Clients[1].TokenTransport != "cookie" {
		t.Fatalf("dev clients: %+v", c.Clients)
	}
	if c.JWT.AccessTTL != 15*time.Minute || c.JWT.RefreshTTL != 168*time.Hour || c.JWT.RefreshAbsoluteTTL != 720*time.Hour {
		t.Fatalf("token lifetimes: %v %v %v", c.JWT.AccessTTL, c.JWT.RefreshTTL, c.JWT.RefreshAbsoluteTTL)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("server:\n  addr: \":9000\"\nmigration:\n  phase: legacy\nsession:\n  idle_timeout: 5m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKENSHIFT_MIGRATION_PHASE", "jwt-only")
	t.Setenv("TOKENSHIFT_STORAGE_REDIS_URL", "redis://127.0.0.1:6390/2")
	t.Setenv("TOKENSHIFT_SERVER_TRUSTED_PROXIES", "10.0.0.1,192.168.0.0/16")
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != ":9000" {
		t.Errorf("file should set server.addr, got %q", c.Server.Addr)
	}
	if c.Migration.Phase != "jwt-only" {
		t.Errorf("env should beat file for migration.phase, got %q", c.Migration.Phase)
	}
	if c.Session.IdleTimeout != 5*time.Minute {
		t.Errorf("file duration: %v", c.Session.IdleTimeout)
	}
	if c.Storage.Redis.URL != "redis://127.0.0.1:6390/2" {
		t.Errorf("env redis url: %q", c.Storage.Redis.URL)
	}
	if len(c.Server.TrustedProxies) != 2 || c.Server.TrustedProxies[1] != "192.168.0.0/16" {
		t.Errorf("env list: %v", c.Server.TrustedProxies)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRotationKeys(t *testing.T) {
	t.Setenv("TOKENSHIFT_JWT_ROTATION_PUBLISH_DELAY", "1s")
	t.Setenv("TOKENSHIFT_JWT_ROTATION_RELOAD_INTERVAL", "200ms")
	t.Setenv("TOKENSHIFT_JWT_ROTATION_ALGORITHMS", "EdDSA,ES256")
	t.Setenv("TOKENSHIFT_JWT_ACCESS_TTL", "3s")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.JWT.Rotation
	if r.PublishDelay != time.Second || r.ReloadInterval != 200*time.Millisecond || r.RetireAfter != 0 || len(r.Algorithms) != 2 || r.Algorithms[1] != "ES256" {
		t.Fatalf("rotation from env: %+v", r)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("a 3s access ttl is fine in development: %v", err)
	}
}

func TestRotationDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.JWT.Rotation
	if r.PublishDelay != 5*time.Minute || r.ReloadInterval != 5*time.Second || r.RetireAfter != 0 || len(r.Algorithms) != 0 {
		t.Fatalf("rotation defaults: %+v", r)
	}
}

// jwt.verify_cache_bytes: 128 MiB by default, set by its env variable, 0
// (no cache) accepted.
func TestVerifyCacheBytes(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWT.VerifyCacheBytes != 128<<20 {
		t.Fatalf("default jwt.verify_cache_bytes = %d; want %d", c.JWT.VerifyCacheBytes, 128<<20)
	}
	for _, v := range []string{"0", "1048576"} {
		t.Setenv("TOKENSHIFT_JWT_VERIFY_CACHE_BYTES", v)
		c, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(c.JWT.VerifyCacheBytes); got != v {
			t.Fatalf("jwt.verify_cache_bytes from env %s = %s", v, got)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("jwt.verify_cache_bytes %s: %v", v, err)
		}
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil); err == nil {
		t.Fatal("want an error for a missing config file")
	}
}

func TestValidateNamesKeyAndValue(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string
		wantVal string
	}{
		{name: "phase", mutate: func(c *Config) { c.Migration.Phase = "halfway" }, wantKey: "migration.phase", wantVal: "halfway"},
		{name: "addr", mutate: func(c *Config) { c.Server.Addr = "8080" }, wantKey: "server.addr", wantVal: "8080"},
		{name: "redis scheme", mutate: func(c *Config) { c.Storage.Redis.URL = "http://x:pw@h/0" }, wantKey: "storage.redis.url", wantVal: "xxxxx"},
		{name: "negative timeout", mutate: func(c *Config) { c.Storage.Redis.ReadTimeout = -1 }, wantKey: "storage.redis.read_timeout"},
		{name: "negative min_replicas", mutate: func(c *Config) { c.Storage.Redis.MinReplicas = -1 }, wantKey: "storage.redis.min_replicas", wantVal: "-1"},
		{name: "zero replica_timeout", mutate: func(c *Config) { c.Storage.Redis.ReplicaTimeout = 0 }, wantKey: "storage.redis.replica_timeout"},
		{name: "replica_timeout beyond read_timeout", mutate: func(c *Config) {
			c.Storage.Redis.MinReplicas, c.Storage.Redis.ReplicaTimeout = 1, c.Storage.Redis.ReadTimeout
		}, wantKey: "storage.redis.replica_timeout", wantVal: "storage.redis.read_timeout"},
		{name: "idle above absolute", mutate: func(c *Config) { c.Session.IdleTimeout = 24 * time.Hour }, wantKey: "session.idle_timeout"},
		{name: "algorithm", mutate: func(c *Config) { c.JWT.Algorithm = "none" }, wantKey: "jwt.algorithm", wantVal: "none"},
		{name: "leeway", mutate: func(c *Config) { c.JWT.Leeway = time.Hour }, wantKey: "jwt.leeway"},
		{name: "verify cache too small", mutate: func(c *Config) { c.JWT.VerifyCacheBytes = 4096 }, wantKey: "jwt.verify_cache_bytes", wantVal: "TOKENSHIFT_JWT_VERIFY_CACHE_BYTES"},
		{name: "verify cache negative", mutate: func(c *Config) { c.JWT.VerifyCacheBytes = -1 }, wantKey: "jwt.verify_cache_bytes", wantVal: "-1"},
		{name: "verify cache too large", mutate: func(c *Config) { c.JWT.VerifyCacheBytes = 1 << 40 }, wantKey: "jwt.verify_cache_bytes"},
		{name: "duplicate client", mutate: func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, wantKey: "clients[3].id", wantVal: "web"},
		{name: "reserved client", mutate: func(c *Config) { c.Clients[0].ID = "unknown"; c.DefaultClient = "unknown" }, wantKey: "clients[0].id"},
		{name: "bad transport", mutate: func(c *Config) { c.Clients[0].TokenTransport = "smoke" }, wantKey: "clients[0].token_transport", wantVal: "smoke"},
		{name: "default client", mutate: func(c *Config) { c.DefaultClient = "nope" }, wantKey: "default_client", wantVal: "nope"},
		{name: "override of unknown client", mutate: func(c *Config) { c.Migration.Clients = map[string]string{"tv": "dual"} }, wantKey: "migration.clients.tv"},
		{name: "rollout", mutate: func(c *Config) { c.Migration.Rollout = 101 }, wantKey: "migration.rollout"},
		{name: "sunset", mutate: func(c *Config) { c.Migration.Sunset = "next year" }, wantKey: "migration.sunset", wantVal: "next year"},
		{name: "deprecated_at", mutate: func(c *Config) { c.Migration.DeprecatedAt = "last week" }, wantKey: "migration.deprecated_at", wantVal: "last week"},
		{name: "deprecated_at after sunset", mutate: func(c *Config) {
			c.Migration.Sunset, c.Migration.DeprecatedAt = "2027-01-01T00:00:00Z", "2027-06-01T00:00:00Z"
		}, wantKey: "migration.deprecated_at", wantVal: "2027-06-01T00:00:00Z"},
		{name: "client origin with a path", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"https://spa.example.com/app"} }, wantKey: "clients[1].allowed_origins", wantVal: "https://spa.example.com/app"},
		{name: "client origin with a trailing slash", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"https://spa.example.com/"} }, wantKey: "clients[1].allowed_origins", wantVal: "https://spa.example.com/"},
		{name: "client origin star", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"*"} }, wantKey: "clients[1].allowed_origins", wantVal: "*"},
		{name: "client origin null", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"null"} }, wantKey: "clients[1].allowed_origins", wantVal: "null"},
		{name: "client origin without scheme", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"spa.example.com"} }, wantKey: "clients[1].allowed_origins", wantVal: "spa.example.com"},
		{name: "client origin with a query", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"https://spa.example.com?x=1"} }, wantKey: "clients[1].allowed_origins", wantVal: "?x=1"},
		{name: "client origin with a user", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"https://u@spa.example.com"} }, wantKey: "clients[1].allowed_origins", wantVal: "u@spa"},
		{name: "client origin with a bad port", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"https://spa.example.com:99999"} }, wantKey: "clients[1].allowed_origins", wantVal: ":99999"},
		{name: "client origin of another scheme", mutate: func(c *Config) { c.Clients[1].AllowedOrigins = []string{"ftp://spa.example.com"} }, wantKey: "clients[1].allowed_origins", wantVal: "ftp://"},
		{name: "cors star", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"*"} }, wantKey: "cors.allowed_origins", wantVal: "*"},
		{name: "cors null", mutate: func(c *Config) { c.CORS.AllowedOrigins = []string{"null"} }, wantKey: "cors.allowed_origins", wantVal: "null"},
		{name: "trusted proxy", mutate: func(c *Config) { c.Server.TrustedProxies = []string{"everyone"} }, wantKey: "server.trusted_proxies", wantVal: "everyone"},
		{name: "share", mutate: func(c *Config) { c.Guard.MaxSessionShare = 5 }, wantKey: "guard.max_session_share"},
		{name: "guard window beyond retention", mutate: func(c *Config) { c.Guard.Window = 900 * time.Hour }, wantKey: "guard.window", wantVal: "usage.retention (840h0m0s)"},
		{name: "publish delay", mutate: func(c *Config) { c.JWT.Rotation.PublishDelay = 10 * time.Millisecond }, wantKey: "jwt.rotation.publish_delay", wantVal: "10ms"},
		{name: "reload interval", mutate: func(c *Config) { c.JWT.Rotation.ReloadInterval = time.Hour }, wantKey: "jwt.rotation.reload_interval", wantVal: "1h0m0s"},
		{name: "retire after shorter than tokens", mutate: func(c *Config) { c.JWT.Rotation.RetireAfter = time.Minute }, wantKey: "jwt.rotation.retire_after", wantVal: "1m0s"},
		{name: "rotation algorithm", mutate: func(c *Config) { c.JWT.Rotation.Algorithms = []string{"EdDSA", "none"} }, wantKey: "jwt.rotation.algorithms", wantVal: "none"},
		{name: "refresh absolute ttl below refresh ttl", mutate: func(c *Config) { c.JWT.RefreshAbsoluteTTL = time.Hour },
			wantKey: "jwt.refresh_absolute_ttl", wantVal: "TOKENSHIFT_JWT_REFRESH_ABSOLUTE_TTL"},
		{name: "refresh absolute ttl zero", mutate: func(c *Config) { c.JWT.RefreshAbsoluteTTL = 0 }, wantKey: "jwt.refresh_absolute_ttl", wantVal: "0s"},
		{name: "refresh absolute ttl negative", mutate: func(c *Config) { c.JWT.RefreshAbsoluteTTL = -time.Hour }, wantKey: "jwt.refresh_absolute_ttl", wantVal: "-1h0m0s"},
		{name: "refresh absolute ttl above a year", mutate: func(c *Config) { c.JWT.RefreshAbsoluteTTL = 9000 * time.Hour }, wantKey: "jwt.refresh_absolute_ttl", wantVal: "9000h"},
		{name: "access ttl too short", mutate: func(c *Config) { c.JWT.AccessTTL = 500 * time.Millisecond }, wantKey: "jwt.access_ttl", wantVal: "500ms"},
		{name: "seconds-long access ttl in production", mutate: func(c *Config) {
			c.Env = "production"
			c.JWT.KeysDir = "/k"
			c.Session.CookieSecure = true
			c.Users.File = "/u.yaml"
			c.Server.PublicURL = "https://a.example"
			c.JWT.AccessTTL = 3 * time.Second
		}, wantKey: "jwt.access_ttl", wantVal: "3s"},
		{name: "production keys", mutate: func(c *Config) {
			c.Env = "production"
			c.Session.CookieSecure = true
			c.Users.File = "/u.yaml"
			c.Server.PublicURL = "https://a.example"
		}, wantKey: "jwt.keys_dir"},
		{name: "production cookies", mutate: func(c *Config) {
			c.Env = "production"
			c.JWT.KeysDir = "/k"
			c.Users.File = "/u.yaml"
			c.Server.PublicURL = "https://a.example"
		}, wantKey: "session.cookie_secure", wantVal: "false"},
		{name: "production dev users", mutate: func(c *Config) {
			c.Env = "production"
			c.JWT.KeysDir = "/k"
			c.Session.CookieSecure = true
			c.Server.PublicURL = "https://a.example"
		}, wantKey: "users.file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(c)
			err = c.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %T", err)
			}
			found := false
			for _, f := range ve.Fields {
				if f.Key == tt.wantKey {
					found = true
					if tt.wantVal != "" && !strings.Contains(f.Error(), tt.wantVal) {
						t.Errorf("message %q does not show the value %q", f.Error(), tt.wantVal)
					}
				}
			}
			if !found {
				t.Fatalf("no error for key %s in:\n%v", tt.wantKey, err)
			}
			if strings.Contains(err.Error(), "x:pw@") {
				t.Fatalf("password leaked in %v", err)
			}
		})
	}
}

// clients[].allowed_origins comes from a config file (clients is a list of
// objects, which no env variable can set) and accepts exact origins.
func TestClientAllowedOriginsFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := `clients:
  - {id: web, kind: web, token_transport: body}
  - id: spa
    kind: spa
    token_transport: cookie
    allowed_origins: [https://spa.example.com, "http://localhost:5173", "https://[::1]:8443"]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"https://spa.example.com", "http://localhost:5173", "https://[::1]:8443"}
	if got := c.Clients[1].AllowedOrigins; !slices.Equal(got, want) {
		t.Fatalf("allowed_origins = %q, want %q", got, want)
	}
	if len(c.Clients[0].AllowedOrigins) != 0 {
		t.Fatalf("web got origins %q; none were configured", c.Clients[0].AllowedOrigins)
	}
	c.Clients[1].AllowedOrigins = []string{"https://spa.example.com/app"}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "clients[1].allowed_origins") || !strings.Contains(err.Error(), "no env variable") {
		t.Fatalf("the error must name the key and say that no env variable sets it: %v", err)
	}
}

func TestRedactedMasksPassword(t *testing.T) {
	c, _ := Load("", nil)
	c.Storage.Redis.URL = "redis://user:s3cret@h:6379/0"
	m := Redacted(c)
	got := m["storage"].(map[string]any)["redis"].(map[string]any)["url"].(string)
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "xxxxx") {
		t.Fatalf("url not masked: %q", got)
	}
	if m["session"].(map[string]any)["idle_timeout"] != "30m0s" {
		t.Fatalf("durations should print as strings: %v", m["session"])
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("storage.redis.url"); got != "TOKENSHIFT_STORAGE_REDIS_URL" {
		t.Fatal(got)
	}
}

func TestRefreshAbsoluteTTLFromEnv(t *testing.T) {
	t.Setenv("TOKENSHIFT_JWT_REFRESH_ABSOLUTE_TTL", "240h")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.JWT.RefreshAbsoluteTTL != 240*time.Hour {
		t.Fatalf("jwt.refresh_absolute_ttl from env = %v; want 240h", c.JWT.RefreshAbsoluteTTL)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
