package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// isWebSocket reports whether the request asks to upgrade to a WebSocket
// (RFC 6455 section 4.1). Other upgrades (h2c) are not tunnelled: Upgrade is
// hop-by-hop, so they go upstream as plain requests.
func isWebSocket(c *fiber.Ctx) bool {
	return c.Method() == fiber.MethodGet &&
		hasToken(c.Get(fiber.HeaderUpgrade), "websocket") &&
		hasToken(c.Get(fiber.HeaderConnection), "upgrade")
}

// tunnel proxies a WebSocket handshake that authn already accepted: it
// sends the handshake upstream, reads the upstream's answer itself, and only
// on 101 Switching Protocols hands both connections to a byte pipe. Any other
// answer is relayed as a normal response and the upstream connection closed,
// so a client can never reach the upstream through a raw connection that
// tokenshift did not authenticate.
func (g *Gateway) tunnel(c *fiber.Ctx, r *route, p *auth.Principal, out *http.Request) error {
	// Browsers send cookies with a cross-site WebSocket handshake, and as a
	// GET it skipped the CSRF check: without this, any site could open a
	// socket in the user's name (cross-site WebSocket hijacking).
	if p != nil && p.Scheme.IsCookie() && g.cfg.CSRF != nil {
		if err := g.cfg.CSRF.CheckOrigin(c); err != nil {
			return err
		}
	}
	out.Header.Set(fiber.HeaderConnection, "Upgrade")
	out.Header.Set(fiber.HeaderUpgrade, "websocket")

	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	up, err := r.dial(ctx)
	if err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return auth.Wrap(err, auth.CodeUpstreamTimeout, "the upstream of "+r.Prefix+" did not answer within "+r.timeout.String())
		}
		return auth.Wrap(err, auth.CodeUpstreamUnavailable, "the upstream of "+r.Prefix+" is unavailable")
	}
	_ = up.SetDeadline(time.Now().Add(r.timeout))
	br := bufio.NewReader(up)
	if err := out.Write(up); err != nil {
		up.Close()
		return auth.Wrap(err, auth.CodeUpstreamUnavailable, "the upstream of "+r.Prefix+" is unavailable")
	}
	res, err := http.ReadResponse(br, out)
	if err != nil {
		up.Close()
		if isTimeout(err) {
			return auth.Wrap(err, auth.CodeUpstreamTimeout, "the upstream of "+r.Prefix+" did not answer within "+r.timeout.String())
		}
		return auth.Wrap(err, auth.CodeUpstreamUnavailable, "the upstream of "+r.Prefix+" sent no valid answer")
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		_ = up.SetDeadline(time.Time{})
		g.respond(c, res, func() { up.Close() })
		return nil
	}
	_ = up.SetDeadline(time.Time{})

	c.Status(http.StatusSwitchingProtocols) // for the access log; the upstream's head is relayed as is
	fctx := c.Context()
	fctx.HijackSetNoResponse(true)
	fctx.Hijack(func(client net.Conn) {
		defer up.Close()
		_ = client.SetDeadline(time.Time{})
		head := fmt.Sprintf("HTTP/1.1 %d %s\r\n", res.StatusCode, http.StatusText(res.StatusCode))
		if _, err := io.WriteString(client, head); err != nil {
			return
		}
		if err := res.Header.Write(client); err != nil {
			return
		}
		if _, err := io.WriteString(client, "\r\n"); err != nil {
			return
		}
		pipe(client, up, br)
	})
	return nil
}

// dial connects to the route's upstream (TLS for https).
func (r *route) dial(ctx context.Context) (net.Conn, error) {
	host := r.target.Host
	if r.target.Port() == "" {
		port := "80"
		if r.target.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(r.target.Hostname(), port)
	}
	if r.target.Scheme == "https" {
		d := &tls.Dialer{NetDialer: r.dialer, Config: &tls.Config{ServerName: r.target.Hostname(), MinVersion: tls.VersionTLS12}}
		return d.DialContext(ctx, "tcp", host)
	}
	return r.dialer.DialContext(ctx, "tcp", host)
}

// pipe copies both ways until either side ends, then closes both. fromUp
// holds what was read from up past the handshake answer.
func pipe(client, up net.Conn, fromUp io.Reader) {
	var once sync.Once
	closeBoth := func() { once.Do(func() { client.Close(); up.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(up, client)
		closeBoth()
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(client, fromUp)
		closeBoth()
	}()
	wg.Wait()
}
