package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// ReservedPrefixes are tokenshift's own paths; no proxy route may sit on or
// under one (internal/gateway refuses to proxy them as well).
var ReservedPrefixes = []string{"/auth", "/admin", "/.well-known", "/livez", "/readyz", "/metrics", "/docs/migration"}

// headerNamePattern is an RFC 9110 field name (a token).
var headerNamePattern = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

// headersNotForIdentity are fields the HTTP machinery, the browser or the
// proxy itself own; carrying identity in one would break requests or let the
// client's copy survive.
var headersNotForIdentity = map[string]bool{
	"host": true, "cookie": true, "set-cookie": true, "content-length": true, "content-type": true,
	"transfer-encoding": true, "connection": true, "keep-alive": true, "te": true, "trailer": true,
	"upgrade": true, "proxy-authorization": true, "proxy-authenticate": true, "proxy-connection": true,
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true, "forwarded": true,
	"x-csrf-token": true, "origin": true, "x-original-method": true, "x-original-uri": true,
	"x-forwarded-method": true, "x-forwarded-uri": true, "x-real-ip": true, "x-request-id": true,
}

func (c *Config) validateForwardAuth(bad reporter) {
	f := c.ForwardAuth
	seen := map[string]string{}
	header := func(key, name string, allowAuthorization bool) {
		lower := strings.ToLower(name)
		switch {
		case !headerNamePattern.MatchString(name):
			bad(key, name, "must be an HTTP header name (letters, digits and !#$%%&'*+.^_`|~-, at most 64)")
			return
		case headersNotForIdentity[lower], lower == "authorization" && !allowAuthorization:
			bad(key, name, "is a header the HTTP machinery or the proxy owns; pick another name")
			return
		}
		if other, dup := seen[lower]; dup {
			bad(key, name, "is already used by %s", other)
			return
		}
		seen[lower] = key
	}
	header("forward_auth.user_header", f.UserHeader, false)
	header("forward_auth.email_header", f.EmailHeader, false)
	header("forward_auth.client_header", f.ClientHeader, false)
	header("forward_auth.scheme_header", f.SchemeHeader, false)
	header("forward_auth.roles_header", f.RolesHeader, false)
	header("forward_auth.token_header", f.TokenHeader, true)
	if f.ProblemHeader != "" {
		header("forward_auth.problem_header", f.ProblemHeader, false)
	}
	switch {
	case f.TokenAudience == "":
		bad("forward_auth.token_audience", f.TokenAudience, "must not be empty")
	case strings.EqualFold(f.TokenAudience, c.JWT.Audience):
		bad("forward_auth.token_audience", f.TokenAudience, "must differ from jwt.audience (%s): an upstream token must never pass as an access token", c.JWT.Audience)
	}
	if f.TokenTTL < 5*time.Second || f.TokenTTL > time.Hour {
		bad("forward_auth.token_ttl", f.TokenTTL, "must be between 5s and 1h")
	}
	if f.CSRF != "token" && f.CSRF != "origin" {
		bad("forward_auth.csrf", f.CSRF, "must be token or origin")
	}
}

func (c *Config) validateProxy(bad reporter) {
	p := c.Proxy
	if p.Timeout <= 0 || p.Timeout > 10*time.Minute {
		bad("proxy.timeout", p.Timeout, "must be a positive duration of at most 10m")
	}
	if p.CSRF != "token" && p.CSRF != "origin" {
		bad("proxy.csrf", p.CSRF, "must be token or origin")
	}
	for _, name := range p.StripHeaders {
		switch lower := strings.ToLower(name); {
		case !headerNamePattern.MatchString(name):
			bad("proxy.strip_headers", name, "must be an HTTP header name (letters, digits and !#$%%&'*+.^_`|~-, at most 64)")
		case lower == "host" || lower == "content-length" || lower == "transfer-encoding":
			bad("proxy.strip_headers", name, "is a header every request needs as it is; it cannot be stripped")
		}
	}
	prefixes := map[string]int{}
	for i, r := range p.Routes {
		key := fmt.Sprintf("proxy.routes[%d]", i)
		if reason := checkPrefix(r.Prefix); reason != "" {
			bad(key+".prefix", r.Prefix, "%s", reason)
		} else {
			norm := normalizePrefix(r.Prefix)
			if j, dup := prefixes[norm]; dup {
				bad(key+".prefix", r.Prefix, "is the same as proxy.routes[%d].prefix", j)
			}
			prefixes[norm] = i
		}
		u, err := url.Parse(r.Upstream)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
			bad(key+".upstream", r.Upstream, "must be an http(s) URL like http://127.0.0.1:3000")
		case u.User != nil:
			bad(key+".upstream", MaskURL(r.Upstream), "must not carry credentials")
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(r.Upstream, "?"):
			bad(key+".upstream", r.Upstream, "must not have a query or fragment")
		}
		if r.Auth != "required" && r.Auth != "optional" && r.Auth != "none" {
			bad(key+".auth", r.Auth, "must be required, optional or none")
		}
		if r.Timeout < 0 || r.Timeout > 10*time.Minute {
			bad(key+".timeout", r.Timeout, "must be at most 10m (0 = proxy.timeout)")
		}
	}
}

// checkPrefix explains what is wrong with a route prefix, or returns "".
func checkPrefix(prefix string) string {
	if !strings.HasPrefix(prefix, "/") {
		return "must start with /"
	}
	if strings.ContainsAny(prefix, "?#*:;%\\ \t\r\n") || strings.Contains(prefix, "//") {
		return "must be a plain path (no //, ?, #, *, :, ;, %, \\ or spaces)"
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "." || seg == ".." {
			return "must not contain . or .. segments"
		}
	}
	norm := normalizePrefix(prefix)
	for _, r := range ReservedPrefixes {
		if norm == r || strings.HasPrefix(norm, r+"/") {
			return fmt.Sprintf("must not be on or under %s, which tokenshift serves itself (reserved: %s)", r, strings.Join(ReservedPrefixes, ", "))
		}
	}
	return ""
}

// normalizePrefix is the prefix as the gateway matches it: lower case
// (matching ignores ASCII case, so /app and /APP are one route, and /Admin
// is /admin) and without a trailing slash ("/app/" and "/app" are one
// route).
func normalizePrefix(p string) string {
	p = asciiLower(p)
	if len(p) > 1 {
		return strings.TrimRight(p, "/")
	}
	return p
}

// asciiLower lowers A-Z only, as the gateway's matching does.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}
