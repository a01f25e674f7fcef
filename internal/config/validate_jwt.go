package config

import (
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// validateJWT checks jwt.*, jwt.rotation.* included. The algorithm list is
// auth.Algorithms, the one token's key ring holds.
func (c *Config) validateJWT(bad reporter) {
	j := c.JWT
	if j.Issuer == "" {
		bad("jwt.issuer", j.Issuer, "must not be empty")
	}
	if j.Audience == "" {
		bad("jwt.audience", j.Audience, "must not be empty")
	}
	if !auth.IsAlgorithm(j.Algorithm) {
		bad("jwt.algorithm", j.Algorithm, "must be %s", auth.AlgorithmNames())
	}
	// Seconds-long tokens are only for development and tests (rotation and
	// expiry can then be watched end to end in seconds).
	minAccess := time.Second
	if c.Production() {
		minAccess = time.Minute
	}
	if j.AccessTTL < minAccess || j.AccessTTL > 24*time.Hour {
		bad("jwt.access_ttl", j.AccessTTL, "must be between 1m and 24h (down to 1s in development)")
	}
	if j.RefreshTTL < j.AccessTTL || j.RefreshTTL > 90*24*time.Hour {
		bad("jwt.refresh_ttl", j.RefreshTTL, "must be at least jwt.access_ttl and at most 2160h")
	}
	if j.RefreshAbsoluteTTL <= 0 || j.RefreshAbsoluteTTL < j.RefreshTTL || j.RefreshAbsoluteTTL > 366*24*time.Hour {
		bad("jwt.refresh_absolute_ttl", j.RefreshAbsoluteTTL, "must be at least jwt.refresh_ttl (%s) and at most 8784h", j.RefreshTTL)
	}
	if j.VerifyCacheBytes != 0 && (j.VerifyCacheBytes < 1<<20 || j.VerifyCacheBytes > 64<<30) {
		bad("jwt.verify_cache_bytes", j.VerifyCacheBytes, "must be 0 (no cache: every request checks the signature) or between 1048576 (1 MiB) and 68719476736 (64 GiB)")
	}
	if j.Leeway < 0 || j.Leeway > time.Minute {
		bad("jwt.leeway", j.Leeway, "must be between 0 and 1m")
	}
	c.validateJWTRotation(bad)
	for key, name := range map[string]string{"jwt.access_cookie_name": j.AccessCookieName, "jwt.refresh_cookie_name": j.RefreshCookieName} {
		if !validCookieName(name) {
			bad(key, name, "must be 1-64 letters, digits, _ or -, without a __ prefix")
		}
	}
}

// validateJWTRotation checks jwt.rotation.*; retire_after is bounded below
// by how long a token signed just before retirement stays valid.
func (c *Config) validateJWTRotation(bad reporter) {
	j := c.JWT
	rot := j.Rotation
	if rot.PublishDelay < time.Second || rot.PublishDelay > 24*time.Hour {
		bad("jwt.rotation.publish_delay", rot.PublishDelay, "must be between 1s and 24h")
	}
	if rot.ReloadInterval < 100*time.Millisecond || rot.ReloadInterval > time.Minute {
		bad("jwt.rotation.reload_interval", rot.ReloadInterval, "must be between 100ms and 1m")
	}
	if minRetire := j.AccessTTL + j.Leeway; rot.RetireAfter != 0 && (rot.RetireAfter < minRetire || rot.RetireAfter > 30*24*time.Hour) {
		bad("jwt.rotation.retire_after", rot.RetireAfter, "must be 0 (= jwt.access_ttl + jwt.leeway) or between %s (jwt.access_ttl + jwt.leeway) and 720h", minRetire)
	}
	for _, a := range rot.Algorithms {
		if !auth.IsAlgorithm(a) {
			bad("jwt.rotation.algorithms", a, "must list only %s", auth.AlgorithmNames())
		}
	}
}
