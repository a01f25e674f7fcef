package httpapi

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// trustedProxies is server.trusted_proxies, parsed once. Fiber's c.IP() with a
// ProxyHeader returns the raw X-Forwarded-For value when the peer is trusted
// ("evil, 10.0.0.1"), which let a client choose its own rate-limit bucket; so
// the client address is derived here instead, and Fiber is not given a
// ProxyHeader at all.
type trustedProxies []netip.Prefix

// parseTrustedProxies accepts IPs and CIDRs, as config validation does.
func parseTrustedProxies(list []string) (trustedProxies, error) {
	out := make(trustedProxies, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("httpapi: trusted proxy %q is neither an IP nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (tp trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the client behind peer. Each proxy appends the
// address it received the request from to X-Forwarded-For, so only the
// entries appended by our own proxies are believed: walking from the right,
// trusted proxies are skipped and the first untrusted address is the client.
// A malformed entry stops the walk, because everything to its left may have
// been written by the client; the request then counts as coming from the last
// trusted hop. Without a trusted peer the header is ignored.
func (tp trustedProxies) clientAddr(peer netip.Addr, xff [][]byte) netip.Addr {
	peer = peer.Unmap()
	if len(tp) == 0 || !tp.trusts(peer) {
		return peer
	}
	last := peer
	for h := len(xff) - 1; h >= 0; h-- {
		v := xff[h]
		for len(v) > 0 {
			i := bytes.LastIndexByte(v, ',')
			entry := v[i+1:]
			if i < 0 {
				v = nil
			} else {
				v = v[:i]
			}
			a, ok := parseForwardedAddr(string(bytes.TrimSpace(entry)))
			if !ok {
				return last
			}
			if !tp.trusts(a) {
				return a
			}
			last = a
		}
	}
	return last
}

// parseForwardedAddr reads one X-Forwarded-For entry: an IP, or an IP with a
// port ("203.0.113.7:4711", "[2001:db8::1]:443"), which some proxies write.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// peerAddr is the TCP peer of the request.
func peerAddr(c *fiber.Ctx) netip.Addr {
	a, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

// ClientIP is the address of the client that sent the request: the TCP peer,
// or, when the peer is one of server.trusted_proxies, the first address in
// X-Forwarded-For (from the right) that is not a trusted proxy. Use it
// wherever the client's address matters (rate limits, session records, logs).
func (s *Server) ClientIP(c *fiber.Ctx) string {
	return s.proxies.clientAddr(peerAddr(c), c.Request().Header.PeekAll(fiber.HeaderXForwardedFor)).String()
}

// FromTrustedProxy reports whether the TCP peer of the request is one of
// server.trusted_proxies, so that what it says in X-Forwarded-* about the
// original request may be believed.
func (s *Server) FromTrustedProxy(c *fiber.Ctx) bool {
	return len(s.proxies) > 0 && s.proxies.trusts(peerAddr(c))
}
