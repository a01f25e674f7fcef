package config

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
)

func (c *Config) validateEnv(bad reporter) {
	if c.Env != "development" && c.Env != "production" {
		bad("env", c.Env, "must be development or production")
	}
}

func (c *Config) validateServer(bad reporter) {
	sv := c.Server
	if _, _, err := net.SplitHostPort(sv.Addr); err != nil {
		bad("server.addr", sv.Addr, "must be host:port or :port")
	}
	if u, err := url.Parse(sv.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("server.public_url", sv.PublicURL, "must be an origin like https://auth.example.com")
	}
	positive(bad, "server.read_timeout", sv.ReadTimeout)
	positive(bad, "server.write_timeout", sv.WriteTimeout)
	positive(bad, "server.idle_timeout", sv.IdleTimeout)
	positive(bad, "server.shutdown_timeout", sv.ShutdownTimeout)
	if sv.BodyLimit < 1024 || sv.BodyLimit > 16<<20 {
		bad("server.body_limit", sv.BodyLimit, "must be between 1024 and 16777216 bytes")
	}
	for _, p := range sv.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			bad("server.trusted_proxies", p, "must be an IP address or CIDR")
		}
	}
}

func (c *Config) validateLog(bad reporter) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	if !slices.Contains([]string{"", "text", "json"}, c.Log.Format) {
		bad("log.format", c.Log.Format, "must be text or json (or empty for the env default)")
	}
}
