package legacy

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

// Options configure one legacy.sources[] entry. Field comments give the
// config key; zero values take the defaults named there.
type Options struct {
	Name   string // name: label in usage, metrics, logs and /auth/me "source"
	Kind   string // kind: express | django | php | callout
	Client string // client: the registered client these sessions belong to
	// Cookie (cookie) is the session cookie's name. Defaults: express
	// connect.sid, django sessionid, php PHPSESSID; callout: the first of
	// ForwardCookies.
	Cookie string
	// UserID (user_id) is the dotted path to the user id in the session
	// data: userId, passport.user, auth.id. Default _auth_user_id for
	// django; required for express and php; callout uses Subject.
	UserID string

	// express: cookie-signature secrets (the first signs in the Express app,
	// every one verifies), required.
	Secrets []string
	// express, php: the session Redis; Redis.URL is redis_url (standalone,
	// Sentinel or Cluster URL, as for storage.redis.url), required. Its
	// timeouts default to the store's (dial 2s, read 1s, write 1s).
	Redis store.RedisOptions
	// KeyPrefix (key_prefix): express default "sess:" (connect-redis), php
	// default "PHPREDIS_SESSION:" (phpredis).
	KeyPrefix string

	// django: SecretKey (secret_key) is Django's SECRET_KEY, required;
	// SecretKeyFallbacks (secret_key_fallbacks) its SECRET_KEY_FALLBACKS,
	// which verify but never sign.
	SecretKey          string
	SecretKeyFallbacks []string
	// DSN (dsn) of Django's database, required; Driver (driver) "pgx" or
	// "mysql", default inferred from the DSN (postgres:// or key=value:
	// pgx; user:pass@tcp(...)/db: mysql).
	DSN, Driver string
	// Table (table) is Django's session table, default django_session.
	Table string

	// php: SerializeHandler (serialize_handler) is PHP's
	// session.serialize_handler: php (default) or php_serialize.
	SerializeHandler string

	// callout: URL (url) answers 200 with JSON for a valid session;
	// ForwardCookies (forward_cookies) are the only cookies sent to it,
	// required; Subject (subject, default: UserID) is the dotted path to the
	// user id in the answer, Email and Roles (email, roles) optional paths.
	URL                   string
	ForwardCookies        []string
	Subject, Email, Roles string
	// CacheTTL (cache_ttl), every kind: the near cache keeps a verified
	// session (and its user) on this instance at most this long, and a
	// callout its answer; at most 1s, default 1s (0 here = the default).
	// CacheOff (cache_ttl: 0 in the config) turns both off.
	CacheTTL time.Duration
	CacheOff bool
	// HTTPClient replaces the callout's HTTP client (tests); its Timeout is
	// overridden by Timeout.
	HTTPClient *http.Client

	// Timeout (timeout) bounds one Load, End or Ping, default 1s.
	Timeout time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Defaults.
const (
	DefaultTimeout          = time.Second
	DefaultCacheTTL         = time.Second
	MaxCacheTTL             = time.Second
	DefaultDjangoTable      = "django_session"
	DefaultExpressKeyPrefix = "sess:"
	DefaultPHPKeyPrefix     = "PHPREDIS_SESSION:"
	// MaxDataBytes bounds one session's data (and a callout answer).
	MaxDataBytes = 64 << 10
	// MaxDepth bounds the nesting of session data.
	MaxDepth = 32
	// noExpiryLife is how long a session whose store sets no expiry at all
	// (a Redis key without TTL and no cookie.expires) counts as valid after
	// each read: ExpiresAt is never zero.
	noExpiryLife = 24 * time.Hour
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	cookieRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]{1,128}$") // RFC 6265 token
	tableRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)
	pathRE   = regexp.MustCompile(`^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+){0,15}$`)
)

// New validates o and builds the source without contacting its store (call
// Ping for that), so tokenshift can start while a legacy store is down.
func New(o Options) (Source, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var src Source
	switch o.Kind {
	case KindExpress:
		src, err = newExpress(o)
	case KindDjango:
		src, err = newDjango(o)
	case KindPHP:
		src, err = newPHP(o)
	default:
		src, err = newCallout(o)
	}
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return src, nil
}

// Check validates o as New does, opening nothing (for config.Validate).
func Check(o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	switch o.Kind {
	case KindDjango:
		_, err = djangoConnector(o)
	case KindExpress, KindPHP:
		var r *redisSessions
		if r, err = newRedisSessions(o); err == nil {
			_ = r.close() // go-redis dials lazily: nothing was opened
		}
	}
	return err
}

// withDefaults fills zero fields with the defaults of o's kind and rejects
// settings that cannot work, as an *OptionError naming the field.
func (o Options) withDefaults() (Options, error) {
	if !nameRE.MatchString(o.Name) {
		return o.bad("name", "want 1-63 of [a-z0-9_-], starting with a letter or digit")
	}
	if o.Client == "" {
		return o.bad("client", "empty: name the registered client these sessions belong to")
	}
	if o.Timeout < 0 {
		return o.bad("timeout", "must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.CacheTTL < 0 || o.CacheTTL > MaxCacheTTL {
		return o.bad("cache_ttl", "must be from 0 (off) to 1s: revocation must win over the cache")
	}
	switch {
	case o.CacheOff:
		o.CacheTTL = 0
	case o.CacheTTL == 0:
		o.CacheTTL = DefaultCacheTTL
	}
	if o.UserID != "" && !pathRE.MatchString(o.UserID) {
		return o.bad("user_id", "want a dotted path such as userId or passport.user")
	}
	var err error
	switch o.Kind {
	case KindExpress, KindPHP:
		o, err = o.redisDefaults()
	case KindDjango:
		o, err = o.djangoDefaults()
	case KindCallout:
		o, err = o.calloutDefaults()
	case "":
		return o.bad("kind", "empty: want express, django, php or callout")
	default:
		return o.bad("kind", "unknown kind %q: want express, django, php or callout", o.Kind)
	}
	if err != nil {
		return o, err
	}
	if !cookieRE.MatchString(o.Cookie) {
		return o.bad("cookie", "not a valid cookie name")
	}
	return o, nil
}

// bad is o with the *OptionError for field.
func (o Options) bad(field, format string, args ...any) (Options, error) {
	return o, &OptionError{Source: o.Name, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// redisDefaults are withDefaults for the kinds whose sessions are in Redis
// (express, php).
func (o Options) redisDefaults() (Options, error) {
	if o.Kind == KindExpress {
		if o.Cookie == "" {
			o.Cookie = "connect.sid"
		}
		if o.KeyPrefix == "" {
			o.KeyPrefix = DefaultExpressKeyPrefix
		}
		if len(o.Secrets) == 0 {
			return o.bad("secrets", "express needs the cookie-signature secrets of the Express app (express-session's secret)")
		}
		for i, s := range o.Secrets {
			if s == "" {
				return o.bad("secrets", "secret #%d is empty", i+1)
			}
		}
	} else {
		if o.Cookie == "" {
			o.Cookie = "PHPSESSID"
		}
		if o.KeyPrefix == "" {
			o.KeyPrefix = DefaultPHPKeyPrefix
		}
		switch o.SerializeHandler {
		case "":
			o.SerializeHandler = "php"
		case "php", "php_serialize":
		default:
			return o.bad("serialize_handler", "want php or php_serialize")
		}
	}
	if o.UserID == "" {
		return o.bad("user_id", "%s needs the dotted path to the user id in the session data", o.Kind)
	}
	if o.Redis.URL == "" {
		return o.bad("redis_url", "%s needs the URL of the Redis holding the sessions", o.Kind)
	}
	return o, nil
}

// djangoDefaults are withDefaults for kind django.
func (o Options) djangoDefaults() (Options, error) {
	if o.Cookie == "" {
		o.Cookie = "sessionid"
	}
	if o.UserID == "" {
		o.UserID = "_auth_user_id"
	}
	if o.SecretKey == "" {
		return o.bad("secret_key", "django needs the project's SECRET_KEY")
	}
	for i, s := range o.SecretKeyFallbacks {
		if s == "" {
			return o.bad("secret_key_fallbacks", "fallback #%d is empty", i+1)
		}
	}
	if o.Table == "" {
		o.Table = DefaultDjangoTable
	}
	if !tableRE.MatchString(o.Table) {
		return o.bad("table", "want a plain SQL name (letters, digits, _), optionally schema.table")
	}
	if o.DSN == "" {
		return o.bad("dsn", "django needs the DSN of the database holding %s", o.Table)
	}
	if o.Driver == "" {
		o.Driver = inferDriver(o.DSN)
	}
	return o, nil
}

// calloutDefaults are withDefaults for kind callout.
func (o Options) calloutDefaults() (Options, error) {
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o.bad("url", "want an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return o.bad("url", "must not hold credentials")
	}
	if len(o.ForwardCookies) == 0 {
		return o.bad("forward_cookies", "callout needs the names of the cookies to forward")
	}
	for _, c := range o.ForwardCookies {
		if !cookieRE.MatchString(c) {
			return o.bad("forward_cookies", "%q is not a cookie name", c)
		}
	}
	if o.Cookie == "" {
		o.Cookie = o.ForwardCookies[0]
	}
	if o.Subject == "" {
		o.Subject = o.UserID
	}
	if o.Subject == "" {
		return o.bad("subject", "callout needs the dotted path to the user id in the answer")
	}
	for _, p := range []struct{ field, path string }{{"subject", o.Subject}, {"email", o.Email}, {"roles", o.Roles}} {
		if p.path != "" && !pathRE.MatchString(p.path) {
			return o.bad(p.field, "want a dotted path such as user.id")
		}
	}
	return o, nil
}

// inferDriver guesses the SQL driver from the DSN's shape; an unknown shape
// is left to SQLConnector's error.
func inferDriver(dsn string) string {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "pgx"
	case strings.Contains(dsn, "@tcp("), strings.Contains(dsn, "@unix("), strings.HasPrefix(dsn, "tcp("):
		return "mysql"
	case strings.Contains(dsn, "="):
		return "pgx" // libpq key=value
	}
	return ""
}
