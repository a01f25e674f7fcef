package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current Validate")

// TestValidateGolden pins the whole answer of Validate for configurations
// that break nearly every rule: which keys are reported, with which value and
// message, and in which order. It guards refactorings of Validate (one
// validator per section): the text must stay byte for byte the same. Every
// map-ordered check gets a single bad entry so that the order is fixed.
func TestValidateGolden(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{name: "first_branches", mutate: breakFirstBranches},
		{name: "second_branches", mutate: breakSecondBranches},
		{name: "no_env_no_clients", mutate: func(c *Config) {
			c.Env, c.Clients = "staging", nil
			c.Migration.ExemptClients = []string{"web"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(c)
			err = c.Validate()
			if err == nil {
				t.Fatal("Validate accepted a broken configuration")
			}
			got := err.Error() + "\n"
			path := filepath.Join("testdata", "validate_"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestValidateGolden -update once)", err)
			}
			if got != string(want) {
				t.Errorf("Validate's answer changed:\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// breakFirstBranches makes each check fail on its first condition; env is
// production with an asymmetric algorithm and no keys_dir.
func breakFirstBranches(c *Config) {
	c.Env = "production"
	c.Server.Addr = "8080"
	c.Server.PublicURL = "http://auth.example.com/path"
	c.Server.ReadTimeout, c.Server.WriteTimeout, c.Server.IdleTimeout, c.Server.ShutdownTimeout = 0, -1, 0, 0
	c.Server.BodyLimit = 10
	c.Server.TrustedProxies = []string{"10.0.0.1", "not-an-ip", "10.0.0.0/33"}
	c.Log.Level, c.Log.Format = "trace", "xml"

	r := &c.Storage.Redis
	r.URL = "http://user:secret@redis:6379/0"
	r.DialTimeout, r.ReadTimeout, r.WriteTimeout, r.PoolTimeout = 0, 0, 0, 0
	r.PoolSize, r.MinReplicas, r.ReplicaTimeout = -1, -1, 0

	s := &c.Session
	s.CookieName = "__Host-ts"
	s.IdleTimeout, s.AbsoluteTimeout = 0, 0
	s.MaxPerUser, s.OnLimit = -1, "panic"
	s.CookieSecure = false

	j := &c.JWT
	j.Issuer, j.Audience, j.Algorithm = "", "", "none"
	j.KeysDir = ""
	j.AccessTTL, j.RefreshTTL, j.RefreshAbsoluteTTL, j.Leeway = 30*time.Second, time.Second, 0, -time.Second
	j.Rotation.PublishDelay, j.Rotation.ReloadInterval, j.Rotation.RetireAfter = 0, time.Hour, time.Second
	j.Rotation.Algorithms = []string{"EdDSA", "PS256", "none"}
	j.AccessCookieName = "bad name"

	c.Clients = append(c.Clients,
		ClientConfig{ID: "Upper", Kind: "tv", TokenTransport: "pigeon", AllowedOrigins: []string{"https://ok.example.com", "https://x.example.com/p", "*"}},
		ClientConfig{ID: "web", Kind: "web", TokenTransport: "body"},
		ClientConfig{ID: "unknown", Kind: "service", TokenTransport: "body"},
	)
	c.DefaultClient = "nope"

	m := &c.Migration
	m.Phase = "halfway"
	m.Clients = map[string]string{"tv": "sideways"}
	m.Rollout = 101
	m.ExemptClients = []string{"web", "ghost", "phantom"}
	m.Sunset, m.DeprecatedAt = "next year", "last week"
	m.DocsURL = "javascript:alert(1)"

	c.Usage.FlushInterval, c.Usage.Retention, c.Usage.MaxSessionShare = time.Millisecond, time.Hour, 2
	c.Guard.Window, c.Guard.MaxSessionShare = time.Second, -0.5

	c.Users.File = ""
	c.Users.PasswordCost = 5
	c.Users.AllowPasswordChange = "maybe"
	c.Users.SQL.Driver, c.Users.SQL.Query, c.Users.SQL.RolesSeparator = "sqlite", "SELECT 1", ""
	c.Users.SQL.MaxOpenConns, c.Users.SQL.MaxIdleConns, c.Users.SQL.ConnMaxLifetime, c.Users.SQL.QueryTimeout = 0, -1, 0, 0
	c.Users.HashLimits = HashLimitsConfig{BcryptMaxCost: 3, MaxConcurrent: -1}
	c.Users.HashWarningInterval = 0
	c.Users.SpringPBKDF2 = SpringPBKDF2Config{Algorithm: "md5", Encoding: "rot13"}

	c.RateLimit = RateLimitConfig{}
	c.CORS.AllowedOrigins = []string{"https://app.example.com", "*", "null", "ftp://x"}

	c.ForwardAuth.UserHeader = "bad header"
	c.ForwardAuth.EmailHeader = "Host"
	c.ForwardAuth.ClientHeader = "Authorization"
	c.ForwardAuth.SchemeHeader = "X-Auth-Scheme"
	c.ForwardAuth.RolesHeader = "x-auth-scheme"
	c.ForwardAuth.ProblemHeader = "Cookie"
	c.ForwardAuth.TokenAudience = ""
	c.ForwardAuth.TokenTTL = time.Second
	c.ForwardAuth.CSRF = "none"

	c.Proxy.Timeout, c.Proxy.CSRF = 0, "none"
	c.Proxy.StripHeaders = []string{"X-Secret", "bad header", "Host"}
	c.Proxy.Routes = []RouteConfig{
		{Prefix: "app", Upstream: "ftp://x", Auth: "maybe", Timeout: -1},
		{Prefix: "/auth/x", Upstream: "http://u:p@app:3000", Auth: "required"},
		{Prefix: "/app", Upstream: "http://app:3000?q=1", Auth: "none"},
		{Prefix: "/app/", Upstream: "http://app:3000", Auth: "optional", Timeout: time.Hour},
	}
}

// breakSecondBranches reaches the checks the first set hides: relations
// between valid values, and production with HS256.
func breakSecondBranches(c *Config) {
	c.Env = "production"
	c.Server.PublicURL = "http://auth.example.com"
	c.Storage.Redis.MinReplicas = 1
	c.Storage.Redis.ReplicaTimeout = c.Storage.Redis.ReadTimeout
	c.Session.IdleTimeout, c.Session.AbsoluteTimeout = 2*time.Hour, time.Hour
	c.Session.CookieSecure = true
	c.JWT.Algorithm, c.JWT.KeysDir = "HS256", ""
	c.JWT.AccessTTL, c.JWT.RefreshTTL = 48*time.Hour, 100*24*time.Hour
	c.JWT.RefreshAbsoluteTTL = 400 * 24 * time.Hour
	c.JWT.Rotation.RetireAfter = 31 * 24 * time.Hour
	c.JWT.RefreshCookieName = "__ts_rt"
	c.Migration.Clients = map[string]string{"web": "dual"}
	c.Migration.Sunset, c.Migration.DeprecatedAt = "2027-01-01T00:00:00Z", "2027-06-01T00:00:00Z"
	c.Usage.Retention = 72 * time.Hour
	c.Guard.Window = 96 * time.Hour
	withSQL(c)
	c.Users.File = "/etc/tokenshift/users.yaml"
	c.Users.SQL.MaxIdleConns = c.Users.SQL.MaxOpenConns + 1
	c.Users.PasswordCost = 9
	c.ForwardAuth.TokenAudience = c.JWT.Audience
	c.Proxy.Routes = []RouteConfig{
		{Prefix: "/app", Upstream: "http://app:3000", Auth: "required"},
		{Prefix: "/APP/", Upstream: "http://app:3000#frag", Auth: "required"},
	}
}
