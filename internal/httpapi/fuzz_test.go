package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Every parser of client input has a fuzz target here; `make test` runs the
// seeds, `make fuzz` runs each one for FUZZTIME.

// withCtx runs fn on a Fiber context for a POST with the given parts.
func withCtx(app *fiber.App, ctype string, body []byte, header map[string]string, fn func(c *fiber.Ctx)) {
	var fctx fasthttp.RequestCtx
	fctx.Request.Header.SetMethod(fiber.MethodPost)
	fctx.Request.SetRequestURI("/auth/x")
	fctx.Request.Header.SetHost("tokenshift.test")
	if ctype != "" {
		fctx.Request.Header.SetContentType(ctype)
	}
	for k, v := range header {
		fctx.Request.Header.Set(k, v)
	}
	fctx.Request.SetBody(body)
	c := app.AcquireCtx(&fctx)
	defer app.ReleaseCtx(c)
	fn(c)
}

// clientError fails unless err is nil or an *auth.Error whose code maps to a
// 4xx: bad input is the client's fault, never a 500.
func clientError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error is not an *auth.Error: %v", err)
	}
	if s := Status(ae.Code); s < 400 || s >= 500 {
		t.Fatalf("client input gave status %d (%s)", s, ae.Code)
	}
}

// FuzzLoginBody: the login body parser accepts JSON objects and forms, and
// answers anything else with a 4xx.
func FuzzLoginBody(f *testing.F) {
	seeds := []struct{ ctype, body string }{
		{"application/json", `{"email":"a@b.c","password":"p","client_id":"web"}`},
		{"application/json; charset=utf-8", `{"email":"a@b.c","password":"p","csrf_token":"t"}`},
		{"application/json", `{"email":1}`},
		{"application/json", `[1,2]`},
		{"application/json", `null`},
		{"application/json", `{"email":"\u0000","password":{"x":1}}`},
		{"application/x-www-form-urlencoded", "email=a%40b.c&password=p&return_to=%2Fhome&csrf_token=x"},
		{"application/x-www-form-urlencoded", "email=%zz&&=&password"},
		{"APPLICATION/X-WWW-FORM-URLENCODED ; charset=utf-8", "email=a"},
		{"text/plain", "email=a"},
		{"multipart/form-data; boundary=x", "--x\r\n"},
		{"", ""},
		{"", "{}"},
	}
	for _, s := range seeds {
		f.Add(s.ctype, []byte(s.body))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		withCtx(app, ctype, body, nil, func(c *fiber.Ctx) {
			var email, pass, client, ret, csrf string
			isForm, err := parseForm(c, map[string]*string{"email": &email, "password": &pass, "client_id": &client, "return_to": &ret, FieldCSRF: &csrf})
			clientError(t, err)
			if err != nil && isForm {
				t.Fatal("a failed parse reported a form")
			}
		})
	})
}

// FuzzSafeReturnTo: whatever passes is a path on this origin, as a browser
// would resolve it (browsers drop tabs and newlines and read "\" as "/").
func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/home", "/admin/", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil", "https://evil.example", "/ok?x=//y", "javascript:alert(1)", "", "/%2F/evil", " /x", "/\x00/evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://tokenshift.test/auth/login")
	f.Fuzz(func(t *testing.T, p string) {
		if !safeReturnTo(p) {
			return
		}
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(p)
		if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") {
			t.Fatalf("%q passed but a browser reads it as %q", p, browser)
		}
		u, err := url.Parse(browser)
		if err != nil {
			return // not a URL a browser would follow anywhere else either
		}
		if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("%q resolves to %s", p, r)
		}
	})
}

// FuzzCheckOrigin: an Origin passes only when it is ours or allowed; "null"
// and cross-site fetch metadata never pass.
func FuzzCheckOrigin(f *testing.F) {
	for _, s := range [][3]string{
		{"https://app.example.com", "", "tokenshift.test"},
		{"http://tokenshift.test", "same-origin", "tokenshift.test"},
		{"HTTP://TOKENSHIFT.TEST:80", "", "tokenshift.test"},
		{"null", "", "tokenshift.test"},
		{"https://evil.example", "same-origin", "tokenshift.test"},
		{"", "cross-site", "tokenshift.test"},
		{"", "same-site", "tokenshift.test"},
		{"", "none", "tokenshift.test"},
		{"http://evil.example", "", "evil.example"},
		{"http://a@tokenshift.test", "", "tokenshift.test"},
		{"://", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	x := &CSRF{origins: map[string]bool{"https://app.example.com": true}}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, origin, site, host string) {
		h := map[string]string{}
		if origin != "" {
			h["Origin"] = origin
		}
		if site != "" {
			h["Sec-Fetch-Site"] = site
		}
		withCtx(app, "", nil, h, func(c *fiber.Ctx) {
			c.Request().Header.SetHost(host)
			err := x.CheckOrigin(c)
			clientError(t, err)
			if err != nil {
				return
			}
			got := c.Get(fiber.HeaderOrigin)
			switch {
			case got == "null":
				t.Fatal("Origin null passed")
			case got == "" && c.Get("Sec-Fetch-Site") == "cross-site":
				t.Fatal("cross-site fetch metadata passed")
			case got != "":
				u, err := url.Parse(got)
				if err != nil {
					t.Fatalf("unparsable Origin %q passed", got)
				}
				o := strings.ToLower(u.Scheme + "://" + u.Host)
				if !x.origins[o] && o != strings.ToLower(c.Protocol()+"://"+c.Hostname()) {
					t.Fatalf("Origin %q passed for host %q", got, c.Hostname())
				}
			}
		})
	})
}

// FuzzRefreshFromRequest: the refresh token reader answers 4xx or a token of
// bounded size, and takes the cookie only from a same-origin caller.
func FuzzRefreshFromRequest(f *testing.F) {
	for _, s := range [][4]string{
		{"application/json", `{"refresh_token":"rt_x"}`, "", ""},
		{"application/json", `{"refresh_token":["x"]}`, "", ""},
		{"application/x-www-form-urlencoded", "refresh_token=" + strings.Repeat("A", 600), "", ""},
		{"", "", "rt_cookie", "https://evil.example"},
		{"", "", "rt_cookie", ""},
		{"text/plain", "x", "rt_cookie", ""},
		{"application/json", `{}`, "rt_cookie", "null"},
	} {
		f.Add(s[0], []byte(s[1]), s[2], s[3])
	}
	ts := newTestServer(f, nil)
	f.Fuzz(func(t *testing.T, ctype string, body []byte, cookie, origin string) {
		h := map[string]string{}
		if cookie != "" {
			h["Cookie"] = "ts_refresh=" + cookie
		}
		if origin != "" {
			h["Origin"] = origin
		}
		withCtx(ts.App, ctype, body, h, func(c *fiber.Ctx) {
			raw, err := ts.refreshFromRequest(c)
			clientError(t, err)
			if len(raw) > 512 {
				t.Fatalf("a %d-byte refresh token got through", len(raw))
			}
			if err == nil && raw != "" && raw == c.Cookies("ts_refresh") && ts.csrf.CheckOrigin(c) != nil {
				t.Fatal("the refresh cookie was used by a cross-origin caller")
			}
		})
	})
}

// FuzzClientIP: the client address is always a valid IP; an untrusted peer
// is always its own client; a trusted peer yields itself or an address
// listed in X-Forwarded-For.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][2]string{
		{"10.0.0.1", "198.51.100.1"},
		{"10.0.0.1", "evil, 198.51.100.1"},
		{"10.0.0.1", "1.2.3.4, garbage, 192.168.1.1"},
		{"10.0.0.1", "[2001:db8::1]:443, ::ffff:1.2.3.4"},
		{"203.0.113.5", "198.51.100.1"},
		{"::ffff:10.0.0.1", ",,,"},
		{"2001:db8:1::1", "fe80::1%eth0"},
	} {
		f.Add(s[0], s[1])
	}
	proxies, _ := parseTrustedProxies([]string{"10.0.0.1", "192.168.0.0/16", "2001:db8:1::/48"})
	f.Fuzz(func(t *testing.T, peerStr, xff string) {
		peer, err := netip.ParseAddr(peerStr)
		if err != nil {
			return
		}
		got := proxies.clientAddr(peer, [][]byte{[]byte(xff)})
		if !got.IsValid() {
			t.Fatalf("invalid client address from peer %s, XFF %q", peer, xff)
		}
		if !proxies.trusts(peer) {
			if got != peer.Unmap() {
				t.Fatalf("untrusted peer %s gave client %s", peer, got)
			}
			return
		}
		if got == peer.Unmap() {
			return
		}
		for _, e := range strings.Split(xff, ",") {
			if a, ok := parseForwardedAddr(strings.TrimSpace(e)); ok && a == got {
				return
			}
		}
		t.Fatalf("client %s is neither the peer nor in XFF %q", got, xff)
	})
}

// FuzzRevokeBody: POST /auth/revoke answers 200 or a 4xx problem, whatever
// the body, hint or cookies, and never revokes what it was not given.
func FuzzRevokeBody(f *testing.F) {
	ts := newTestServer(f, nil)
	lr := ts.loginJSON(f, "alice@example.com", "alice-pass", "mobile").json(f)
	access := lr["access_token"].(string)
	for _, s := range [][3]string{
		{"application/x-www-form-urlencoded", "token=" + url.QueryEscape("garbage") + "&token_type_hint=access_token", ""},
		{"application/x-www-form-urlencoded", "token_type_hint=refresh_token", "ts_refresh=rt_x"},
		{"application/json", `{"token":"rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, ""},
		{"application/json", `{"token":` + strings.Repeat("[", 100) + `}`, ""},
		{"application/json", `{"token":"` + strings.Repeat("A", 9000) + `"}`, ""},
		{"", "", "ts_access=eyJ.x.y"},
		{"text/plain", "token=x", ""},
	} {
		f.Add(s[0], []byte(s[1]), s[2])
	}
	f.Fuzz(func(t *testing.T, ctype string, body []byte, cookie string) {
		hr, err := http.NewRequest("POST", "http://tokenshift.test/auth/revoke", bytes.NewReader(body))
		if err != nil {
			return
		}
		if ctype != "" {
			hr.Header.Set("Content-Type", strings.Map(dropCtl, ctype))
		}
		if cookie != "" {
			hr.Header.Set("Cookie", strings.Map(dropCtl, cookie))
		}
		r := ts.serve(t, hr, "")
		if r.status != 200 && (r.status < 400 || r.status >= 500) {
			t.Fatalf("status %d for %q %q: %s", r.status, ctype, body, r.body)
		}
		if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("status %d without problem+json", r.status)
		}
		if !bytes.Contains(body, []byte(access)) {
			if _, err := ts.tokens.VerifyAccess(access); err != nil {
				t.Fatalf("a request without the token revoked it: %v", err)
			}
		}
	})
}

// dropCtl removes characters net/http refuses in header values.
func dropCtl(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}
