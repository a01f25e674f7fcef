package authn

import (
	"bytes"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Credentials are the raw credentials a request carries. Extraction does no I/O
// and no verification.
type Credentials struct {
	Session string
	Bearer  string
	// BearerMalformed: an Authorization header claimed the Bearer scheme but
	// carried no single token (RFC 6750 section 2.1 syntax).
	BearerMalformed bool
	JWTCookie       string
	// Duplicate names a credential cookie the request carries more than
	// once (see DuplicateCookie); the other fields are then not to be used.
	Duplicate string
}

// Any reports whether the request carries at least one credential.
func (cr *Credentials) Any() bool {
	return cr.Session != "" || cr.Bearer != "" || cr.BearerMalformed || cr.JWTCookie != ""
}

// Extract reads the credentials of a request. Credentials are never read from
// the URL or the body.
func Extract(c *fiber.Ctx, sessionCookie, accessCookie string) Credentials {
	cr := extract(c, sessionCookie, accessCookie)
	if cr.Bearer != "" && !isB64TokenString(cr.Bearer) {
		cr.Bearer, cr.BearerMalformed = "", true
	}
	return cr
}

// extract is Extract without the b64token check of the bearer token (the
// middleware makes it only when the token fails verification). One pass over
// the cookies finds both credential cookies and their duplicates (it was
// DuplicateCookie's pass and then a lookup of each). The values are views of
// the request like c.Cookies' (Fiber's default, not Immutable): valid for
// the request only, so a verifier copies what it keeps.
func extract(c *fiber.Ctx, sessionCookie, accessCookie string) Credentials {
	var cr Credentials
	var nSession, nAccess int
	visitCookies(&c.Request().Header, func(key, value []byte) {
		// Both names are compared, as DuplicateCookie does: a configuration
		// naming one cookie twice reads it as both.
		if string(key) == sessionCookie {
			if nSession++; nSession == 1 {
				cr.Session = utils.UnsafeString(value)
			}
		}
		if string(key) == accessCookie {
			if nAccess++; nAccess == 1 {
				cr.JWTCookie = utils.UnsafeString(value)
			}
		}
	})
	switch {
	case nSession > 1:
		return Credentials{Duplicate: sessionCookie}
	case nAccess > 1:
		return Credentials{Duplicate: accessCookie}
	}
	cr.Bearer, cr.BearerMalformed = splitBearer(c.Get(fiber.HeaderAuthorization))
	return cr
}

// DuplicateCookie returns the first of names that the request's cookies hold
// more than once, or "". A browser sends two cookies of one name only when
// they were set for different domains or paths: a sibling subdomain can plant
// a Domain=parent cookie of our name, even under the __Secure- prefix, and
// one with a longer Path is sent first (cookie tossing). Which of the two is
// ours cannot be told from the request, and reading the first would log the
// victim into the planter's login (or out of their own), so the request is
// refused instead. __Host- cookies cannot be planted that way, but the check
// costs nothing and covers development without the prefixes.
func DuplicateCookie(c *fiber.Ctx, names ...string) string {
	var seen, dup uint8 // bit i: names[i]; at most 8 names
	if len(names) > 8 {
		names = names[:8]
	}
	visitCookies(&c.Request().Header, func(key, _ []byte) {
		for i, n := range names {
			if n == "" || string(key) != n {
				continue
			}
			if seen&(1<<i) != 0 {
				dup |= 1 << i
			}
			seen |= 1 << i
		}
	})
	for i, n := range names {
		if dup&(1<<i) != 0 {
			return n
		}
	}
	return ""
}

// visitCookies calls f with every cookie of the request's Cookie header
// lines, in order, split as fasthttp's own parser splits them (its
// cookieScanner and decodeCookieArg): parts end at ';', the key is what
// comes before the first '=' (a part without one is a value with no key),
// spaces (only spaces) are trimmed from both, one pair of double quotes
// around the value is dropped, and a part with neither key nor value is
// skipped. It reads the lines where they are (PeekAll): VisitAllCookie
// would first copy every cookie into fasthttp's own list, which for a
// 520-byte access-token cookie cost about 400 ns a request, three times
// this (BenchmarkCookieScan).
// Once something has made fasthttp build that list (c.Cookies, a request
// built by SetCookie) the lines are gone from the headers and the list is
// read instead, as it is then free. The values are views of the request,
// valid until its headers change. FuzzVisitCookiesAsFasthttp holds it to
// fasthttp's parser.
func visitCookies(h *fasthttp.RequestHeader, f func(key, value []byte)) {
	lines := false
	for _, k := range h.PeekKeys() {
		if len(k) != len(fasthttp.HeaderCookie) || !bytes.EqualFold(k, cookieKey) {
			continue
		}
		if string(k) != fasthttp.HeaderCookie {
			// A spelling PeekAll would not find (names not normalised):
			// fasthttp's own reading, which finds every spelling.
			h.VisitAllCookie(f)
			return
		}
		lines = true
	}
	if !lines {
		h.VisitAllCookie(f)
		return
	}
	for _, line := range h.PeekAll(fasthttp.HeaderCookie) {
		for len(line) > 0 {
			part := line
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				line = nil
			}
			var key, value []byte
			if i := bytes.IndexByte(part, '='); i >= 0 {
				key, value = trimSpaces(part[:i]), part[i+1:]
			} else {
				value = part
			}
			value = trimSpaces(value)
			if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if len(key) > 0 || len(value) > 0 {
				f(key, value)
			}
		}
	}
}

var cookieKey = []byte(fasthttp.HeaderCookie)

// trimSpaces drops the spaces (not tabs) around b, as fasthttp does.
func trimSpaces(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return b
}

// DuplicateCookieError is the refusal of a request that carries a credential
// cookie twice: 400 duplicate_cookie. Clearing cookies would not help the
// user: the planted one was set for another domain, which this host cannot
// name, and expiring ours would leave only the planted one.
func DuplicateCookieError(name string) error {
	return auth.Errorf(auth.CodeDuplicateCookie, "the request carries the %s cookie more than once; another site under this domain may have set one: remove this site's cookies in the browser and log in again", name)
}

// ParseBearer extracts the token of an Authorization header value. The scheme
// name is case-insensitive (RFC 9110 section 11.1); other schemes (Basic, ...)
// are not ours and yield ("", false). A header that names the Bearer scheme
// (IsBearerScheme) but is not "Bearer", one or more spaces and a b64token
// (RFC 6750 section 2.1) is malformed: "Bearer<TAB>token" included, so that
// nobody downstream can read a token out of it that tokenshift did not check.
func ParseBearer(h string) (token string, malformed bool) {
	tok, malformed := splitBearer(h)
	if tok != "" && !isB64TokenString(tok) {
		return "", true
	}
	return tok, malformed
}

// splitBearer is ParseBearer without the check of the token's characters,
// which the middleware runs only when a token fails to verify (a token
// that verifies is base64url and dots).
func splitBearer(h string) (token string, malformed bool) {
	if !IsBearerScheme(h) {
		return "", false
	}
	if len(h) <= 7 || !strings.EqualFold(h[:6], "bearer") || h[6] != ' ' {
		return "", true
	}
	tok := strings.TrimLeft(h[7:], " ")
	if tok == "" {
		return "", true
	}
	return tok, false
}

// IsBearerScheme reports whether an Authorization value names the Bearer
// scheme, however it is written: leading spaces or tabs, any case, and the
// scheme name ended by anything that cannot continue a token (RFC 9110
// section 5.6.2) or by the end: "Bearer x", "bearer\tx", "Bearer", "Bearer,x".
// "BearerX" and "Bearer-x" name other schemes. authn and the reverse proxy
// share this, so a header authn refuses as a malformed bearer is also one
// the proxy strips.
func IsBearerScheme(h string) bool {
	h = strings.TrimLeft(h, " \t")
	if len(h) < 6 || !strings.EqualFold(h[:6], "bearer") {
		return false
	}
	return len(h) == 6 || !isTChar(h[6])
}

// isTChar: RFC 9110 section 5.6.2 token characters.
func isTChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// isB64TokenString reports whether every byte of tok is in RFC 6750's
// b64token alphabet, without a branch per byte.
func isB64TokenString(tok string) bool {
	var bad byte
	for i := 0; i < len(tok); i++ {
		bad |= b64TokenReject[tok[i]]
	}
	return bad == 0
}

// isB64Token accepts RFC 6750's b64token alphabet: ALPHA / DIGIT / "-" / "."
// / "_" / "~" / "+" / "/" and "=" padding (position is not worth enforcing,
// the JWT parser rejects misplaced padding).
func isB64Token(b byte) bool { return b64TokenReject[b] == 0 }

// b64TokenReject is 1 for the bytes outside the b64token alphabet. A table:
// a switch per byte was 10 % of a cached bearer request.
var b64TokenReject = func() (t [256]byte) {
	for i := range t {
		t[i] = 1
	}
	for _, r := range [][2]byte{{'a', 'z'}, {'A', 'Z'}, {'0', '9'}} {
		for c := r[0]; c <= r[1]; c++ {
			t[c] = 0
		}
	}
	for _, c := range []byte("-._~+/=") {
		t[c] = 0
	}
	return t
}()
