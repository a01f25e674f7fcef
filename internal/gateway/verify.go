package gateway

import (
	"bytes"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/authn"
)

// Headers through which proxies tell forward-auth about the original request.
// nginx sends what its configuration says (docs/integrations.md sets the
// X-Original-* pair with proxy_set_header, which replaces any client copy);
// Traefik always sets X-Forwarded-Method and X-Forwarded-Uri itself (unless
// trustForwardHeader is on); Envoy keeps the original method and appends the
// original path to its path_prefix.
const (
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURI     = "X-Original-Uri"
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
)

// verifyAuthn is the standard middleware, deciding CSRF on the original
// request, and answering refusals with the problem body in a header too.
func (g *Gateway) verifyAuthn() fiber.Handler {
	cfg := g.cfg.Authn
	cfg.Next = nil
	cfg.Optional = false
	cfg.AllowRetiredSession = false
	cfg.Method = OriginalMethod
	cfg.CSRF = nil
	if g.cfg.CSRF != nil {
		cfg.CSRF = forwardedCSRF{x: g.cfg.CSRF, mode: g.cfg.ForwardAuthCSRF, trusted: g.cfg.FromTrustedProxy}
	}
	cfg.ErrorHandler = g.refuse
	return authn.New(cfg)
}

// refuse renders a refusal with the app's error handler (problem+json, the
// status of the code, WWW-Authenticate already set by authn) and copies the
// body into ProblemHeader: nginx's auth_request keeps the subrequest's
// headers for auth_request_set but never its body.
func (g *Gateway) refuse(c *fiber.Ctx, err error) error {
	if herr := c.App().ErrorHandler(c, err); herr != nil {
		return herr
	}
	if g.cfg.ProblemHeader != "" {
		// encoding/json output is one line without control characters, so
		// it is a valid header value as is.
		c.Response().Header.SetBytesV(g.cfg.ProblemHeader, c.Response().Body())
	}
	return nil
}

// verified answers 200 with the identity of the principal authn accepted (and
// the upstream token), plus any deprecation headers authn set.
func (g *Gateway) verified(c *fiber.Ctx) error {
	p := authn.Principal(c)
	// Browsers send cookies with a cross-site WebSocket handshake, and as a
	// GET it passed authn without a CSRF check: without this, any site could
	// open a socket in the user's name (cross-site WebSocket hijacking).
	// nginx and Traefik drop Upgrade from the check request, but the
	// handshake's Sec-WebSocket-Key and Sec-Fetch-Mode still reach it.
	if p.Scheme.IsCookie() && g.cfg.CSRF != nil && isWebSocketCheck(c) {
		if err := checkForwardedOrigin(c, g.cfg.CSRF, g.cfg.FromTrustedProxy(c)); err != nil {
			return g.refuse(c, err)
		}
	}
	h := &c.Response().Header
	g.answerKeys.setIdentity(h, p)
	if g.tokens != nil {
		raw, err := g.tokens.get(p)
		if err != nil {
			return g.refuse(c, err)
		}
		if g.names.tokenIsAuthorization {
			h.Set(fiber.HeaderAuthorization, "Bearer "+raw)
		} else {
			h.Set(g.names.token, raw)
		}
	}
	if g.log.Enabled(c.UserContext(), -4) {
		g.log.Debug("forward-auth accepted", "method", OriginalMethod(c), "uri", OriginalURI(c),
			"user_id", p.UserID, "client_id", p.ClientID, "scheme", p.Scheme.String())
	}
	return c.SendStatus(fiber.StatusOK)
}

// OriginalMethod is the method of the request a proxy asks forward-auth
// about. A safe check request (nginx's subrequest, Traefik's GET) stands for
// the method in X-Original-Method or X-Forwarded-Method; an unsafe one is the
// original method itself (Envoy). The most unsafe of all wins, so no header
// can turn an unsafe request into a safe one and skip the CSRF check: a
// client can only make its own request stricter.
func OriginalMethod(c *fiber.Ctx) string {
	m := c.Method()
	if !authn.IsSafeMethod(m) {
		return m
	}
	// Every copy of either header counts for the unsafe answer, not only
	// the first: a client that adds its own copy cannot hide the proxy's.
	h := &c.Request().Header
	present, odd := presentHeaders(h, keyOriginalMethod, keyForwardedMethod)
	if present == 0 {
		return m
	}
	var first [2][]byte
	var unsafe []byte
	visit := func(i int, v []byte) {
		if len(v) == 0 {
			return
		}
		if unsafe == nil && !authn.IsSafeMethod(utils.UnsafeString(v)) {
			unsafe = v
		}
		if first[i] == nil {
			first[i] = v
		}
	}
	if odd {
		// A spelling PeekAll would not find (names not normalised).
		h.VisitAll(func(k, v []byte) {
			if bytes.EqualFold(k, keyOriginalMethod) {
				visit(0, v)
			} else if bytes.EqualFold(k, keyForwardedMethod) {
				visit(1, v)
			}
		})
	} else {
		for i, name := range [...]string{headerOriginalMethod, headerForwardedMethod} {
			if present&(1<<i) == 0 {
				continue
			}
			for _, v := range h.PeekAll(name) {
				visit(i, v)
			}
		}
	}
	// Views of the request, as c.Get answers (the app is not Immutable).
	switch {
	case unsafe != nil:
		return utils.UnsafeString(unsafe)
	case first[0] != nil:
		return utils.UnsafeString(first[0])
	case first[1] != nil:
		return utils.UnsafeString(first[1])
	}
	return m
}

// presentHeaders reports which of names (canonical spellings, at most 8)
// the request's headers other than Host, Content-Type, User-Agent and
// Cookie carry, bit i for names[i], from their keys alone: VisitAll would
// first make fasthttp copy every cookie into a list of its own (about 400 ns
// with a JWT cookie), and a c.Get per name normalises the name and scans
// the headers each time. odd: one of them is spelled otherwise than
// canonically (header names not normalised), which Peek would not find.
func presentHeaders(h *fasthttp.RequestHeader, names ...[]byte) (present uint8, odd bool) {
	for _, k := range h.PeekKeys() {
		for i, n := range names {
			if len(k) == len(n) && bytes.EqualFold(k, n) {
				present |= 1 << i
				odd = odd || !bytes.Equal(k, n)
			}
		}
	}
	return present, odd
}

var (
	keyOriginalMethod  = []byte(headerOriginalMethod)
	keyForwardedMethod = []byte(headerForwardedMethod)
	keyWebSocketKey    = []byte("Sec-Websocket-Key")
	keyFetchMode       = []byte("Sec-Fetch-Mode")
	keyUpgrade         = []byte(fiber.HeaderUpgrade)
	keyWebSocket       = []byte("websocket")
)

// OriginalURI is the request-target a proxy asks forward-auth about, for
// logs: forward-auth decides on credentials, never on paths (protect paths
// with the proxy's own location or route rules).
func OriginalURI(c *fiber.Ctx) string {
	for _, name := range [...]string{headerOriginalURI, headerForwardedURI} {
		if v := c.Get(name); v != "" {
			return v
		}
	}
	if rest := c.Params("*"); rest != "" {
		return "/" + rest
	}
	return ""
}

// isWebSocketCheck reports whether the request forward-auth is asked about is
// a WebSocket handshake, from whatever the proxy left of it.
func isWebSocketCheck(c *fiber.Ctx) bool {
	h := &c.Request().Header
	present, odd := presentHeaders(h, keyWebSocketKey, keyFetchMode, keyUpgrade)
	if present == 0 {
		return false
	}
	// The first occurrence of each name counts, as with c.Get.
	var key, mode, upgrade []byte
	if odd {
		// A spelling Peek would not find (names not normalised).
		var haveKey, haveMode, haveUpgrade bool
		h.VisitAll(func(k, v []byte) {
			switch {
			case !haveKey && bytes.EqualFold(k, keyWebSocketKey):
				key, haveKey = v, true
			case !haveMode && bytes.EqualFold(k, keyFetchMode):
				mode, haveMode = v, true
			case !haveUpgrade && bytes.EqualFold(k, keyUpgrade):
				upgrade, haveUpgrade = v, true
			}
		})
	} else {
		if present&1 != 0 {
			key = h.PeekBytes(keyWebSocketKey)
		}
		if present&2 != 0 {
			mode = h.PeekBytes(keyFetchMode)
		}
		if present&4 != 0 {
			upgrade = h.PeekBytes(keyUpgrade)
		}
	}
	return len(key) > 0 || bytes.EqualFold(mode, keyWebSocket) || hasToken(utils.UnsafeString(upgrade), "websocket")
}
