package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AuthMode says what a proxy route asks of the request.
type AuthMode string

const (
	// AuthRequired: a valid credential the phase accepts; else 401/403.
	AuthRequired AuthMode = "required"
	// AuthOptional: anonymous requests pass without identity; a bad
	// credential is still refused.
	AuthOptional AuthMode = "optional"
	// AuthNone: no check at all (static assets, the app's login page).
	AuthNone AuthMode = "none"
)

// Route is one reverse proxy route.
type Route struct {
	// Prefix matches the path itself and everything under it: /app matches
	// /app and /app/x, not /apple. Matching ignores case, so a route cannot
	// be bypassed by /APP on an upstream that ignores case.
	Prefix string
	// Upstream is scheme://host[:port][/base-path].
	Upstream string
	Auth     AuthMode
	// Timeout overrides Options.Timeout.
	Timeout time.Duration
	// StripPrefix sends /app/x upstream as /x.
	StripPrefix bool
	// PreserveHost sends the client's Host instead of the upstream's.
	PreserveHost bool
}

// ReservedPrefixes are tokenshift's own paths, never proxied.
var ReservedPrefixes = []string{"/auth", "/admin", "/.well-known", "/livez", "/readyz", "/metrics", "/docs/migration"}

type route struct {
	Route
	prefix    string // normalized, lower case
	target    *url.URL
	basePath  string // upstream path (decoded) without its trailing slash
	timeout   time.Duration
	transport http.RoundTripper
	dialer    *net.Dialer
}

func buildRoutes(in []Route, def time.Duration) ([]*route, error) {
	out := make([]*route, 0, len(in))
	seen := map[string]bool{}
	for i, r := range in {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: route %d (%q): %s", ErrConfig, i, r.Prefix, fmt.Sprintf(format, args...))
		}
		if !strings.HasPrefix(r.Prefix, "/") {
			return nil, bad("the prefix must start with /")
		}
		if strings.ContainsAny(r.Prefix, ";\\") {
			// Requests are matched without their ;parameters and refused
			// with a backslash, so such a prefix could never match.
			return nil, bad("the prefix must not hold ; or \\")
		}
		prefix := asciiLower(r.Prefix)
		if len(prefix) > 1 {
			prefix = strings.TrimRight(prefix, "/")
		}
		if isReserved(prefix) {
			return nil, bad("the prefix is on or under a path tokenshift serves (%s)", strings.Join(ReservedPrefixes, ", "))
		}
		if seen[prefix] {
			return nil, bad("the prefix is used twice")
		}
		seen[prefix] = true
		u, err := url.Parse(r.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, bad("the upstream must be an http(s) URL without credentials, query or fragment")
		}
		switch r.Auth {
		case AuthRequired, AuthOptional, AuthNone:
		case "":
			r.Auth = AuthRequired
		default:
			return nil, bad("auth must be required, optional or none")
		}
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = def
		}
		dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
		out = append(out, &route{
			Route:    r,
			prefix:   prefix,
			target:   u,
			basePath: strings.TrimRight(u.Path, "/"),
			timeout:  timeout,
			dialer:   dialer,
			transport: &http.Transport{
				Proxy:               nil, // never an HTTP_PROXY from the environment
				DialContext:         dialer.DialContext,
				TLSHandshakeTimeout: timeout,
				MaxIdleConnsPerHost: 256,
				IdleConnTimeout:     90 * time.Second,
				// The client's Accept-Encoding goes through unchanged and the
				// body comes back as the upstream encoded it.
				DisableCompression:     true,
				MaxResponseHeaderBytes: 1 << 20,
			},
		})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].prefix) > len(out[j].prefix) })
	return out, nil
}

// isReserved reports whether path (lower case) is on or under a reserved
// prefix.
func isReserved(path string) bool {
	for _, r := range ReservedPrefixes {
		if strings.HasPrefix(path, r) && (len(path) == len(r) || path[len(r)] == '/') {
			return true
		}
	}
	return false
}

// match is the route with the longest prefix covering path (normalized:
// decoded, without dot segments), or nil.
func (g *Gateway) match(path string) *route {
	lower := asciiLower(path)
	if isReserved(lower) {
		return nil
	}
	for _, r := range g.routes {
		if r.prefix == "/" || (strings.HasPrefix(lower, r.prefix) && (len(lower) == len(r.prefix) || lower[len(r.prefix)] == '/')) {
			return r
		}
	}
	return nil
}

// asciiLower lowers A-Z only, so byte offsets in the result are those of s.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// upstreamPath is where path (decoded) goes on r's upstream.
func (r *route) upstreamPath(path string) string {
	if r.StripPrefix && r.prefix != "/" {
		path = path[len(r.prefix):]
		if path == "" {
			path = "/"
		}
	}
	return r.basePath + path
}
