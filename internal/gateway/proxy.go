package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

type routeKey struct{}

func routeOf(c *fiber.Ctx) *route {
	r, _ := c.Locals(routeKey{}).(*route)
	return r
}

// matchRoute finds the request's route and passes on either way: the
// authentication handlers after it skip requests without a route or whose
// route does not ask for them (through their Next), and forward passes
// requests without a route on to the 404.
func (g *Gateway) matchRoute(c *fiber.Ctx) error {
	r, err := g.resolve(requestPath(c))
	if err != nil {
		return err
	}
	if r != nil {
		c.Locals(routeKey{}, r)
	}
	return c.Next()
}

// proxyAuthn is the standard middleware for required and optional routes.
func (g *Gateway) proxyAuthn() (required, optional fiber.Handler) {
	cfg := g.cfg.Authn
	cfg.AllowRetiredSession = false
	cfg.Method = nil // the proxy receives the original request itself
	if g.cfg.CSRF != nil {
		cfg.CSRF = g.cfg.CSRF
		if g.cfg.ProxyCSRF == CSRFOrigin {
			cfg.CSRF = originOnly{g.cfg.CSRF}
		}
	}
	req := cfg
	req.Optional = false
	req.Next = func(c *fiber.Ctx) bool {
		r := routeOf(c)
		return r == nil || r.Auth != AuthRequired || isPreflight(c)
	}
	opt := cfg
	opt.Optional = true
	opt.Next = func(c *fiber.Ctx) bool {
		r := routeOf(c)
		return r == nil || r.Auth != AuthOptional || isPreflight(c)
	}
	opt.ErrorHandler = g.anonymousOnStaleCookie(cfg.ErrorHandler)
	return authn.New(req), authn.New(opt)
}

// isPreflight reports whether the request is a CORS preflight: browsers send
// it without credentials before a cross-origin request, so only the app can
// answer it (with its own CORS policy). It goes upstream anonymous, without
// a body, like a request to an auth: none route.
func isPreflight(c *fiber.Ctx) bool {
	return c.Method() == fiber.MethodOptions && c.Get(fiber.HeaderOrigin) != "" &&
		c.Get(fiber.HeaderAccessControlRequestMethod) != "" && len(c.Request().Body()) == 0
}

// anonymousOnStaleCookie lets a request whose only credentials are
// tokenshift cookies that no longer verify (expired, revoked, unknown)
// through an optional route as anonymous, and expires those cookies in the
// answer. Otherwise a browser holding a stale session cookie would get 401
// on every public page until it logged in again, and the cookie would stay.
// A bad Authorization: Bearer is still refused (the client chose it), and
// so is every other failure (a phase refusal, two users, a store outage).
func (g *Gateway) anonymousOnStaleCookie(next fiber.ErrorHandler) fiber.ErrorHandler {
	if next == nil {
		next = func(_ *fiber.Ctx, err error) error { return err }
	}
	return func(c *fiber.Ctx, err error) error {
		var ae *auth.Error
		stale := errors.As(err, &ae) && (ae.Code == auth.CodeInvalidSession || ae.Code == auth.CodeInvalidToken) &&
			(errors.Is(err, auth.ErrInvalid) || errors.Is(err, auth.ErrExpired) || errors.Is(err, auth.ErrRevoked))
		if !stale {
			return next(c, err)
		}
		if bearer, malformed := authn.ParseBearer(c.Get(fiber.HeaderAuthorization)); bearer != "" || malformed {
			return next(c, err)
		}
		// Every credential cookie present failed: a valid one would have
		// been chosen and no error raised.
		for _, name := range [...]string{g.sessionCookie, g.accessCookie} {
			if c.Cookies(name) != "" {
				expireCookie(c, name)
			}
		}
		c.Response().Header.Del(fiber.HeaderWWWAuthenticate)
		return c.Next()
	}
}

// expireCookie tells the browser to drop a tokenshift credential cookie,
// with the attributes it was set with (path /, no domain; Secure, which the
// __Host- and __Secure- prefixes require, whenever the name has one).
func expireCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{
		Name:     name,
		Path:     "/",
		Expires:  time.Unix(0, 0),
		Secure:   strings.HasPrefix(name, "__Host-") || strings.HasPrefix(name, "__Secure-") || c.Protocol() == "https",
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// forward sends the request to the route's upstream and streams the answer.
func (g *Gateway) forward(c *fiber.Ctx) error {
	r := routeOf(c)
	if r == nil {
		return c.Next()
	}
	p := authn.Principal(c)
	out, err := g.outgoing(c, r, p)
	if err != nil {
		return err
	}
	if isWebSocket(c) {
		return g.tunnel(c, r, p, out)
	}

	// The timeout covers connecting, sending and the response headers only:
	// a context deadline would also cut a long body (a download, an event
	// stream) that the upstream is still sending.
	ctx, cancel := context.WithCancel(context.Background())
	var timedOut atomic.Bool
	timer := time.AfterFunc(r.timeout, func() { timedOut.Store(true); cancel() })
	res, err := r.transport.RoundTrip(out.WithContext(ctx))
	if !timer.Stop() || timedOut.Load() || isTimeout(err) {
		if err == nil {
			res.Body.Close()
		}
		cancel()
		return auth.Wrap(err, auth.CodeUpstreamTimeout, "the upstream of "+r.Prefix+" did not answer within "+r.timeout.String())
	}
	if err != nil {
		cancel()
		return auth.Wrap(err, auth.CodeUpstreamUnavailable, "the upstream of "+r.Prefix+" is unavailable")
	}
	g.respond(c, res, cancel)
	return nil
}

// outgoing builds the upstream request: the client's end-to-end headers minus
// what tokenshift owns, then tokenshift's forwarding and identity headers.
func (g *Gateway) outgoing(c *fiber.Ctx, r *route, p *auth.Principal) (*http.Request, error) {
	in := &c.Request().Header
	h := make(http.Header, 16)
	var conn map[string]bool
	if vs := in.PeekAll(fiber.HeaderConnection); len(vs) > 0 {
		s := make([]string, len(vs))
		for i, v := range vs {
			s[i] = string(v)
		}
		conn = connectionTokens(s)
	}
	in.VisitAll(func(k, v []byte) {
		if !forwardable(k) {
			return
		}
		key := http.CanonicalHeaderKey(string(k))
		switch {
		case hopByHop[key], conn[key], g.names.owned[key]:
			return
		case key == "Host", key == "Cookie", key == "Content-Length", key == "Expect":
			return // Host and Content-Length are set below; Cookie is rebuilt
		case key == "Authorization" && (g.names.tokenIsAuthorization || (!g.cfg.KeepCredentials && isBearer(v))):
			return
		}
		h[key] = append(h[key], string(v))
	})
	g.copyCookies(c, h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // not Go's default
	}

	h.Set(fiber.HeaderXForwardedFor, g.cfg.ClientIP(c))
	h.Set(fiber.HeaderXForwardedProto, c.Protocol())
	h.Set(fiber.HeaderXForwardedHost, c.Hostname())
	if id := c.GetRespHeader("X-Request-Id"); id != "" {
		h.Set("X-Request-Id", id)
	}
	if p != nil {
		g.names.identity(p, h.Set)
		if g.tokens != nil {
			raw, err := g.tokens.get(p)
			if err != nil {
				return nil, err
			}
			if g.names.tokenIsAuthorization {
				h.Set(fiber.HeaderAuthorization, "Bearer "+raw)
			} else {
				h.Set(g.names.token, raw)
			}
		}
	}

	u := &url.URL{Scheme: r.target.Scheme, Host: r.target.Host, Path: r.upstreamPath(requestPath(c)), RawQuery: string(c.Context().URI().QueryString())}
	out := &http.Request{
		Method:     c.Method(),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       r.target.Host,
	}
	if r.PreserveHost {
		out.Host = string(c.Request().Host())
	}
	// The raw body: Fiber's c.Body() would decode a Content-Encoding, and
	// the upstream must get the bytes that header describes.
	if body := c.Request().Body(); len(body) > 0 {
		// Copied: the transport may still be writing it after RoundTrip
		// returns, when fasthttp has already reused the request buffer.
		b := bytes.Clone(body)
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.ContentLength = int64(len(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return out, nil
}

// copyCookies forwards the client's cookies, without tokenshift's own
// credentials unless KeepCredentials.
func (g *Gateway) copyCookies(c *fiber.Ctx, h http.Header) {
	var b strings.Builder
	c.Request().Header.VisitAllCookie(func(k, v []byte) {
		if !g.cfg.KeepCredentials {
			for _, name := range g.cfg.CredentialCookies {
				if string(k) == name {
					return
				}
			}
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.Write(k)
		b.WriteByte('=')
		b.Write(v)
	})
	if b.Len() > 0 {
		h.Set("Cookie", b.String())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isBearer: any Authorization that names the Bearer scheme, however it is
// spaced ("Bearer<TAB>token" too), is tokenshift's credential and never
// reaches the upstream; authn refuses the ones it cannot parse.
func isBearer(v []byte) bool { return authn.IsBearerScheme(string(v)) }

// respond copies the upstream's status and end-to-end headers and streams
// its body: fasthttp writes each chunk read from it and flushes, so
// server-sent events reach the client as they are sent.
func (g *Gateway) respond(c *fiber.Ctx, res *http.Response, cancel context.CancelFunc) {
	rh := &c.Response().Header
	// tokenshift's own security headers are for its answers; the app's
	// answer keeps the app's policy (a Referrer-Policy: no-referrer would
	// break the Referer check of Django's CSRF protection, for one).
	rh.Del(fiber.HeaderXContentTypeOptions)
	rh.Del(fiber.HeaderReferrerPolicy)
	// Nor tokenshift's CORS answer (the middleware skips proxied routes;
	// this holds even if it did not): the app's CORS policy is the app's.
	for _, k := range corsResponseHeaders {
		rh.Del(k)
	}
	authn.MarkForeignAnswer(c)
	rh.SetNoDefaultContentType(true)
	c.Status(res.StatusCode)
	conn := connectionTokens(res.Header.Values("Connection"))
	for k, vs := range res.Header {
		if hopByHop[k] || conn[k] || k == "Content-Length" || k == "Date" {
			continue
		}
		for _, v := range vs {
			rh.Add(k, v)
		}
	}
	body := &upstreamBody{rc: res.Body, cancel: cancel}
	if wt := c.App().Config().WriteTimeout; wt > 0 {
		body.conn, body.writeTimeout = c.Context().Conn(), wt
	}
	switch {
	case c.Method() == fiber.MethodHead || res.StatusCode == fiber.StatusNoContent || res.StatusCode == fiber.StatusNotModified:
		if res.ContentLength >= 0 {
			rh.SetContentLength(int(res.ContentLength))
		}
		body.Close()
	default:
		c.Context().SetBodyStream(body, int(res.ContentLength))
	}
}

// corsResponseHeaders are the headers a CORS middleware adds to an answer.
var corsResponseHeaders = [...]string{
	fiber.HeaderAccessControlAllowOrigin, fiber.HeaderAccessControlAllowCredentials,
	fiber.HeaderAccessControlExposeHeaders, fiber.HeaderAccessControlAllowMethods,
	fiber.HeaderAccessControlAllowHeaders, fiber.HeaderAccessControlMaxAge, fiber.HeaderVary,
}

// upstreamBody is the upstream's response body as fasthttp reads it. Each
// read pushes the client connection's write deadline forward, so
// server.write_timeout bounds each write of a stream, not its whole length.
type upstreamBody struct {
	rc           io.ReadCloser
	cancel       context.CancelFunc
	conn         net.Conn
	writeTimeout time.Duration
	closed       bool
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 && b.conn != nil {
		_ = b.conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	}
	return n, err
}

func (b *upstreamBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.rc.Close()
	b.cancel()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
