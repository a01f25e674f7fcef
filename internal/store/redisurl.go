package store

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// redisMode is the topology one URL selects.
type redisMode int

const (
	modeStandalone redisMode = iota
	modeSentinel
	modeCluster
)

func (m redisMode) String() string {
	switch m {
	case modeSentinel:
		return "sentinel"
	case modeCluster:
		return "cluster"
	default:
		return "standalone"
	}
}

// redisTarget is a parsed storage.redis.url.
type redisTarget struct {
	Mode     redisMode
	Addrs    []string // host:port, at least one
	Master   string   // Sentinel master name
	DB       int
	Username string
	Password string
	TLS      bool
}

// String describes the target for logs and errors: never the credentials.
func (t redisTarget) String() string {
	s := fmt.Sprintf("redis %s %s", t.Mode, strings.Join(t.Addrs, ","))
	if t.Mode == modeSentinel {
		s += " master " + t.Master
	}
	if t.Mode != modeCluster {
		s += " db " + strconv.Itoa(t.DB)
	}
	if t.TLS {
		s += " tls"
	}
	return s
}

const wantSchemes = "redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"

// parseRedisURL reads the one URL that selects standalone, Sentinel or Cluster:
//
//	redis://[user:pass@]host[:port][/db]           (rediss:// for TLS)
//	redis+sentinel://[user:pass@]h1[:26379],h2/<master>[/db]
//	redis+cluster://[user:pass@]h1[:6379],h2
//
// It is written by hand rather than with net/url because url.Parse errors
// quote the whole input, password included. Errors here name the part that is
// wrong and never echo credentials or hosts (a password with an unescaped '/'
// would otherwise end up in the "host").
func parseRedisURL(raw string) (redisTarget, error) {
	var t redisTarget
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return t, fmt.Errorf("%w: missing scheme: want %s", ErrBadURL, wantSchemes)
	}
	if !t.setScheme(scheme) {
		return t, fmt.Errorf("%w: unsupported scheme %s: want %s", ErrBadURL, quoteIfPlain(scheme), wantSchemes)
	}
	if strings.ContainsAny(rest, "?#") {
		return t, fmt.Errorf("%w: query and fragment are not supported (set timeouts and pool sizes as options; percent-encode '?' and '#' in a password)", ErrBadURL)
	}

	authority, path, _ := strings.Cut(rest, "/")
	if strings.Contains(path, "@") {
		return t, fmt.Errorf("%w: '@' after the host: percent-encode '/' and '@' in the password", ErrBadURL)
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, _ := strings.Cut(authority[:i], ":")
		var err error
		if t.Username, err = url.PathUnescape(user); err != nil {
			return t, fmt.Errorf("%w: bad percent-encoding in the user name", ErrBadURL)
		}
		if t.Password, err = url.PathUnescape(pass); err != nil {
			return t, fmt.Errorf("%w: bad percent-encoding in the password", ErrBadURL)
		}
		authority = authority[i+1:]
	}

	defaultPort := "6379"
	if t.Mode == modeSentinel {
		defaultPort = "26379"
	}
	for i, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			return t, fmt.Errorf("%w: host #%d: %v", ErrBadURL, i+1, err)
		}
		t.Addrs = append(t.Addrs, addr)
	}
	if t.Mode == modeStandalone && len(t.Addrs) > 1 {
		return t, fmt.Errorf("%w: %s:// takes one host; use redis+sentinel:// or redis+cluster:// for several", ErrBadURL, strings.ToLower(scheme))
	}

	if err := t.setPath(path); err != nil {
		return t, err
	}
	return t, nil
}

// setScheme sets the mode and TLS of scheme (any case); false if it is not one of ours.
func (t *redisTarget) setScheme(scheme string) bool {
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		t.TLS = true
	case "redis+sentinel":
		t.Mode = modeSentinel
	case "rediss+sentinel":
		t.Mode, t.TLS = modeSentinel, true
	case "redis+cluster":
		t.Mode = modeCluster
	case "rediss+cluster":
		t.Mode, t.TLS = modeCluster, true
	default:
		return false
	}
	return true
}

// setPath reads the path after the hosts, which the mode decides:
// /<db>, /<master>[/<db>] or nothing (Cluster has only db 0).
func (t *redisTarget) setPath(path string) error {
	segs := splitPath(path)
	switch t.Mode {
	case modeStandalone:
		if len(segs) > 1 {
			return fmt.Errorf("%w: path must be /<db>", ErrBadURL)
		}
	case modeSentinel:
		if len(segs) == 0 || len(segs) > 2 {
			return fmt.Errorf("%w: redis+sentinel:// needs the master name as path: /<master>[/<db>]", ErrBadURL)
		}
		t.Master, segs = segs[0], segs[1:]
	case modeCluster:
		if len(segs) > 1 || (len(segs) == 1 && segs[0] != "0") {
			return fmt.Errorf("%w: redis+cluster:// has no database number (Cluster only has db 0)", ErrBadURL)
		}
		segs = nil
	}
	if len(segs) == 1 {
		db, err := strconv.Atoi(segs[0])
		if err != nil || db < 0 {
			return fmt.Errorf("%w: database must be a non-negative number", ErrBadURL)
		}
		t.DB = db
	}
	return nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// hostPort validates one host and adds the default port when missing.
// IPv6 literals must be bracketed, as in any URL.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	host, port := h, defaultPort
	if strings.HasPrefix(h, "[") {
		end := strings.Index(h, "]")
		if end < 0 {
			return "", fmt.Errorf("unclosed '[' in an IPv6 address")
		}
		host = h[1:end]
		switch after := h[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return "", fmt.Errorf("unexpected text after an IPv6 address")
		}
	} else if i := strings.LastIndex(h, ":"); i >= 0 {
		host, port = h[:i], h[i+1:]
		if strings.Contains(host, ":") {
			return "", fmt.Errorf("IPv6 addresses must be in brackets")
		}
	}
	if host == "" {
		return "", fmt.Errorf("empty host")
	}
	if strings.ContainsAny(host, " \t\r\n[]") {
		return "", fmt.Errorf("invalid character in the host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// quoteIfPlain shows a scheme in an error only when it cannot be a mangled
// credential (someone may paste "user:pass@host" without "redis://").
func quoteIfPlain(s string) string {
	if len(s) > 20 {
		return "(too long to show)"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return "(not shown)"
		}
	}
	return strconv.Quote(s)
}
