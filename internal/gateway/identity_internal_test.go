package gateway

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// setIdentity writes the same headers, names and values, as identity
// through fasthttp's Set did, for any configured names (normalised or
// not) and for values with control characters.
func TestSetIdentityAsSet(t *testing.T) {
	p := &auth.Principal{UserID: "u-alice\r\nX-Evil: 1", Email: "jörg@example.com\x7f", ClientID: "web\x00", Roles: []string{"user", "ad\nmin"}, Scheme: auth.SchemeJWTCookie}
	for _, names := range [][5]string{
		{"X-Auth-User", "X-Auth-Email", "X-Auth-Client", "X-Auth-Scheme", "X-Auth-Roles"},
		{"x-remote-user", "X-EMAIL", "x--client", "x-Scheme-", "-roles"},
		{"remote_user", "X-Auth-Émail", "A", "x-auth-scheme9", "X-Auth-ROLES"},
	} {
		for _, asIs := range []bool{false, true} {
			n := newHeaderNames(Options{Headers: Headers{User: names[0], Email: names[1], Client: names[2], Scheme: names[3], Roles: names[4]}, TokenHeader: "X-Auth-Token"})
			var want, got fasthttp.ResponseHeader
			if asIs {
				want.DisableNormalizing()
				got.DisableNormalizing()
			}
			n.identity(p, want.Set)
			k := newAnswerKeys(&n, asIs)
			k.setIdentity(&got, p)
			if w, g := dump(&want), dump(&got); w != g {
				t.Errorf("names %q (as is: %v):\n got %s\nwant %s", names, asIs, g, w)
			}
		}
	}
}

func dump(h *fasthttp.ResponseHeader) string {
	var b strings.Builder
	h.VisitAll(func(k, v []byte) {
		b.WriteString(string(k) + ": " + string(v) + "\n")
	})
	return b.String()
}
