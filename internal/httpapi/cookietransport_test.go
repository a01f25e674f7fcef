package httpapi

import (
	"testing"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// TestAccessCookieOnlyForCookieClients: the access cookie (scheme
// jwt_cookie) carries the tokens of clients registered with token_transport
// cookie only. A body client's token planted in that cookie is refused, so
// it cannot ride on a browser's cross-site requests; as a bearer it works.
func TestAccessCookieOnlyForCookieClients(t *testing.T) {
	s := newDevServer(t)
	mobile := s.loginJSON(t, aliceEmail, alicePassword, "mobile").json(t)["access_token"].(string)
	spa := s.loginJSON(t, aliceEmail, alicePassword, "spa").cookie["ts_access"].Value

	for _, tc := range []struct {
		name       string
		c          call
		wantStatus int
		wantScheme string
	}{
		{name: "body client in the access cookie", c: call{path: "/auth/me", cookies: map[string]string{"ts_access": mobile}}, wantStatus: 401},
		{name: "body client as bearer", c: call{path: "/auth/me", bearer: mobile}, wantStatus: 200, wantScheme: "bearer"},
		{name: "cookie client in the access cookie", c: call{path: "/auth/me", cookies: map[string]string{"ts_access": spa}}, wantStatus: 200, wantScheme: "jwt_cookie"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.do(t, tc.c)
			if tc.wantStatus != 200 {
				expectProblem(t, a, tc.wantStatus, auth.CodeInvalidToken)
				return
			}
			if a.status != 200 || a.json(t)["scheme"] != tc.wantScheme {
				t.Fatalf("%d %s; want 200 as %s", a.status, a.body, tc.wantScheme)
			}
		})
	}
}
