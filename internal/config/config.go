// Package config turns the embedded defaults, an optional YAML file, TOKENSHIFT_*
// environment variables and command-line flags into one typed, validated Config.
// Only cmd/ reads it; every other package receives its own typed options.
package config

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"github.com/tokenshift/tokenshift/configs"
)

// EnvPrefix is prepended to upper-cased keys to form environment variable names.
const EnvPrefix = "TOKENSHIFT"

// Config is the effective configuration. Field tags are the dotted keys of
// configs/tokenshift.yaml, which documents each one.
type Config struct {
	Env           string          `mapstructure:"env"`
	Server        ServerConfig    `mapstructure:"server"`
	Log           LogConfig       `mapstructure:"log"`
	Storage       StorageConfig   `mapstructure:"storage"`
	Session       SessionConfig   `mapstructure:"session"`
	JWT           JWTConfig       `mapstructure:"jwt"`
	Users         UsersConfig     `mapstructure:"users"`
	Clients       []ClientConfig  `mapstructure:"clients"`
	DefaultClient string          `mapstructure:"default_client"`
	Migration     MigrationConfig `mapstructure:"migration"`
	Usage         UsageConfig     `mapstructure:"usage"`
	Guard         GuardConfig     `mapstructure:"guard"`
	RateLimit     RateLimitConfig `mapstructure:"ratelimit"`
	CORS          CORSConfig      `mapstructure:"cors"`

	// The gateway: forward-auth and the reverse proxy (internal/gateway).
	ForwardAuth ForwardAuthConfig `mapstructure:"forward_auth"`
	Proxy       ProxyConfig       `mapstructure:"proxy"`

	// Legacy: the sessions the product already has (issue 12,
	// docs/legacy-sessions.md).
	Legacy LegacyConfig `mapstructure:"legacy"`

	// File is the --config path that was merged, "" for embedded defaults only.
	File string `mapstructure:"-"`
}

type ServerConfig struct {
	Addr            string        `mapstructure:"addr"`
	PublicURL       string        `mapstructure:"public_url"`
	ReadTimeout     time.Duration `mapstructure:"read_timeout"`
	WriteTimeout    time.Duration `mapstructure:"write_timeout"`
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`
	BodyLimit       int           `mapstructure:"body_limit"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	TrustedProxies  []string      `mapstructure:"trusted_proxies"`
}

type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type StorageConfig struct {
	Redis RedisConfig `mapstructure:"redis"`
}

type RedisConfig struct {
	URL          string        `mapstructure:"url"`
	DialTimeout  time.Duration `mapstructure:"dial_timeout"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	PoolTimeout  time.Duration `mapstructure:"pool_timeout"`
	PoolSize     int           `mapstructure:"pool_size"`
	// MinReplicas > 0: a login, refresh, logout or revocation answers success
	// only once that many replicas acknowledged its writes (Redis WAIT, at
	// most ReplicaTimeout), else 503. 0 = off.
	MinReplicas    int           `mapstructure:"min_replicas"`
	ReplicaTimeout time.Duration `mapstructure:"replica_timeout"`
}

type SessionConfig struct {
	CookieName      string        `mapstructure:"cookie_name"`
	CookieSecure    bool          `mapstructure:"cookie_secure"`
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`
	AbsoluteTimeout time.Duration `mapstructure:"absolute_timeout"`
	MaxPerUser      int           `mapstructure:"max_per_user"`
	OnLimit         string        `mapstructure:"on_limit"`
	// NearCacheBytes bounds the in-memory cache of verified sessions; 0
	// turns it off. NearCacheTTL is how long a cached session is used
	// without re-reading the store.
	NearCacheBytes int64         `mapstructure:"near_cache_bytes"`
	NearCacheTTL   time.Duration `mapstructure:"near_cache_ttl"`
}

type JWTConfig struct {
	Issuer     string        `mapstructure:"issuer"`
	Audience   string        `mapstructure:"audience"`
	Algorithm  string        `mapstructure:"algorithm"`
	KeysDir    string        `mapstructure:"keys_dir"`
	SigningKID string        `mapstructure:"signing_kid"`
	AccessTTL  time.Duration `mapstructure:"access_ttl"`
	RefreshTTL time.Duration `mapstructure:"refresh_ttl"`
	// RefreshAbsoluteTTL caps a login's token family: no refresh token
	// expires later than this after the login, however often it is refreshed.
	RefreshAbsoluteTTL time.Duration  `mapstructure:"refresh_absolute_ttl"`
	Leeway             time.Duration  `mapstructure:"leeway"`
	VerifyCacheBytes   int64          `mapstructure:"verify_cache_bytes"`
	AccessCookieName   string         `mapstructure:"access_cookie_name"`
	RefreshCookieName  string         `mapstructure:"refresh_cookie_name"`
	Rotation           RotationConfig `mapstructure:"rotation"`
}

// RotationConfig is jwt.rotation: how signing keys are rotated at run time.
type RotationConfig struct {
	PublishDelay   time.Duration `mapstructure:"publish_delay"`
	RetireAfter    time.Duration `mapstructure:"retire_after"`
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	Algorithms     []string      `mapstructure:"algorithms"`
}

type UsersConfig struct {
	File                string             `mapstructure:"file"`
	SQL                 UsersSQLConfig     `mapstructure:"sql"`
	DummyHash           string             `mapstructure:"dummy_hash"`
	AllowPasswordChange string             `mapstructure:"allow_password_change"`
	PasswordCost        int                `mapstructure:"password_cost"`
	HashLimits          HashLimitsConfig   `mapstructure:"hash_limits"`
	HashWarningInterval time.Duration      `mapstructure:"hash_warning_interval"`
	SpringPBKDF2        SpringPBKDF2Config `mapstructure:"spring_pbkdf2"`
}

// UsersSQLConfig is the legacy application's users table (docs/user-stores.md).
type UsersSQLConfig struct {
	Driver          string        `mapstructure:"driver"`
	DSN             string        `mapstructure:"dsn"`
	Query           string        `mapstructure:"query"`
	QueryByID       string        `mapstructure:"query_by_id"`
	RolesSeparator  string        `mapstructure:"roles_separator"`
	MaxOpenConns    int           `mapstructure:"max_open_conns"`
	MaxIdleConns    int           `mapstructure:"max_idle_conns"`
	ConnMaxLifetime time.Duration `mapstructure:"conn_max_lifetime"`
	QueryTimeout    time.Duration `mapstructure:"query_timeout"`
}

// Enabled reports whether the SQL user store is configured.
func (s UsersSQLConfig) Enabled() bool { return s.DSN != "" }

type HashLimitsConfig struct {
	BcryptMaxCost      int           `mapstructure:"bcrypt_max_cost"`
	PBKDF2MaxWork      int           `mapstructure:"pbkdf2_max_work"`
	Argon2MaxMemoryKiB int           `mapstructure:"argon2_max_memory_kib"`
	Argon2MaxWork      int           `mapstructure:"argon2_max_work"`
	Argon2MaxThreads   int           `mapstructure:"argon2_max_threads"`
	MaxConcurrent      int           `mapstructure:"max_concurrent"`
	QueueTimeout       time.Duration `mapstructure:"queue_timeout"`
}

type SpringPBKDF2Config struct {
	Algorithm  string `mapstructure:"algorithm"`
	Iterations int    `mapstructure:"iterations"`
	SaltLength int    `mapstructure:"salt_length"`
	Secret     string `mapstructure:"secret"`
	Encoding   string `mapstructure:"encoding"`
}

// PasswordChangeAllowed resolves users.allow_password_change: "auto" allows
// it with a users file or the dev users, and not with a SQL store, whose
// table the legacy application owns.
func (u UsersConfig) PasswordChangeAllowed() bool {
	switch u.AllowPasswordChange {
	case "true":
		return true
	case "false":
		return false
	}
	return !u.SQL.Enabled()
}

type ClientConfig struct {
	ID             string `mapstructure:"id"`
	Name           string `mapstructure:"name"`
	Kind           string `mapstructure:"kind"`
	TokenTransport string `mapstructure:"token_transport"`
	// AllowedOrigins restricts browser logins, refreshes and exchanges of
	// this client to these origins; empty = no restriction.
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

type MigrationConfig struct {
	Phase         string            `mapstructure:"phase"`
	Clients       map[string]string `mapstructure:"clients"`
	Rollout       float64           `mapstructure:"rollout"`
	RolloutSeed   string            `mapstructure:"rollout_seed"`
	ExemptClients []string          `mapstructure:"exempt_clients"`
	Sunset        string            `mapstructure:"sunset"`
	DeprecatedAt  string            `mapstructure:"deprecated_at"`
	DocsURL       string            `mapstructure:"docs_url"`
	ShadowCheck   bool              `mapstructure:"shadow_check"`
}

type UsageConfig struct {
	FlushInterval   time.Duration `mapstructure:"flush_interval"`
	Retention       time.Duration `mapstructure:"retention"`
	MaxSessionShare float64       `mapstructure:"max_session_share"`
}

type GuardConfig struct {
	Window          time.Duration `mapstructure:"window"`
	MaxSessionShare float64       `mapstructure:"max_session_share"`
}

type RateLimitConfig struct {
	PerAccount int           `mapstructure:"per_account"`
	PerIP      int           `mapstructure:"per_ip"`
	Window     time.Duration `mapstructure:"window"`
}

type CORSConfig struct {
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

// ForwardAuthConfig configures /auth/verify and the identity handed to
// upstream apps (also by the reverse proxy).
type ForwardAuthConfig struct {
	Enabled       bool          `mapstructure:"enabled"`
	UserHeader    string        `mapstructure:"user_header"`
	EmailHeader   string        `mapstructure:"email_header"`
	ClientHeader  string        `mapstructure:"client_header"`
	SchemeHeader  string        `mapstructure:"scheme_header"`
	RolesHeader   string        `mapstructure:"roles_header"`
	Token         bool          `mapstructure:"token"`
	TokenHeader   string        `mapstructure:"token_header"`
	TokenAudience string        `mapstructure:"token_audience"`
	TokenTTL      time.Duration `mapstructure:"token_ttl"`
	CSRF          string        `mapstructure:"csrf"`
	ProblemHeader string        `mapstructure:"problem_header"`
}

// ProxyConfig configures the reverse proxy.
type ProxyConfig struct {
	Timeout          time.Duration `mapstructure:"timeout"`
	StripCredentials bool          `mapstructure:"strip_credentials"`
	CSRF             string        `mapstructure:"csrf"`
	Routes           []RouteConfig `mapstructure:"routes"`
	// StripHeaders are further request headers never sent upstream.
	StripHeaders []string `mapstructure:"strip_headers"`
}

// RouteConfig is one proxy.routes entry.
type RouteConfig struct {
	Prefix       string        `mapstructure:"prefix"`
	Upstream     string        `mapstructure:"upstream"`
	Auth         string        `mapstructure:"auth"`
	Timeout      time.Duration `mapstructure:"timeout"`
	StripPrefix  bool          `mapstructure:"strip_prefix"`
	PreserveHost bool          `mapstructure:"preserve_host"`
}

// LegacyConfig is the legacy section: the product's own session stores.
type LegacyConfig struct {
	Sources []LegacySourceConfig `mapstructure:"sources"`
}

// LegacySourceConfig is one legacy.sources entry (internal/legacy.Options
// says what each key means per kind).
type LegacySourceConfig struct {
	Name    string   `mapstructure:"name"`
	Kind    string   `mapstructure:"kind"`
	Client  string   `mapstructure:"client"`
	Cookie  string   `mapstructure:"cookie"`
	UserID  string   `mapstructure:"user_id"`
	Secrets []string `mapstructure:"secrets"`
	// RedisURL: express, php.
	RedisURL  string `mapstructure:"redis_url"`
	KeyPrefix string `mapstructure:"key_prefix"`
	// django
	SecretKey          string   `mapstructure:"secret_key"`
	SecretKeyFallbacks []string `mapstructure:"secret_key_fallbacks"`
	DSN                string   `mapstructure:"dsn"`
	Driver             string   `mapstructure:"driver"`
	Table              string   `mapstructure:"table"`
	// php
	SerializeHandler string `mapstructure:"serialize_handler"`
	// callout
	URL            string        `mapstructure:"url"`
	ForwardCookies []string      `mapstructure:"forward_cookies"`
	Subject        string        `mapstructure:"subject"`
	Email          string        `mapstructure:"email"`
	Roles          string        `mapstructure:"roles"`
	Timeout        time.Duration `mapstructure:"timeout"`
	// CacheTTL, every kind: the near cache of verified sessions on each
	// instance (callout: also its answers), at most 1s; nil (absent) = 1s,
	// 0 = off. A pointer, since a list entry has no embedded default.
	CacheTTL *time.Duration `mapstructure:"cache_ttl"`
	// OnExchange: keep | end (default keep) the legacy session after POST
	// /auth/exchange.
	OnExchange string `mapstructure:"on_exchange"`
}

// Production reports whether env is production.
func (c *Config) Production() bool { return c.Env == "production" }

// Load builds the effective config: embedded defaults, then file (if not ""),
// then TOKENSHIFT_* env. Flags are bound by the caller through v before Load
// unmarshals (pass nil for none). It does not validate: call Validate.
func Load(file string, v *viper.Viper) (*Config, error) {
	if v == nil {
		v = viper.New()
	}
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.DefaultYAML)); err != nil {
		return nil, fmt.Errorf("embedded defaults: %w", err)
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.MergeInConfig(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()

	var c Config
	// ErrorUnused: a key nobody reads is a typo ("sesion:") that would
	// otherwise be ignored in silence while the operator believes it applies.
	if err := v.Unmarshal(&c, viper.DecodeHook(decodeHook()), func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
	}); err != nil {
		return nil, decodeError(err)
	}
	c.File = file
	return &c, nil
}

// EnvName is the environment variable that sets a dotted key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}
