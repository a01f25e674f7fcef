package store

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want redisTarget
		// wantErr is a fragment the error must contain; "" means success.
		wantErr string
	}{
		{name: "standalone with db", url: "redis://127.0.0.1:6380/2",
			want: redisTarget{Mode: modeStandalone, Addrs: []string{"127.0.0.1:6380"}, DB: 2}},
		{name: "standalone default port, no path", url: "redis://cache",
			want: redisTarget{Addrs: []string{"cache:6379"}}},
		{name: "credentials are percent-decoded", url: "redis://app:p%40ss%2Fw@r:6379/0",
			want: redisTarget{Addrs: []string{"r:6379"}, Username: "app", Password: "p@ss/w"}},
		{name: "password only", url: "redis://:pw@r",
			want: redisTarget{Addrs: []string{"r:6379"}, Password: "pw"}},
		{name: "rediss is TLS", url: "rediss://r:6380",
			want: redisTarget{Addrs: []string{"r:6380"}, TLS: true}},
		{name: "scheme is case-insensitive", url: "REDIS://r",
			want: redisTarget{Addrs: []string{"r:6379"}}},
		{name: "IPv6", url: "redis://[::1]:7000/1",
			want: redisTarget{Addrs: []string{"[::1]:7000"}, DB: 1}},
		{name: "IPv6 default port", url: "redis://[::1]",
			want: redisTarget{Addrs: []string{"[::1]:6379"}}},
		{name: "sentinel with master and db", url: "redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/3",
			want: redisTarget{Mode: modeSentinel, Addrs: []string{"s1:26379", "s2:26380"}, Master: "mymaster", DB: 3, Username: "u", Password: "pw"}},
		{name: "sentinel default port", url: "redis+sentinel://s1,s2/m",
			want: redisTarget{Mode: modeSentinel, Addrs: []string{"s1:26379", "s2:26379"}, Master: "m"}},
		{name: "sentinel over TLS", url: "rediss+sentinel://s1/m",
			want: redisTarget{Mode: modeSentinel, Addrs: []string{"s1:26379"}, Master: "m", TLS: true}},
		{name: "cluster", url: "redis+cluster://:pw@h1:7000,h2:7001",
			want: redisTarget{Mode: modeCluster, Addrs: []string{"h1:7000", "h2:7001"}, Password: "pw"}},
		{name: "cluster of one seed", url: "redis+cluster://h1:7000/",
			want: redisTarget{Mode: modeCluster, Addrs: []string{"h1:7000"}}},
		{name: "cluster db 0 is tolerated", url: "rediss+cluster://h1/0",
			want: redisTarget{Mode: modeCluster, Addrs: []string{"h1:6379"}, TLS: true}},

		{name: "no scheme", url: "u:secret@host:6379", wantErr: "missing scheme"},
		{name: "empty", url: "", wantErr: "missing scheme"},
		{name: "unknown scheme", url: "http://host", wantErr: `unsupported scheme "http"`},
		{name: "unix socket not supported", url: "unix:///tmp/redis.sock", wantErr: "unsupported scheme"},
		{name: "query", url: "redis://h/0?dial_timeout=1s", wantErr: "query"},
		{name: "fragment", url: "redis://:pw#x@h", wantErr: "fragment"},
		{name: "unescaped slash in the password", url: "redis://u:se/cret@h", wantErr: "percent-encode"},
		{name: "bad percent-encoding", url: "redis://u:%zz@h", wantErr: "percent-encoding in the password"},
		{name: "empty host", url: "redis:///0", wantErr: "empty host"},
		{name: "empty host in a list", url: "redis+cluster://h1,,h2", wantErr: "host #2: empty host"},
		{name: "bad port", url: "redis://h:port", wantErr: "port must be"},
		{name: "port out of range", url: "redis://h:70000", wantErr: "port must be"},
		{name: "bare IPv6", url: "redis://::1:6379", wantErr: "brackets"},
		{name: "unclosed IPv6", url: "redis://[::1:6379", wantErr: "unclosed"},
		{name: "two hosts standalone", url: "redis://h1,h2", wantErr: "takes one host"},
		{name: "db not a number", url: "redis://h/zero", wantErr: "non-negative number"},
		{name: "negative db", url: "redis://h/-1", wantErr: "non-negative number"},
		{name: "standalone with two path segments", url: "redis://h/0/1", wantErr: "/<db>"},
		{name: "sentinel without master", url: "redis+sentinel://s1", wantErr: "master name"},
		{name: "sentinel with bad db", url: "redis+sentinel://s1/m/x", wantErr: "non-negative number"},
		{name: "cluster with a db", url: "redis+cluster://h1/2", wantErr: "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRedisURL(tt.url)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want ErrBadURL containing %q", err, tt.wantErr)
				}
				for _, secret := range []string{"secret", "se/cret", "%zz"} {
					if strings.Contains(tt.url, secret) && strings.Contains(err.Error(), secret) {
						t.Fatalf("error shows credentials: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.Mode != tt.want.Mode || !slices.Equal(got.Addrs, tt.want.Addrs) || got.Master != tt.want.Master ||
				got.DB != tt.want.DB || got.Username != tt.want.Username || got.Password != tt.want.Password || got.TLS != tt.want.TLS {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			if tt.want.Password != "" && strings.Contains(got.String(), tt.want.Password) {
				t.Fatalf("String() shows the password: %s", got)
			}
		})
	}
}

func TestNewRedisOptionsOverrideURLCredentials(t *testing.T) {
	r, err := NewRedis(RedisOptions{URL: "redis+sentinel://:url-pw@s1/m", Password: "opt-pw", TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.target.Password != "opt-pw" || !r.target.TLS || r.target.Mode != modeSentinel {
		t.Fatalf("target = %+v", r.target)
	}
	if strings.Contains(r.String(), "pw") {
		t.Fatalf("String() shows a password: %s", r)
	}
}

// FuzzParseRedisURL: the URL comes from configuration, not clients, but a
// parser must still never panic.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://h", "redis+sentinel://a,b/m/1", "redis://[::1", "rediss+cluster://:p@h:1/0", "redis://@/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseRedisURL(s)
		if err == nil && len(tg.Addrs) == 0 {
			t.Fatalf("accepted %q with no address", s)
		}
	})
}
