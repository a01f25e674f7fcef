package httpapi

import (
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.1", "192.168.0.0/16", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		proxies trustedProxies
		peer    string
		xff     []string
		want    string
	}{
		{name: "no proxies configured: header ignored", peer: "203.0.113.5", xff: []string{"198.51.100.1"}, want: "203.0.113.5"},
		{name: "untrusted peer: header ignored", proxies: proxies, peer: "203.0.113.5", xff: []string{"198.51.100.1"}, want: "203.0.113.5"},
		{name: "trusted peer without header", proxies: proxies, peer: "10.0.0.1", want: "10.0.0.1"},
		{name: "trusted peer, one client", proxies: proxies, peer: "10.0.0.1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "spoofed prefix is ignored", proxies: proxies, peer: "10.0.0.1", xff: []string{"evil, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "spoofed IP prefix is ignored", proxies: proxies, peer: "10.0.0.1", xff: []string{"1.2.3.4, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "chain of trusted proxies skipped", proxies: proxies, peer: "10.0.0.1", xff: []string{"1.2.3.4, 198.51.100.1, 192.168.4.4, 192.168.9.9"}, want: "198.51.100.1"},
		{name: "several header lines read as one list", proxies: proxies, peer: "10.0.0.1", xff: []string{"1.2.3.4", "198.51.100.1, 192.168.4.4"}, want: "198.51.100.1"},
		{name: "only trusted hops: the farthest one", proxies: proxies, peer: "10.0.0.1", xff: []string{"192.168.1.1, 192.168.2.2"}, want: "192.168.1.1"},
		{name: "garbage next to us stops the walk", proxies: proxies, peer: "10.0.0.1", xff: []string{"198.51.100.1, garbage"}, want: "10.0.0.1"},
		{name: "garbage behind a trusted hop", proxies: proxies, peer: "10.0.0.1", xff: []string{"1.2.3.4, garbage, 192.168.1.1"}, want: "192.168.1.1"},
		{name: "empty entries stop the walk", proxies: proxies, peer: "10.0.0.1", xff: []string{"198.51.100.1,,"}, want: "10.0.0.1"},
		{name: "entry with a port", proxies: proxies, peer: "10.0.0.1", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1"},
		{name: "IPv6 entry with a port", proxies: proxies, peer: "10.0.0.1", xff: []string{"[2001:db8:9::7]:443"}, want: "2001:db8:9::7"},
		{name: "IPv6 trusted proxy", proxies: proxies, peer: "2001:db8:1::1", xff: []string{"2001:db8:9::7"}, want: "2001:db8:9::7"},
		{name: "IPv4-mapped peer counts as IPv4", proxies: proxies, peer: "::ffff:10.0.0.1", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "IPv4-mapped entry unmapped", proxies: proxies, peer: "10.0.0.1", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1"},
		{name: "whitespace tolerated", proxies: proxies, peer: "10.0.0.1", xff: []string{"  198.51.100.1  ,  192.168.1.1 "}, want: "198.51.100.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var xff [][]byte
			for _, h := range tc.xff {
				xff = append(xff, []byte(h))
			}
			got := tc.proxies.clientAddr(netip.MustParseAddr(tc.peer), xff)
			if got.String() != tc.want {
				t.Fatalf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/8/8"} {
		if _, err := parseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	tp, err := parseTrustedProxies([]string{"10.1.2.3/8", "::ffff:192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !tp.trusts(netip.MustParseAddr("10.200.0.1")) || !tp.trusts(netip.MustParseAddr("192.0.2.1")) || tp.trusts(netip.MustParseAddr("11.0.0.1")) {
		t.Fatalf("trusts wrong: %v", tp)
	}
}

// Through the whole server: the session records the client behind the proxy,
// never the raw header, and X-Forwarded-For from an untrusted peer is ignored.
func TestClientIPThroughServer(t *testing.T) {
	ts := newTestServer(t, func(o *testOptions) { o.TrustedProxies = []string{"10.0.0.1"} })
	tests := []struct {
		name, peer, xff, want string
	}{
		{name: "behind the trusted proxy", peer: "10.0.0.1", xff: "evil, 198.51.100.7", want: "198.51.100.7"},
		{name: "untrusted peer forging the header", peer: "203.0.113.9", xff: "198.51.100.7", want: "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, treq{method: "POST", path: "/auth/login", peer: tc.peer, header: map[string]string{"X-Forwarded-For": tc.xff},
				json: map[string]string{"email": "alice@example.com", "password": "alice-pass"}})
			if r.status != 200 {
				t.Fatalf("login: %d %s", r.status, r.body)
			}
			l, err := ts.sess.Get(t.Context(), r.json(t)["sid"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if l.IP != tc.want {
				t.Fatalf("session IP %q, want %q", l.IP, tc.want)
			}
		})
	}
}
