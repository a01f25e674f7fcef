package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Login CSRF through POST /auth/refresh: a foreign page auto-submits a form
// carrying the attacker's own refresh token of a cookie client. Answered, the
// victim's browser would store the attacker's access and refresh cookies.
// Every answer that sets credential cookies passes the same-origin check,
// whatever carried the token.
func TestRefreshCSRFWithABodyToken(t *testing.T) {
	t.Parallel()
	in := start(t)
	attacker := in.login(t, opsEmail, opsPass, "spa").cookie("ts_refresh")
	if attacker == nil {
		t.Fatal("a spa login set no refresh cookie")
	}
	form := url.Values{"refresh_token": {attacker.Value}}
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{name: "cross-site form", header: map[string]string{"Origin": "https://evil.example"}},
		{name: "cross-site by fetch metadata", header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{name: "null origin (sandboxed frame)", header: map[string]string{"Origin": "null"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := in.do(t, req{method: "POST", path: "/auth/refresh", form: form, header: tc.header})
			expectProblem(t, r, 403, "csrf_failed")
			if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
				t.Fatalf("a cross-site refresh set cookies: %q", sc)
			}
		})
	}
	// Nothing was rotated: the same-origin refresh of that token works.
	r := in.do(t, req{method: "POST", path: "/auth/refresh", form: form, header: map[string]string{"Origin": in.URL}})
	if r.status != 200 || r.cookie("ts_refresh") == nil || r.cookie("ts_access") == nil {
		t.Fatalf("same-origin refresh: %d %s", r.status, r.body)
	}
}

// clients[].allowed_origins: a browser on another origin cannot pick a
// restricted client, at login or refresh; its own origin can.
func TestClientAllowedOrigins(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := `
cors:
  allowed_origins: [https://spa.example, https://other.example]
clients:
  - {id: web, kind: web, token_transport: body}
  - {id: spa, kind: spa, token_transport: cookie, allowed_origins: [https://spa.example]}
  - {id: mobile, kind: mobile, token_transport: body}
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, "TOKENSHIFT_CONFIG="+cfg)
	login := func(origin string) *resp {
		return in.do(t, req{method: "POST", path: "/auth/login", header: map[string]string{"Origin": origin},
			json: map[string]string{"email": aliceEmail, "password": alicePass, "client_id": "spa"}})
	}
	r := login("https://other.example")
	expectProblem(t, r, 403, "origin_not_allowed")
	if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
		t.Fatalf("a refused login set cookies: %q", sc)
	}
	ok := login("https://spa.example")
	if ok.status != 200 || ok.cookie("ts_refresh") == nil {
		t.Fatalf("login from the client's origin: %d %s", ok.status, ok.body)
	}
	refresh := func(origin string) *resp {
		return in.do(t, req{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{ok.cookie("ts_refresh")}, header: map[string]string{"Origin": origin}})
	}
	expectProblem(t, refresh("https://other.example"), 403, "origin_not_allowed")
	if r := refresh("https://spa.example"); r.status != 200 {
		t.Fatalf("refresh from the client's origin: %d %s", r.status, r.body)
	}
	// An unrestricted client is not affected.
	if r := in.do(t, req{method: "POST", path: "/auth/login", header: map[string]string{"Origin": "https://other.example"},
		json: map[string]string{"email": aliceEmail, "password": alicePass, "client_id": "mobile"}}); r.status != 200 {
		t.Fatalf("login of an unrestricted client: %d %s", r.status, r.body)
	}

	// A value that no browser's Origin can equal is a config error naming the key.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(yaml, "allowed_origins: [https://spa.example]", "allowed_origins: [https://spa.example/app]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "config", "validate", "--config", bad).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "clients[1].allowed_origins") {
		t.Fatalf("config validate: %v\n%s", err, out)
	}
}
