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

// requestPath is the normalized path of the request: percent-decoded, with
// dot segments and repeated slashes resolved. Routes match on it and it is
// what goes upstream, so /public/../app/x can never match /public's rules
// and then reach /app/x on the upstream.
func requestPath(c *fiber.Ctx) string { return string(c.Context().URI().Path()) }

// matchRoute finds the request's route and passes on either way: the
// authentication handlers after it skip requests without a route or whose
// route does not ask for them (through their Next), and forward passes
// requests without a route on to the 404.
func (g *Gateway) matchRoute(c *fiber.Ctx) error {
	if r := g.match(requestPath(c)); r != nil {
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
		return r == nil || r.Auth != AuthRequired
	}
	opt := cfg
	opt.Optional = true
	opt.Next = func(c *fiber.Ctx) bool {
		r := routeOf(c)
		return r == nil || r.Auth != AuthOptional
	}
	return authn.New(req), authn.New(opt)
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

func isBearer(v []byte) bool {
	return len(v) >= 6 && strings.EqualFold(string(v[:6]), "bearer") && (len(v) == 6 || v[6] == ' ')
}

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
