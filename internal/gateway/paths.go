package gateway

import (
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// requestPath is the normalized path of the request: percent-decoded, with
// dot segments and repeated slashes resolved by fasthttp. It is what goes
// upstream, so /public/../app/x can never match /public's rules and then
// reach /app/x on the upstream. fasthttp keeps ";" path parameters and
// backslashes as ordinary characters; resolve deals with both.
func requestPath(c *fiber.Ctx) string { return string(c.Context().URI().Path()) }

// resolve is the route of a normalized path, or nil when no route covers it.
//
// Servlet containers (Tomcat, Jetty, Spring) drop ";params" from every
// segment before routing, and IIS reads a backslash as a slash, so the app
// may see another path than the one tokenshift matched: /public/..;/admin is
// /admin to Tomcat, /api/admin;x/users is /api/admin/users. Matching on the
// path with the parameters stripped is not enough either, since the path
// still goes upstream as sent (a legacy app may need its ;jsessionid). So a
// path is refused when the two readings could disagree: a dot segment
// carrying parameters ("..;", ".;x"), a backslash (sent raw or as %5C), or
// stripping the parameters changing which route matches.
func (g *Gateway) resolve(p string) (*route, error) {
	if strings.IndexByte(p, ';') < 0 && strings.IndexByte(p, '\\') < 0 {
		return g.match(p), nil // the hot path: nothing to disagree about
	}
	asSent := g.match(p)
	stripped, ok := stripPathParams(p)
	var asStripped *route
	if ok {
		asStripped = g.match(stripped)
	}
	switch {
	case asSent == nil && asStripped == nil:
		return nil, nil // never forwarded: tokenshift's own paths, the 404
	case !ok:
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the path holds a backslash or a dot segment with ;parameters, which servers behind the proxy read differently; send a plain path")
	case asSent != asStripped:
		return nil, auth.Errorf(auth.CodeInvalidRequest, "the ;parameters in the path change which proxy route it belongs to; send the path without them")
	}
	return asSent, nil
}

// stripPathParams removes ";..." from every segment of p and resolves dot
// segments again. ok is false when p holds a backslash or a segment that is
// a dot segment once its parameters are gone ("..;", ".;jsessionid=x").
func stripPathParams(p string) (string, bool) {
	if strings.IndexByte(p, '\\') >= 0 {
		return "", false
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		base, _, found := strings.Cut(s, ";")
		if !found {
			continue
		}
		if base == "." || base == ".." {
			return "", false
		}
		segs[i] = base
	}
	out := path.Clean(strings.Join(segs, "/"))
	if !strings.HasPrefix(out, "/") {
		out = "/" + out
	}
	return out, true
}
