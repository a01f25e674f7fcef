package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGatewayDefaultsAndRoutesFromFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	yaml := `
forward_auth:
  token: true
  token_header: Authorization
proxy:
  routes:
    - prefix: /app
      upstream: http://127.0.0.1:3000/base
      auth: optional
      timeout: 5s
      strip_prefix: true
    - prefix: /
      upstream: https://legacy.internal
      auth: none
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKENSHIFT_FORWARD_AUTH_CSRF", "origin")
	c, err := Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	f := c.ForwardAuth
	if !f.Enabled || f.UserHeader != "X-Auth-User" || f.TokenTTL != time.Minute || f.TokenAudience != "upstream" || !f.Token || f.TokenHeader != "Authorization" || f.CSRF != "origin" || f.ProblemHeader != "X-Auth-Problem" {
		t.Errorf("forward_auth = %+v", f)
	}
	p := c.Proxy
	if p.Timeout != 30*time.Second || !p.StripCredentials || p.CSRF != "token" || len(p.Routes) != 2 {
		t.Fatalf("proxy = %+v", p)
	}
	if r := p.Routes[0]; r.Prefix != "/app" || r.Upstream != "http://127.0.0.1:3000/base" || r.Auth != "optional" || r.Timeout != 5*time.Second || !r.StripPrefix || r.PreserveHost {
		t.Errorf("route 0 = %+v", r)
	}
}

func TestValidateGatewayKeys(t *testing.T) {
	route := func(prefix, upstream, auth string) []RouteConfig {
		return []RouteConfig{{Prefix: prefix, Upstream: upstream, Auth: auth}}
	}
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantKey string
		wantVal string
	}{
		{name: "header name with space", mutate: func(c *Config) { c.ForwardAuth.UserHeader = "X Auth" }, wantKey: "forward_auth.user_header", wantVal: "X Auth"},
		{name: "identity in Cookie", mutate: func(c *Config) { c.ForwardAuth.EmailHeader = "cookie" }, wantKey: "forward_auth.email_header", wantVal: "cookie"},
		{name: "identity in Authorization", mutate: func(c *Config) { c.ForwardAuth.RolesHeader = "Authorization" }, wantKey: "forward_auth.roles_header"},
		{name: "two headers one name", mutate: func(c *Config) { c.ForwardAuth.ClientHeader = "x-auth-user" }, wantKey: "forward_auth.client_header", wantVal: "x-auth-user"},
		{name: "token audience of access tokens", mutate: func(c *Config) { c.ForwardAuth.TokenAudience = "tokenshift" }, wantKey: "forward_auth.token_audience", wantVal: "tokenshift"},
		{name: "empty token audience", mutate: func(c *Config) { c.ForwardAuth.TokenAudience = "" }, wantKey: "forward_auth.token_audience"},
		{name: "token ttl too long", mutate: func(c *Config) { c.ForwardAuth.TokenTTL = 2 * time.Hour }, wantKey: "forward_auth.token_ttl", wantVal: "2h0m0s"},
		{name: "forward csrf mode", mutate: func(c *Config) { c.ForwardAuth.CSRF = "none" }, wantKey: "forward_auth.csrf", wantVal: "none"},
		{name: "problem header", mutate: func(c *Config) { c.ForwardAuth.ProblemHeader = "X-Auth-User" }, wantKey: "forward_auth.problem_header"},
		{name: "proxy timeout", mutate: func(c *Config) { c.Proxy.Timeout = 0 }, wantKey: "proxy.timeout"},
		{name: "proxy csrf mode", mutate: func(c *Config) { c.Proxy.CSRF = "off" }, wantKey: "proxy.csrf", wantVal: "off"},
		{name: "prefix shadows /auth", mutate: func(c *Config) { c.Proxy.Routes = route("/auth", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix", wantVal: "/auth"},
		{name: "prefix under /admin", mutate: func(c *Config) { c.Proxy.Routes = route("/admin/app", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix", wantVal: "/admin/app"},
		{name: "prefix on /.well-known", mutate: func(c *Config) { c.Proxy.Routes = route("/.well-known/", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "prefix on /metrics", mutate: func(c *Config) { c.Proxy.Routes = route("/metrics", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "prefix on /livez", mutate: func(c *Config) { c.Proxy.Routes = route("/livez", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "prefix on /readyz", mutate: func(c *Config) { c.Proxy.Routes = route("/readyz", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "relative prefix", mutate: func(c *Config) { c.Proxy.Routes = route("app", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix", wantVal: "app"},
		{name: "prefix with dot segment", mutate: func(c *Config) { c.Proxy.Routes = route("/app/../auth", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "prefix with wildcard", mutate: func(c *Config) { c.Proxy.Routes = route("/app/*", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "duplicate prefix", mutate: func(c *Config) {
			c.Proxy.Routes = append(route("/app", "http://a:1", "none"), route("/app/", "http://b:1", "none")...)
		}, wantKey: "proxy.routes[1].prefix", wantVal: "/app/"},
		{name: "upstream scheme", mutate: func(c *Config) { c.Proxy.Routes = route("/app", "ftp://a", "none") }, wantKey: "proxy.routes[0].upstream", wantVal: "ftp://a"},
		{name: "upstream relative", mutate: func(c *Config) { c.Proxy.Routes = route("/app", "127.0.0.1:3000", "none") }, wantKey: "proxy.routes[0].upstream"},
		{name: "upstream query", mutate: func(c *Config) { c.Proxy.Routes = route("/app", "http://a/?x=1", "none") }, wantKey: "proxy.routes[0].upstream"},
		{name: "upstream credentials masked", mutate: func(c *Config) { c.Proxy.Routes = route("/app", "http://u:s3cret@a", "none") }, wantKey: "proxy.routes[0].upstream", wantVal: "xxxxx"},
		{name: "auth mode", mutate: func(c *Config) { c.Proxy.Routes = route("/app", "http://a:1", "maybe") }, wantKey: "proxy.routes[0].auth", wantVal: "maybe"},
		// The gateway matches ignoring ASCII case: these would pass
		// validation and then stop serve.
		{name: "prefix differs only in case", mutate: func(c *Config) {
			c.Proxy.Routes = append(route("/app", "http://a:1", "none"), route("/APP", "http://b:1", "required")...)
		}, wantKey: "proxy.routes[1].prefix", wantVal: "/APP"},
		{name: "prefix under /Admin", mutate: func(c *Config) { c.Proxy.Routes = route("/Admin/x", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix", wantVal: "/Admin/x"},
		{name: "prefix with path parameter", mutate: func(c *Config) { c.Proxy.Routes = route("/app;v=1", "http://a:1", "none") }, wantKey: "proxy.routes[0].prefix"},
		{name: "strip header not a name", mutate: func(c *Config) { c.Proxy.StripHeaders = []string{"X Remote"} }, wantKey: "proxy.strip_headers", wantVal: "X Remote"},
		{name: "strip header Host", mutate: func(c *Config) { c.Proxy.StripHeaders = []string{"host"} }, wantKey: "proxy.strip_headers", wantVal: "host"},
		{name: "route timeout", mutate: func(c *Config) {
			c.Proxy.Routes = route("/app", "http://a:1", "none")
			c.Proxy.Routes[0].Timeout = -time.Second
		}, wantKey: "proxy.routes[0].timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(c)
			err = c.Validate()
			var ve *ValidationError
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &ve) {
				t.Fatalf("want a *ValidationError, got %v", err)
			}
			for _, f := range ve.Fields {
				if f.Key == tt.wantKey {
					if tt.wantVal != "" && !strings.Contains(f.Error(), tt.wantVal) {
						t.Errorf("message %q does not show the value %q", f.Error(), tt.wantVal)
					}
					if strings.Contains(err.Error(), "s3cret") {
						t.Errorf("password leaked: %v", err)
					}
					return
				}
			}
			t.Fatalf("no error for key %s in:\n%v", tt.wantKey, err)
		})
	}
}

// "/" and ordinary prefixes are fine: tokenshift's own paths are served
// first and never proxied.
func TestValidateGatewayAccepts(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Proxy.Routes = []RouteConfig{
		{Prefix: "/", Upstream: "http://127.0.0.1:3000", Auth: "none"},
		{Prefix: "/authority", Upstream: "http://127.0.0.1:3000", Auth: "required"},
		{Prefix: "/app/", Upstream: "https://app.internal:8443/base/", Auth: "optional", Timeout: time.Minute},
	}
	c.ForwardAuth.TokenHeader = "Authorization"
	c.Proxy.StripHeaders = []string{"X-Remote-User", "X-Tenant"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// List entries come only from a config file: their errors must not name an
// environment variable that does not exist.
func TestFieldErrorOfListEntry(t *testing.T) {
	routeErr := (&FieldError{Key: "proxy.routes[5].auth", Value: "maybe", Reason: "must be required, optional or none"}).Error()
	if strings.Contains(routeErr, "TOKENSHIFT_") || !strings.Contains(routeErr, "set in a config file; no env variable") {
		t.Errorf("list entry error = %q", routeErr)
	}
	plain := (&FieldError{Key: "proxy.timeout", Value: "0s", Reason: "must be positive"}).Error()
	if !strings.Contains(plain, "env TOKENSHIFT_PROXY_TIMEOUT") {
		t.Errorf("plain key error = %q", plain)
	}
}

func TestStripHeadersFromEnv(t *testing.T) {
	t.Setenv("TOKENSHIFT_PROXY_STRIP_HEADERS", "X-Remote-User,X-Tenant")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Proxy.StripHeaders; len(got) != 2 || got[0] != "X-Remote-User" || got[1] != "X-Tenant" {
		t.Fatalf("proxy.strip_headers = %q", got)
	}
}
