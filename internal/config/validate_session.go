package config

import (
	"regexp"
	"strings"
)

// cookieNamePattern is what session.cookie_name and the jwt cookie names may
// be; a __Host- or __Secure- prefix is added by tokenshift, never configured.
var cookieNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validCookieName(name string) bool {
	return cookieNamePattern.MatchString(name) && !strings.HasPrefix(name, "__")
}

func (c *Config) validateSession(bad reporter) {
	s := c.Session
	if !validCookieName(s.CookieName) {
		bad("session.cookie_name", s.CookieName, "must be 1-64 letters, digits, _ or -, without a __ prefix (added automatically)")
	}
	positive(bad, "session.idle_timeout", s.IdleTimeout)
	positive(bad, "session.absolute_timeout", s.AbsoluteTimeout)
	if s.IdleTimeout > s.AbsoluteTimeout {
		bad("session.idle_timeout", s.IdleTimeout, "must not exceed session.absolute_timeout (%s)", s.AbsoluteTimeout)
	}
	if s.MaxPerUser < 0 {
		bad("session.max_per_user", s.MaxPerUser, "must be 0 (unlimited) or more")
	}
	if s.OnLimit != "evict-oldest" && s.OnLimit != "refuse" {
		bad("session.on_limit", s.OnLimit, "must be evict-oldest or refuse")
	}
	if s.NearCacheBytes < 0 {
		bad("session.near_cache_bytes", s.NearCacheBytes, "must be 0 (no near cache) or a size in bytes")
	}
	positive(bad, "session.near_cache_ttl", s.NearCacheTTL)
}
