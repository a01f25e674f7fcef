package logins

import "testing"

func TestIPBucket(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"not-an-ip", "not-an-ip"},
	}
	for _, tc := range tests {
		if got := ipBucket(tc.ip); got != tc.want {
			t.Errorf("ipBucket(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
