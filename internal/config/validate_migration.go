package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
)

// validateMigration checks migration.*, the seed of the flag state; the
// clients it names must be registered in clients[].
func (c *Config) validateMigration(bad reporter) {
	m := c.Migration
	ids := c.registeredClients()
	if _, err := featureflags.ParsePhase(m.Phase); err != nil {
		bad("migration.phase", m.Phase, "must be legacy, dual, prefer-jwt, retiring or jwt-only")
	}
	for id, ph := range m.Clients {
		if !ids[id] {
			bad("migration.clients."+id, id, "is not a registered client")
		}
		if _, err := featureflags.ParsePhase(ph); err != nil {
			bad("migration.clients."+id, ph, "must be legacy, dual, prefer-jwt, retiring or jwt-only")
		}
	}
	if m.Rollout < 0 || m.Rollout > 100 {
		bad("migration.rollout", m.Rollout, "must be a percentage between 0 and 100")
	}
	for _, id := range m.ExemptClients {
		if !ids[id] {
			bad("migration.exempt_clients", id, "is not a registered client")
		}
	}
	if m.Sunset != "" {
		if _, err := time.Parse(time.RFC3339, m.Sunset); err != nil {
			bad("migration.sunset", m.Sunset, "must be an RFC 3339 time like 2027-06-30T00:00:00Z")
		}
	}
	if m.DeprecatedAt != "" {
		dep, err := time.Parse(time.RFC3339, m.DeprecatedAt)
		if err != nil {
			bad("migration.deprecated_at", m.DeprecatedAt, "must be an RFC 3339 time like 2026-09-01T00:00:00Z")
		} else if sun, err := time.Parse(time.RFC3339, m.Sunset); err == nil && m.Sunset != "" && sun.Before(dep) {
			bad("migration.deprecated_at", m.DeprecatedAt, "must not be after migration.sunset %s (RFC 9745)", m.Sunset)
		}
	}
	if m.DocsURL != "" {
		if u, err := url.Parse(m.DocsURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(m.DocsURL, "<>\"\r\n ") {
			bad("migration.docs_url", m.DocsURL, "must be an http(s) URL")
		}
	}
}
