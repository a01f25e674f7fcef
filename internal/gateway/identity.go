package gateway

import (
	"net/http"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// headerNames are the configured identity header names, canonical, plus the
// set of every name a client must never be able to send upstream itself.
type headerNames struct {
	user, email, client, scheme, roles, token string
	// tokenIsAuthorization: the token travels as Authorization: Bearer.
	tokenIsAuthorization bool
	// owned are the canonical names tokenshift sets upstream; a client's copy
	// is always removed, whatever the route's auth.
	owned map[string]bool
}

func newHeaderNames(cfg Options) headerNames {
	n := headerNames{
		user:   http.CanonicalHeaderKey(cfg.Headers.User),
		email:  http.CanonicalHeaderKey(cfg.Headers.Email),
		client: http.CanonicalHeaderKey(cfg.Headers.Client),
		scheme: http.CanonicalHeaderKey(cfg.Headers.Scheme),
		roles:  http.CanonicalHeaderKey(cfg.Headers.Roles),
		token:  http.CanonicalHeaderKey(cfg.TokenHeader),
	}
	n.tokenIsAuthorization = isAuthorization(n.token)
	n.owned = map[string]bool{
		n.user: true, n.email: true, n.client: true, n.scheme: true, n.roles: true,
		// The forwarding headers describe the hop to the upstream; only
		// tokenshift knows them (a client behind a trusted proxy has them
		// recomputed by ClientIP and Fiber's trusted-proxy rules).
		"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true,
		"X-Forwarded-Port": true, "Forwarded": true, "X-Real-Ip": true, "X-Request-Id": true,
	}
	for _, name := range proxyTrustHeaders {
		n.owned[name] = true
	}
	for _, name := range cfg.StripHeaders {
		n.owned[http.CanonicalHeaderKey(name)] = true
	}
	// The token header is removed even with Token off: an upstream that was
	// configured to trust it must never read a client's forgery.
	if !n.tokenIsAuthorization {
		n.owned[n.token] = true
	}
	return n
}

// proxyTrustHeaders are headers that frameworks believe when they come from
// a proxy: the URL rewrites of IIS and Symfony (X-Original-URL,
// X-Rewrite-URL), the scheme and prefix hints of Rails, Spring, Werkzeug and
// friends, and the user of Apache-style auth proxies. tokenshift sets none of
// them, so a client's copy is always a forgery.
var proxyTrustHeaders = []string{
	"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Scheme", "X-Forwarded-Ssl",
	"X-Url-Scheme", "X-Forwarded-Prefix", "X-Forwarded-User",
}

// forwardable reports whether a client's header field name may go upstream
// at all. Names with an underscore are dropped, as nginx does by default
// (underscores_in_headers off): CGI, WSGI, Rack and PHP turn both "-" and
// "_" into "_" (HTTP_X_AUTH_USER), so x_auth_user would reach the app as the
// identity header tokenshift owns, and the same holds for every header an
// app trusts, which tokenshift cannot list. Names that are not RFC 9110
// tokens (NUL, VT, spaces, bytes above 0x7e) are dropped too: Go's
// transport refuses to send them and the request would fail with a 502.
func forwardable(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, b := range name {
		if b == '_' || !isTokenChar(b) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether b may appear in an RFC 9110 token:
// ALPHA / DIGIT / "!#$%&'*+-.^_`|~".
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// identity calls set for each identity header of p. Every header is set, even
// when empty (a user without email): Envoy only overrides the client's copy
// of a header the check answer carries.
func (n *headerNames) identity(p *auth.Principal, set func(name, value string)) {
	set(n.user, headerValue(p.UserID))
	set(n.email, headerValue(p.Email))
	set(n.client, headerValue(p.ClientID))
	set(n.scheme, p.Scheme.String())
	set(n.roles, headerValue(strings.Join(p.Roles, ",")))
}

// answerKeys are the identity header names as a forward-auth answer's
// fasthttp header stores them, made once (Mount): Set would copy and
// normalise each name, and scan each value for line breaks, on every check.
type answerKeys struct{ user, email, client, scheme, roles []byte }

// newAnswerKeys writes n's names as fasthttp's ResponseHeader.Set does:
// normalised (fasthttp's own AppendNormalizedHeaderKey) unless the app
// disables that.
func newAnswerKeys(n *headerNames, asIs bool) answerKeys {
	key := func(name string) []byte {
		if asIs {
			return []byte(name)
		}
		return fasthttp.AppendNormalizedHeaderKey(nil, name)
	}
	return answerKeys{user: key(n.user), email: key(n.email), client: key(n.client), scheme: key(n.scheme), roles: key(n.roles)}
}

// setIdentity sets p's identity headers on h, with the same values as
// identity. SetCanonical copies the value and does not remove line breaks
// as Set does: headerValue has removed every control character already,
// and scheme names have none.
func (k *answerKeys) setIdentity(h *fasthttp.ResponseHeader, p *auth.Principal) {
	h.SetCanonical(k.user, unsafeBytes(headerValue(p.UserID)))
	h.SetCanonical(k.email, unsafeBytes(headerValue(p.Email)))
	h.SetCanonical(k.client, unsafeBytes(headerValue(p.ClientID)))
	h.SetCanonical(k.scheme, unsafeBytes(p.Scheme.String()))
	h.SetCanonical(k.roles, unsafeBytes(headerValue(strings.Join(p.Roles, ","))))
}

// unsafeBytes is s without a copy, for SetCanonical, which only reads it
// (it copies the value into the header).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// headerValue removes control characters, which could split or end a header;
// ids, emails and roles never legitimately hold any.
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, s)
		}
	}
	return s
}
