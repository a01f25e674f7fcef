package session

import (
	"crypto/rand"
	"fmt"
	"io"
	"time"
)

// LimitPolicy says what Create does when a user already has MaxPerUser logins.
type LimitPolicy string

const (
	// LimitEvictOldest ends the user's oldest live logins to make room.
	LimitEvictOldest LimitPolicy = "evict_oldest"
	// LimitRefuse makes Create fail with ErrLimitReached.
	LimitRefuse LimitPolicy = "refuse"
)

// Options of a Manager. Zero fields take the DefaultOptions values.
type Options struct {
	// IdleTimeout ends a cookie session after this long unused. Default 30m.
	// Because last-seen is written at most every TouchInterval, a session may
	// end up to TouchInterval earlier than IdleTimeout after its last use.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a cookie session this long after login, however
	// active it is. Default 12h.
	AbsoluteTimeout time.Duration
	// FamilyTTL is how long a login lives for its tokens without a refresh
	// (TouchFamily). Default 168h, the refresh token lifetime.
	FamilyTTL time.Duration
	// TouchInterval throttles last-seen writes so that authenticating a
	// request is normally a read only. Default 1m; must be below IdleTimeout.
	TouchInterval time.Duration
	// MaxPerUser caps live logins per user; 0 means unlimited. The cap is
	// checked without a lock across instances, so two simultaneous logins may
	// briefly exceed it by one.
	MaxPerUser int
	// OnLimit: LimitEvictOldest (default) or LimitRefuse.
	OnLimit LimitPolicy
	// Revocations is the revocation mirror. With it, every ending of a
	// login revokes its sid there, and the near cache (cache.go) is on
	// unless CacheBytes is negative. Without it, every Verify reads the store.
	Revocations Revocations
	// CacheBytes bounds the near cache by an estimate of its memory.
	// Default 32 MiB (about 47,000 logins with a browser User-Agent); negative turns the cache off.
	CacheBytes int64
	// CacheTTL is the longest a cached login is used without re-reading the
	// store, and so how long one is still accepted while the store does not
	// answer. Default 30s.
	CacheTTL time.Duration
	// TouchFlushInterval is how often Run writes the last-seen touches of
	// cached logins to the store. Default 1s.
	TouchFlushInterval time.Duration
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Rand is the source of session ids and cookie secrets; crypto/rand by
	// default. Only tests should set it.
	Rand io.Reader
}

// DefaultOptions holds the defaults New applies to zero fields.
var DefaultOptions = Options{
	IdleTimeout:     30 * time.Minute,
	AbsoluteTimeout: 12 * time.Hour,
	FamilyTTL:       168 * time.Hour,
	TouchInterval:   time.Minute,
	MaxPerUser:      0,
	OnLimit:         LimitEvictOldest,
	CacheBytes:      32 << 20,
	CacheTTL:        30 * time.Second,

	TouchFlushInterval: time.Second,
}

// withDefaults fills zero fields and rejects settings that cannot work.
func (c Options) withDefaults() (Options, error) {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"IdleTimeout", &c.IdleTimeout, DefaultOptions.IdleTimeout},
		{"AbsoluteTimeout", &c.AbsoluteTimeout, DefaultOptions.AbsoluteTimeout},
		{"FamilyTTL", &c.FamilyTTL, DefaultOptions.FamilyTTL},
		{"TouchInterval", &c.TouchInterval, DefaultOptions.TouchInterval},
		{"CacheTTL", &c.CacheTTL, DefaultOptions.CacheTTL},
		{"TouchFlushInterval", &c.TouchFlushInterval, DefaultOptions.TouchFlushInterval},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("session: %s must not be negative (got %v)", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.TouchInterval >= c.IdleTimeout {
		return c, fmt.Errorf("session: TouchInterval (%v) must be shorter than IdleTimeout (%v), or sessions would expire while in use", c.TouchInterval, c.IdleTimeout)
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultOptions.CacheBytes
	}
	if c.MaxPerUser < 0 {
		return c, fmt.Errorf("session: MaxPerUser must not be negative (got %d)", c.MaxPerUser)
	}
	switch c.OnLimit {
	case "":
		c.OnLimit = DefaultOptions.OnLimit
	case LimitEvictOldest, LimitRefuse:
	default:
		return c, fmt.Errorf("session: OnLimit must be %q or %q (got %q)", LimitEvictOldest, LimitRefuse, c.OnLimit)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c, nil
}
