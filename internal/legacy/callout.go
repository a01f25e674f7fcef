package legacy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxCalloutCookieBytes bounds the forwarded Cookie header.
const maxCalloutCookieBytes = 8 << 10

// maxCalloutCache bounds the number of cached answers; when full, expired
// ones are dropped and, failing that, nothing new is cached.
const maxCalloutCache = 10000

// callout asks the legacy app itself whether a request's cookies are a
// session. Its id is the forwarded Cookie header.
type callout struct {
	o      Options
	client *http.Client

	mu    sync.Mutex
	cache map[[32]byte]calloutEntry
	// gen counts Forget and ForgetUser calls: an answer fetched across one
	// is not cached, so a revocation during a callout still wins.
	gen uint64
}

type calloutEntry struct {
	sess    *Session // nil: the app said 401/403/404
	expires time.Time
}

func newCallout(o Options) (*callout, error) {
	c := &http.Client{}
	if o.HTTPClient != nil {
		*c = *o.HTTPClient
	}
	c.Timeout = o.Timeout
	// A redirect (usually to a login page) is the app's way of saying
	// "not logged in"; following it could carry the cookies elsewhere.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &callout{o: o, client: c, cache: map[[32]byte]calloutEntry{}}, nil
}

func (s *callout) Name() string      { return s.o.Name }
func (s *callout) Kind() string      { return KindCallout }
func (s *callout) Client() string    { return s.o.Client }
func (s *callout) Cookies() []string { return append([]string(nil), s.o.ForwardCookies...) }
func (s *callout) Close() error      { s.client.CloseIdleConnections(); return nil }

// Parse builds the Cookie header of the forwarded cookies, in configured
// order. There is nothing to verify without the app, so it only refuses
// what cannot be a cookie value.
func (s *callout) Parse(cookie func(string) string) (string, error) {
	var b strings.Builder
	for _, name := range s.o.ForwardCookies {
		v := cookie(name)
		if v == "" {
			continue
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x21 || r == 0x7f || r == ';' || r == ',' || r == '"' || r == '\\' }) {
			return "", ErrForged
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(name + "=" + v)
		if b.Len() > maxCalloutCookieBytes {
			return "", ErrForged
		}
	}
	if b.Len() == 0 {
		return "", ErrNoCookie
	}
	return b.String(), nil
}

func (s *callout) Load(ctx context.Context, id string) (*Session, error) {
	key := sha256.Sum256([]byte(id))
	now := s.o.Clock()
	s.mu.Lock()
	e, ok := s.cache[key]
	gen := s.gen
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.sess == nil {
			return nil, ErrNotFound
		}
		return cloneSession(e.sess), nil
	}

	sess, err := s.fetch(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err // outages and bad answers are not cached
	}
	if sess != nil {
		sess.ExpiresAt = now.Add(s.o.CacheTTL)
	}
	s.put(key, calloutEntry{sess: sess, expires: now.Add(s.o.CacheTTL)}, now, gen)
	if sess == nil {
		return nil, err
	}
	return cloneSession(sess), nil
}

func cloneSession(s *Session) *Session {
	c := *s
	c.Roles = slices.Clone(s.Roles)
	return &c
}

func (s *callout) put(key [32]byte, e calloutEntry, now time.Time, gen uint64) {
	if s.o.CacheTTL <= 0 {
		return // cache_ttl: 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if len(s.cache) >= maxCalloutCache {
		for k, old := range s.cache {
			if !now.Before(old.expires) {
				delete(s.cache, k)
			}
		}
		if len(s.cache) >= maxCalloutCache {
			return
		}
	}
	s.cache[key] = e
}

func (s *callout) fetch(ctx context.Context, id string) (*Session, error) {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.URL, nil)
	if err != nil {
		return nil, unavailable(s.o.Name, "build request", err)
	}
	req.Header.Set("Cookie", id)
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, never the Cookie header.
		return nil, unavailable(s.o.Name, "callout", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden,
		resp.StatusCode == http.StatusNotFound, resp.StatusCode >= 300 && resp.StatusCode < 400:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDataBytes))
		return nil, ErrNotFound
	default:
		return nil, unavailable(s.o.Name, "callout", fmt.Errorf("status %d", resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDataBytes+1))
	if err != nil {
		return nil, unavailable(s.o.Name, "read callout answer", err)
	}
	sess, err := decodeCalloutJSON(body, s.o.Subject, s.o.Email, s.o.Roles)
	if err != nil {
		return nil, err
	}
	sess.Source, sess.Client, sess.ID = s.o.Name, s.o.Client, id
	return sess, nil
}

// decodeCalloutJSON reads the app's answer: a JSON object with the user id
// at subject and optional email and roles.
func decodeCalloutJSON(body []byte, subject, email, roles string) (*Session, error) {
	m, err := decodeJSONObject(body)
	if err != nil {
		return nil, err
	}
	uid, err := idString(m, subject)
	if errors.Is(err, ErrNotFound) {
		// A 200 must name the user: a missing subject is a broken answer.
		return nil, fmt.Errorf("%w: 200 answer without the subject", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	em, err := optString(m, email, "email")
	if err != nil {
		return nil, err
	}
	rs, err := optStrings(m, roles, "roles")
	if err != nil {
		return nil, err
	}
	return &Session{UserID: uid, Email: em, Roles: rs}, nil
}

func (s *callout) End(context.Context, string) error { return ErrEndUnsupported }

func (s *callout) Forget(id string) {
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.cache, key)
	s.gen++
	s.mu.Unlock()
}

func (s *callout) ForgetUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	for k, e := range s.cache {
		if e.sess != nil && e.sess.UserID == userID {
			delete(s.cache, k)
		}
	}
}

// Ping asks the endpoint without cookies: any HTTP answer but a 5xx means
// it is up (401 is the expected one).
func (s *callout) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.o.URL, nil)
	if err != nil {
		return unavailable(s.o.Name, "build request", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return unavailable(s.o.Name, "callout", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxDataBytes))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return unavailable(s.o.Name, "callout", fmt.Errorf("status %d", resp.StatusCode))
	}
	return nil
}
