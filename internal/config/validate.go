package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
)

// ErrInvalid is wrapped by every validation failure, so callers can exit 2.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the key, the value found and what is wrong with it.
type FieldError struct {
	Key    string
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	if strings.Contains(e.Key, "[") {
		// A list entry (proxy.routes[2].auth): lists come only from a file.
		return fmt.Sprintf("%s: %s (got %q; set in a config file; no env variable)", e.Key, e.Reason, fmt.Sprint(e.Value))
	}
	return fmt.Sprintf("%s: %s (got %q; env %s)", e.Key, e.Reason, fmt.Sprint(e.Value), EnvName(e.Key))
}

// ValidationError lists every problem found, not just the first.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, f := range e.Fields {
		b.WriteString("\n  - ")
		b.WriteString(f.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

var clientIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

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

// Validate checks every key and the production rules. The error, if any, is a
// *ValidationError listing each bad key with its value.
func (c *Config) Validate() error {
	var errs []*FieldError
	bad := func(key string, val any, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Value: val, Reason: fmt.Sprintf(format, args...)})
	}

	if c.Env != "development" && c.Env != "production" {
		bad("env", c.Env, "must be development or production")
	}
	if _, _, err := net.SplitHostPort(c.Server.Addr); err != nil {
		bad("server.addr", c.Server.Addr, "must be host:port or :port")
	}
	if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("server.public_url", c.Server.PublicURL, "must be an origin like https://auth.example.com")
	}
	positive(bad, "server.read_timeout", c.Server.ReadTimeout)
	positive(bad, "server.write_timeout", c.Server.WriteTimeout)
	positive(bad, "server.idle_timeout", c.Server.IdleTimeout)
	positive(bad, "server.shutdown_timeout", c.Server.ShutdownTimeout)
	if c.Server.BodyLimit < 1024 || c.Server.BodyLimit > 16<<20 {
		bad("server.body_limit", c.Server.BodyLimit, "must be between 1024 and 16777216 bytes")
	}
	for _, p := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			bad("server.trusted_proxies", p, "must be an IP address or CIDR")
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", c.Log.Level, "must be debug, info, warn or error")
	}
	if !slices.Contains([]string{"", "text", "json"}, c.Log.Format) {
		bad("log.format", c.Log.Format, "must be text or json (or empty for the env default)")
	}

	r := c.Storage.Redis
	if r.URL != "" {
		if u, err := url.Parse(r.URL); err != nil || !slices.Contains([]string{"redis", "rediss", "redis+sentinel", "redis+cluster"}, u.Scheme) {
			bad("storage.redis.url", MaskURL(r.URL), "must start with redis://, rediss://, redis+sentinel:// or redis+cluster://")
		}
	}
	positive(bad, "storage.redis.dial_timeout", r.DialTimeout)
	positive(bad, "storage.redis.read_timeout", r.ReadTimeout)
	positive(bad, "storage.redis.write_timeout", r.WriteTimeout)
	positive(bad, "storage.redis.pool_timeout", r.PoolTimeout)
	if r.PoolSize < 0 {
		bad("storage.redis.pool_size", r.PoolSize, "must be 0 (default) or more")
	}
	if r.MinReplicas < 0 {
		bad("storage.redis.min_replicas", r.MinReplicas, "must be 0 (off) or the number of replicas that must acknowledge a credential write")
	}
	positive(bad, "storage.redis.replica_timeout", r.ReplicaTimeout)
	if r.MinReplicas > 0 && r.ReplicaTimeout >= r.ReadTimeout {
		// The WAIT that carries the timeout is one reply, bounded by read_timeout.
		bad("storage.redis.replica_timeout", r.ReplicaTimeout, "must be shorter than storage.redis.read_timeout (%s)", r.ReadTimeout)
	}

	s := c.Session
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(s.CookieName) || strings.HasPrefix(s.CookieName, "__") {
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

	j := c.JWT
	if j.Issuer == "" {
		bad("jwt.issuer", j.Issuer, "must not be empty")
	}
	if j.Audience == "" {
		bad("jwt.audience", j.Audience, "must not be empty")
	}
	if !slices.Contains([]string{"EdDSA", "ES256", "RS256", "HS256"}, j.Algorithm) {
		bad("jwt.algorithm", j.Algorithm, "must be EdDSA, ES256, RS256 or HS256")
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
	if j.Leeway < 0 || j.Leeway > time.Minute {
		bad("jwt.leeway", j.Leeway, "must be between 0 and 1m")
	}
	if j.VerifyCacheBytes != 0 && (j.VerifyCacheBytes < 1<<20 || j.VerifyCacheBytes > 64<<30) {
		bad("jwt.verify_cache_bytes", j.VerifyCacheBytes, "must be 0 (no cache: every request checks the signature) or between 1048576 (1 MiB) and 68719476736 (64 GiB)")
	}
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
		if !slices.Contains([]string{"EdDSA", "ES256", "RS256", "HS256"}, a) {
			bad("jwt.rotation.algorithms", a, "must list only EdDSA, ES256, RS256 or HS256")
		}
	}
	for key, name := range map[string]string{"jwt.access_cookie_name": j.AccessCookieName, "jwt.refresh_cookie_name": j.RefreshCookieName} {
		if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(name) || strings.HasPrefix(name, "__") {
			bad(key, name, "must be 1-64 letters, digits, _ or -, without a __ prefix")
		}
	}

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

	m := c.Migration
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

	if c.Usage.FlushInterval < 100*time.Millisecond || c.Usage.FlushInterval > time.Minute {
		bad("usage.flush_interval", c.Usage.FlushInterval, "must be between 100ms and 1m")
	}
	if c.Usage.Retention < 48*time.Hour {
		bad("usage.retention", c.Usage.Retention, "must be at least 48h")
	}
	share(bad, "usage.max_session_share", c.Usage.MaxSessionShare)
	if c.Guard.Window < time.Minute {
		bad("guard.window", c.Guard.Window, "must be at least 1m")
	}
	if c.Guard.Window > c.Usage.Retention && c.Usage.Retention >= 48*time.Hour {
		// Usage older than the retention is gone: the guard could never see
		// its whole window and would refuse every forward move.
		bad("guard.window", c.Guard.Window, "must not be longer than usage.retention (%s): usage older than the retention is deleted, so the guard could never observe its whole window", c.Usage.Retention)
	}
	share(bad, "guard.max_session_share", c.Guard.MaxSessionShare)

	validateUsers(bad, c)

	if c.RateLimit.PerAccount < 1 {
		bad("ratelimit.per_account", c.RateLimit.PerAccount, "must be at least 1")
	}
	if c.RateLimit.PerIP < 1 {
		bad("ratelimit.per_ip", c.RateLimit.PerIP, "must be at least 1")
	}
	positive(bad, "ratelimit.window", c.RateLimit.Window)
	for _, o := range c.CORS.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" || o == "null" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("cors.allowed_origins", o, "must be an explicit origin like https://app.example.com (never * or null)")
		}
	}

	c.validateForwardAuth(bad)
	c.validateProxy(bad)

	if c.Production() {
		if j.KeysDir == "" && j.Algorithm != "HS256" {
			bad("jwt.keys_dir", j.KeysDir, "production needs real signing keys (generate them with `tokenshift keys generate`)")
		}
		if j.KeysDir == "" && j.Algorithm == "HS256" {
			bad("jwt.keys_dir", j.KeysDir, "production needs a real HMAC key file")
		}
		if !s.CookieSecure {
			bad("session.cookie_secure", s.CookieSecure, "production requires secure cookies")
		}
		if c.Users.File == "" && !c.Users.SQL.Enabled() {
			bad("users.file", c.Users.File, "production requires a user file or users.sql.dsn; the dev users are never loaded in production")
		}
		if c.Users.PasswordCost < 10 {
			bad("users.password_cost", c.Users.PasswordCost, "production requires a bcrypt cost of at least 10")
		}
		if strings.HasPrefix(c.Server.PublicURL, "http://") {
			bad("server.public_url", c.Server.PublicURL, "production requires https")
		}
	}

	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

func positive(bad func(string, any, string, ...any), key string, d time.Duration) {
	if d <= 0 {
		bad(key, d, "must be a positive duration like 10s")
	}
}

func share(bad func(string, any, string, ...any), key string, v float64) {
	if v < 0 || v > 1 {
		bad(key, v, "must be a fraction between 0 and 1 (0.01 = 1%%)")
	}
}

// MaskURL hides the password of a URL for printing.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "xxxxx@" + raw[i+1:]
		}
		return raw
	}
	return u.Redacted()
}
