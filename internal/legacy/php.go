package legacy

import (
	"context"
	"fmt"
	"regexp"
)

// phpIDRE is PHP's own session id alphabet and length range
// (session.sid_bits_per_character 4, 5 or 6 give [0-9a-f], [0-9a-v],
// [0-9a-zA-Z,-]; session.sid_length is 22 to 256).
var phpIDRE = regexp.MustCompile(`^[0-9a-zA-Z,-]{22,256}$`)

// php reads sessions of PHP's phpredis session handler.
type php struct {
	o     Options
	redis *redisSessions
}

func newPHP(o Options) (*php, error) {
	r, err := newRedisSessions(o)
	if err != nil {
		return nil, err
	}
	return &php{o: o, redis: r}, nil
}

func (s *php) Name() string      { return s.o.Name }
func (s *php) Kind() string      { return KindPHP }
func (s *php) Client() string    { return s.o.Client }
func (s *php) Cookies() []string { return []string{s.o.Cookie} }
func (s *php) Forget(string)     {}
func (s *php) ForgetUser(string) {}
func (s *php) Close() error      { return s.redis.close() }

func (s *php) Parse(cookie func(string) string) (string, error) {
	id := cookie(s.o.Cookie)
	if id == "" {
		return "", ErrNoCookie
	}
	if !phpIDRE.MatchString(id) {
		return "", ErrForged
	}
	return id, nil
}

// cacheID implements cacheKeyer: the cookie value is the id.
func (s *php) cacheID(raw string) (string, bool) { return raw, raw != "" }

func (s *php) Load(ctx context.Context, id string) (*Session, error) {
	if !phpIDRE.MatchString(id) {
		return nil, ErrForged
	}
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	data, ttl, found, err := s.redis.get(ctx, s.o.KeyPrefix+id)
	if err != nil {
		return nil, err
	}
	if !found || len(data) == 0 {
		// phpredis writes an empty string for a session without variables.
		return nil, ErrNotFound
	}
	vars, err := decodePHPSession(data, s.o.SerializeHandler)
	if err != nil {
		return nil, err
	}
	uid, err := phpUserID(vars, s.o.UserID)
	if err != nil {
		return nil, err
	}
	now := s.o.Clock()
	exp := now.Add(noExpiryLife)
	if ttl >= 0 {
		exp = now.Add(ttl)
	}
	return &Session{Source: s.o.Name, Client: s.o.Client, ID: id, UserID: uid, ExpiresAt: exp}, nil
}

// phpUserID reads the user id: a PHP string or int. PHP apps often store
// false/null/0 for "logged out"; false and null find no user, and so does
// the string "" (idString).
func phpUserID(vars map[string]any, path string) (string, error) {
	v, ok := lookup(vars, path)
	if !ok {
		return "", fmt.Errorf("%w: no user id at the configured path", ErrNotFound)
	}
	if b, isBool := v.(bool); isBool && !b {
		return "", fmt.Errorf("%w: user id is false", ErrNotFound)
	}
	return idString(vars, path)
}

func (s *php) End(ctx context.Context, id string) error {
	if !phpIDRE.MatchString(id) {
		return nil
	}
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.redis.del(ctx, s.o.KeyPrefix+id)
}

func (s *php) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.redis.ping(ctx)
}
