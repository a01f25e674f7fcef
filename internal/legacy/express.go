package legacy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// maxExpressIDLen bounds a signed session id (express-session's own are 32
// characters; genid may make others).
const maxExpressIDLen = 256

// express reads express-session + connect-redis sessions.
type express struct {
	o       Options
	secrets [][]byte
	redis   *redisSessions
}

func newExpress(o Options) (*express, error) {
	r, err := newRedisSessions(o)
	if err != nil {
		return nil, err
	}
	s := &express{o: o, redis: r}
	for _, sec := range o.Secrets {
		s.secrets = append(s.secrets, []byte(sec))
	}
	return s, nil
}

func (s *express) Name() string      { return s.o.Name }
func (s *express) Kind() string      { return KindExpress }
func (s *express) Client() string    { return s.o.Client }
func (s *express) Cookies() []string { return []string{s.o.Cookie} }
func (s *express) Forget(string)     {}
func (s *express) ForgetUser(string) {}
func (s *express) Close() error      { return s.redis.close() }

func (s *express) Parse(cookie func(string) string) (string, error) {
	raw := cookie(s.o.Cookie)
	if raw == "" {
		return "", ErrNoCookie
	}
	return verifyExpressCookie(raw, s.secrets)
}

// verifyExpressCookie checks an express-session cookie value: percent-
// encoded "s:" + cookie-signature's sign(id, secret), which is
// id + "." + base64(HMAC-SHA256(secret, id)) with the '=' padding cut.
// Like cookie-signature's unsign, it compares the whole signed string in
// constant time, for every secret (no early exit, so timing does not tell
// which secret matched).
func verifyExpressCookie(raw string, secrets [][]byte) (string, error) {
	if len(raw) > 3*(2+maxExpressIDLen+1+43) {
		return "", ErrForged
	}
	// express-session reads cookies with the cookie package, which
	// decodeURIComponent()s values holding a '%'.
	if strings.Contains(raw, "%") {
		dec, err := url.PathUnescape(raw)
		if err != nil {
			return "", ErrForged
		}
		raw = dec
	}
	signed, ok := strings.CutPrefix(raw, "s:")
	if !ok {
		return "", ErrForged
	}
	dot := strings.LastIndexByte(signed, '.')
	if dot <= 0 {
		return "", ErrForged
	}
	id := signed[:dot]
	match := 0
	for _, sec := range secrets {
		match |= subtle.ConstantTimeCompare([]byte(signExpress(id, sec)), []byte(signed))
	}
	if match != 1 {
		return "", ErrForged
	}
	if len(id) > maxExpressIDLen || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		// Signed by the app, yet not an id we want in a Redis key or a log.
		return "", ErrForged
	}
	return id, nil
}

// cacheID implements cacheKeyer: the id an express cookie value names,
// without verifying it or decoding anything (the cookie package's
// encodeURIComponent leaves the characters of express-session's ids as
// they are, and escapes the ':' after the "s"). ok is false for a value
// whose id part is percent-encoded: it takes the full verification.
func (s *express) cacheID(raw string) (string, bool) {
	var rest string
	switch {
	case strings.HasPrefix(raw, "s%3A"):
		rest = raw[len("s%3A"):]
	case strings.HasPrefix(raw, "s:"):
		rest = raw[len("s:"):]
	default:
		return "", false
	}
	// '.' is never percent-encoded and never in the base64 signature: the
	// last one ends the id, encoded or not.
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 || strings.IndexByte(rest[:dot], '%') >= 0 {
		return "", false
	}
	return rest[:dot], true
}

func signExpress(id string, secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	return id + "." + base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

// SignExpressCookie returns the cookie value express-session would set for
// id with secret (percent-encoded): for tests and tools.
func SignExpressCookie(id, secret string) string {
	return url.QueryEscape("s:" + signExpress(id, []byte(secret)))
}

func (s *express) Load(ctx context.Context, id string) (*Session, error) {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	data, ttl, found, err := s.redis.get(ctx, s.o.KeyPrefix+id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNotFound
	}
	now := s.o.Clock()
	sess, err := decodeExpressData(data, s.o.UserID, now, ttl)
	if err != nil {
		return nil, err
	}
	sess.Source, sess.Client, sess.ID = s.o.Name, s.o.Client, id
	return sess, nil
}

// decodeExpressData reads connect-redis's JSON.stringify(req.session):
// the user id at userPath and cookie.expires / cookie.originalMaxAge.
// ttl < 0: the key has no expiry.
//
// The expiry is the key's TTL, as for the Express app itself: connect-redis
// sets it from cookie.expires at every save and extends it at every touch
// (EXPIRE only: the stored cookie.expires keeps its value from the last
// save), and neither express-session nor connect-redis checks the stored
// cookie.expires when loading. Bounding by it would log out, earlier than
// the app does, every user of an app with rolling: true whose session was
// not modified since. cookie.expires bounds the session only when the key
// has no TTL (connect-redis's disableTTL).
func decodeExpressData(data []byte, userPath string, now time.Time, ttl time.Duration) (*Session, error) {
	m, err := decodeJSONObject(data)
	if err != nil {
		return nil, err
	}
	var cookieExp, issued time.Time
	if c, ok := m["cookie"]; ok && c != nil {
		cm, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: cookie is a %s, want an object", ErrMalformed, typeName(c))
		}
		switch e := cm["expires"].(type) {
		case nil:
		case bool: // express-session writes false for a browser-session cookie
		case string:
			t, err := time.Parse(time.RFC3339Nano, e)
			if err != nil {
				return nil, fmt.Errorf("%w: cookie.expires is not an ISO 8601 time", ErrMalformed)
			}
			cookieExp = t
		default:
			return nil, fmt.Errorf("%w: cookie.expires is a %s, want a string", ErrMalformed, typeName(e))
		}
		switch a := cm["originalMaxAge"].(type) {
		case nil:
		case json.Number:
			ms, err := a.Int64()
			if err != nil || ms < 0 {
				return nil, fmt.Errorf("%w: cookie.originalMaxAge is not a whole number of milliseconds", ErrMalformed)
			}
			if !cookieExp.IsZero() {
				// expires was set to save time + maxAge at the last save.
				issued = cookieExp.Add(-time.Duration(ms) * time.Millisecond)
			}
		default:
			return nil, fmt.Errorf("%w: cookie.originalMaxAge is a %s, want a number", ErrMalformed, typeName(a))
		}
	}
	var exp time.Time
	switch {
	case ttl >= 0:
		exp = now.Add(ttl)
	case !cookieExp.IsZero():
		if !cookieExp.After(now) {
			return nil, fmt.Errorf("%w: cookie.expires passed", ErrNotFound)
		}
		exp = cookieExp
	default:
		exp = now.Add(noExpiryLife)
	}
	uid, err := idString(m, userPath)
	if err != nil {
		return nil, err
	}
	return &Session{UserID: uid, ExpiresAt: exp, IssuedAt: issued}, nil
}

func (s *express) End(ctx context.Context, id string) error {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.redis.del(ctx, s.o.KeyPrefix+id)
}

func (s *express) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	return s.redis.ping(ctx)
}
