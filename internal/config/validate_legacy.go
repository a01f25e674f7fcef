package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tokenshift/tokenshift/internal/legacy"
	"github.com/tokenshift/tokenshift/internal/store"
)

// Legacy on_exchange values.
const (
	LegacyOnExchangeKeep = "keep"
	LegacyOnExchangeEnd  = "end"
)

// preSessionCSRFCookie is the login-CSRF cookie of internal/httpapi
// (preSessionCookieName); no legacy source may read it.
const preSessionCSRFCookie = "ts_login_csrf"

// LegacyOptions converts legacy.sources to what internal/legacy opens, in
// order. The store's Redis timeouts bound the legacy Redis calls too, unless
// a source sets its own timeout (which bounds a whole Load).
func (c *Config) LegacyOptions() []legacy.Options {
	out := make([]legacy.Options, 0, len(c.Legacy.Sources))
	r := c.Storage.Redis
	for _, s := range c.Legacy.Sources {
		o := legacy.Options{
			Name: s.Name, Kind: s.Kind, Client: s.Client, Cookie: s.Cookie, UserID: s.UserID,
			Secrets: s.Secrets, KeyPrefix: s.KeyPrefix,
			SecretKey: s.SecretKey, SecretKeyFallbacks: s.SecretKeyFallbacks, DSN: s.DSN, Driver: s.Driver, Table: s.Table,
			SerializeHandler: s.SerializeHandler,
			URL:              s.URL, ForwardCookies: s.ForwardCookies, Subject: s.Subject, Email: s.Email, Roles: s.Roles,
			Timeout: s.Timeout,
		}
		if s.CacheTTL != nil {
			o.CacheTTL, o.CacheOff = *s.CacheTTL, *s.CacheTTL == 0
		}
		if s.RedisURL != "" {
			o.Redis = store.RedisOptions{URL: s.RedisURL, DialTimeout: r.DialTimeout, ReadTimeout: r.ReadTimeout, WriteTimeout: r.WriteTimeout, PoolTimeout: r.PoolTimeout}
		}
		out = append(out, o)
	}
	return out
}

// OwnCookieNames are every cookie name tokenshift itself sets, with and
// without the __Host-/__Secure- prefixes (session.cookie_secure may change).
func (c *Config) OwnCookieNames() []string {
	var out []string
	for _, n := range []string{c.Session.CookieName, c.JWT.AccessCookieName, c.JWT.RefreshCookieName, preSessionCSRFCookie} {
		if n != "" {
			out = append(out, n, "__Host-"+n, "__Secure-"+n)
		}
	}
	return out
}

// validateLegacy checks legacy.sources: each entry as internal/legacy checks
// it (the error names the field, legacy.sources[1].secrets), a registered
// client, no cookie of tokenshift's own, on_exchange.
func (c *Config) validateLegacy(bad reporter) {
	srcs := c.Legacy.Sources
	if len(srcs) == 0 {
		return
	}
	if c.Users.SQL.Enabled() && strings.TrimSpace(c.Users.SQL.QueryByID) == "" {
		bad("users.sql.query_by_id", "", "must be set with legacy.sources: legacy sessions name their user by id (see docs/legacy-sessions.md)")
	}
	clients := c.registeredClients()
	own := c.OwnCookieNames()
	for i, s := range srcs {
		key := fmt.Sprintf("legacy.sources[%d]", i)
		if s.Client != "" && !clients[s.Client] {
			bad(key+".client", s.Client, "must be the id of a registered client (clients[].id)")
		}
		cookies := append([]string{s.Cookie}, s.ForwardCookies...)
		for _, ck := range cookies {
			if ck == "" {
				continue
			}
			for _, o := range own {
				if strings.EqualFold(ck, o) {
					field := ".cookie"
					if ck != s.Cookie {
						field = ".forward_cookies"
					}
					bad(key+field, ck, "is one of tokenshift's own cookies (session.cookie_name, jwt.access_cookie_name, jwt.refresh_cookie_name, ts_login_csrf): name the legacy app's cookie")
				}
			}
		}
		switch s.OnExchange {
		case "", LegacyOnExchangeKeep, LegacyOnExchangeEnd:
		default:
			bad(key+".on_exchange", s.OnExchange, "must be keep or end")
		}
	}
	if err := legacy.CheckAll(c.LegacyOptions()); err != nil {
		var oe *legacy.OptionError
		if !errors.As(err, &oe) {
			bad("legacy.sources", len(srcs), "%v", err)
			return
		}
		bad("legacy."+oe.Field, legacyFieldValue(srcs, oe.Field), "%s", oe.Reason)
	}
}

// legacyFieldValue is what the error shows as the value found: the field's
// value, masked for secrets and DSNs.
func legacyFieldValue(srcs []LegacySourceConfig, field string) any {
	var i int
	var name string
	if _, err := fmt.Sscanf(field, "sources[%d].", &i); err != nil || i < 0 || i >= len(srcs) {
		return ""
	}
	if j := strings.IndexByte(field, '.'); j >= 0 {
		name = field[j+1:]
	}
	s := srcs[i]
	switch name {
	case "secrets", "secret_key", "secret_key_fallbacks":
		return "xxxxx"
	case "dsn":
		return MaskDSN(s.Driver, s.DSN)
	case "redis_url":
		return MaskURL(s.RedisURL)
	case "name":
		return s.Name
	case "kind":
		return s.Kind
	case "client":
		return s.Client
	case "cookie":
		return s.Cookie
	case "user_id":
		return s.UserID
	case "url":
		return MaskURL(s.URL)
	case "table":
		return s.Table
	case "serialize_handler":
		return s.SerializeHandler
	case "forward_cookies":
		return strings.Join(s.ForwardCookies, ",")
	case "subject":
		return s.Subject
	case "cache_ttl":
		if s.CacheTTL == nil {
			return ""
		}
		return *s.CacheTTL
	case "timeout":
		return s.Timeout
	}
	return ""
}
