package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
)

var clientIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// validateClients checks clients[] (allowed_origins included) and
// default_client.
func (c *Config) validateClients(bad reporter) {
	ids := map[string]bool{}
	if len(c.Clients) == 0 {
		bad("clients", "[]", "at least one client must be registered")
	}
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		if !clientIDPattern.MatchString(cl.ID) || cl.ID == "unknown" || cl.ID == "other" {
			bad(key+".id", cl.ID, "must match %s and not be the reserved unknown/other", clientIDPattern)
		}
		if ids[cl.ID] {
			bad(key+".id", cl.ID, "is registered twice")
		}
		ids[cl.ID] = true
		if !slices.Contains([]string{"web", "spa", "mobile", "service"}, cl.Kind) {
			bad(key+".kind", cl.Kind, "must be web, spa, mobile or service")
		}
		if cl.TokenTransport != "body" && cl.TokenTransport != "cookie" {
			bad(key+".token_transport", cl.TokenTransport, "must be body or cookie")
		}
		for _, o := range cl.AllowedOrigins {
			if !isOrigin(o) {
				bad(key+".allowed_origins", o, "must list origins like https://app.example.com: http or https, a host, an optional port, no path, query, fragment or user")
			}
		}
	}
	if !ids[c.DefaultClient] {
		bad("default_client", c.DefaultClient, "must be the id of a registered client")
	}
}

// registeredClients is the set of ids in clients[], whether or not each is
// valid: the other sections check that they name one, and a bad id is
// reported once, by validateClients.
func (c *Config) registeredClients() map[string]bool {
	ids := make(map[string]bool, len(c.Clients))
	for _, cl := range c.Clients {
		ids[cl.ID] = true
	}
	return ids
}

// isOrigin reports whether s is exactly scheme://host[:port] with scheme http
// or https: what a browser sends in Origin, so that a configured value can
// ever match one.
func isOrigin(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return false
	}
	if u.User != nil || u.Path != "" || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return s == u.Scheme+"://"+u.Host
}
