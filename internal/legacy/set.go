package legacy

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// Set is the configured legacy.sources, in configuration order: what the
// middleware, /readyz and revocation use, so they need not loop themselves.
type Set struct {
	sources []Source
	byName  map[string]Source
	// cache is the near cache of the sources with a cache_ttl (nil: none);
	// their entries in sources are *cachingSource.
	cache *nearCache
}

// CheckAll validates every entry (as Check) and that names and cookie
// names are unique across sources: a cookie name belongs to one source.
// Errors are *OptionError; Field is prefixed with the entry's index
// ("sources[1].cookie").
func CheckAll(opts []Options) error {
	names, cookies := map[string]int{}, map[string]int{}
	for i, o := range opts {
		if err := Check(o); err != nil {
			var oe *OptionError
			if errors.As(err, &oe) {
				c := *oe
				c.Field = fmt.Sprintf("sources[%d].%s", i, oe.Field)
				return &c
			}
			return err
		}
		n, _ := o.withDefaults()
		if j, dup := names[n.Name]; dup {
			return &OptionError{Source: n.Name, Field: fmt.Sprintf("sources[%d].name", i), Reason: fmt.Sprintf("also the name of sources[%d]", j)}
		}
		names[n.Name] = i
		cs := []string{n.Cookie}
		if n.Kind == KindCallout {
			cs = n.ForwardCookies
		}
		for _, c := range cs {
			if j, dup := cookies[c]; dup && j != i {
				return &OptionError{Source: n.Name, Field: fmt.Sprintf("sources[%d].cookie", i), Reason: fmt.Sprintf("cookie %q is already read by sources[%d]", c, j)}
			}
			cookies[c] = i
		}
	}
	return nil
}

// Open validates opts (CheckAll) and builds every source, without
// contacting the stores. On error the sources built so far are closed.
func Open(opts []Options) (*Set, error) {
	if err := CheckAll(opts); err != nil {
		return nil, err
	}
	s := &Set{byName: map[string]Source{}}
	for _, o := range opts {
		src, err := New(o)
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		if n, _ := o.withDefaults(); n.CacheTTL > 0 {
			if s.cache == nil {
				s.cache = newNearCache(DefaultCacheBytes)
			}
			src = newCachingSource(src, s.cache, n.CacheTTL, n.Clock)
		}
		s.sources = append(s.sources, src)
		s.byName[src.Name()] = src
	}
	return s, nil
}

// Sources in configuration order.
func (s *Set) Sources() []Source { return append([]Source(nil), s.sources...) }

// ByName returns the source called name, or nil.
func (s *Set) ByName(name string) Source { return s.byName[name] }

// Parse asks each source in order and returns the first one whose cookie
// the request carries, with its verified id, or its ErrForged. ErrNoCookie
// when the request carries no legacy cookie at all. No I/O.
func (s *Set) Parse(cookie func(string) string) (Source, string, error) {
	for _, src := range s.sources {
		id, err := src.Parse(cookie)
		if errors.Is(err, ErrNoCookie) {
			continue
		}
		return src, id, err
	}
	return nil, "", ErrNoCookie
}

// parse is Parse for the Verifier, which also gets the cookie value the id
// was verified from (raw; "" for callout). When that value is the one a
// near-cache entry was filled from, no signature is computed
// (cachingSource.parseCached): e is that entry (whether it still answers is
// the caller's to check), and id and raw are its own strings.
func (s *Set) parse(cookies authn.Cookies) (src Source, id, raw string, e *cachedSession, err error) {
	for _, src := range s.sources {
		if cs, ok := src.(*cachingSource); ok && cs.keyer != nil {
			raw := cookies.Cookies(cs.cookie)
			if raw == "" {
				continue
			}
			if e := cs.parseCached(raw); e != nil {
				return src, e.sess.ID, e.raw, e, nil
			}
			id, err := src.Parse(cookieFunc(cookies))
			return src, id, raw, nil, err
		}
		id, err := src.Parse(cookieFunc(cookies))
		if errors.Is(err, ErrNoCookie) {
			continue
		}
		return src, id, "", nil, err
	}
	return nil, "", "", nil, ErrNoCookie
}

// cookieFunc is cookies as a Source's Parse takes them. Made only where a
// Parse runs (a closure allocates): a near-cache hit allocates nothing.
func cookieFunc(cookies authn.Cookies) func(string) string {
	return func(n string) string { return cookies.Cookies(n) }
}

// Ping pings every source; the map holds the failures by source name
// (empty when all answer), for /readyz.
func (s *Set) Ping(ctx context.Context) map[string]error {
	out := map[string]error{}
	for _, src := range s.sources {
		if err := src.Ping(ctx); err != nil {
			out[src.Name()] = err
		}
	}
	return out
}

// ForgetUser drops the user's cached answers in every source (call it on
// every instance when the user is revoked).
func (s *Set) ForgetUser(userID string) {
	for _, src := range s.sources {
		src.ForgetUser(userID)
	}
}

// Close closes every source.
func (s *Set) Close() error {
	var errs []error
	for _, src := range s.sources {
		errs = append(errs, src.Close())
	}
	return errors.Join(errs...)
}
