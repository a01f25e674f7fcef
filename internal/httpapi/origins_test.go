package httpapi

import (
	"net/http"
	"testing"
)

// TestClientAllowedOrigins: a client restricted to origins
// (clients[].allowed_origins) cannot be picked by a browser on another
// origin, for login, refresh or exchange; an unrestricted client and a
// caller that is not a browser are not affected.
func TestClientAllowedOrigins(t *testing.T) {
	const (
		app   = "https://app.example.com"   // the restricted clients' page
		other = "https://other.example.com" // allowed by CORS, not by the clients
		self  = "http://tokenshift.test"    // tokenshift's own origin
	)
	ts := newTestServer(t, func(o *testOptions) {
		o.CORSOrigins = append(o.CORSOrigins, other)
		for i := range o.Clients {
			switch o.Clients[i].ID {
			case "spa":
				// Written with its default port: compared as the browser sends it.
				o.Clients[i].AllowedOrigins = []string{"https://APP.example.com:443"}
			case "web":
				o.Clients[i].AllowedOrigins = []string{app}
			}
		}
	})
	login := func(client string, header map[string]string) *tresp {
		return ts.do(t, treq{method: "POST", path: "/auth/login", header: header,
			json: map[string]string{"email": "alice@example.com", "password": "alice-pass", "client_id": client}})
	}

	t.Run("login", func(t *testing.T) {
		tests := []struct {
			name   string
			client string
			header map[string]string
			status int
		}{
			{name: "restricted client from its origin", client: "spa", header: map[string]string{"Origin": app, "Sec-Fetch-Site": "cross-site"}, status: 200},
			{name: "restricted client from another allowed CORS origin", client: "spa", header: map[string]string{"Origin": other}, status: 403},
			{name: "restricted client from tokenshift's own origin", client: "spa", header: map[string]string{"Origin": self}, status: 403},
			{name: "restricted client, fetch metadata without Origin", client: "spa", header: map[string]string{"Sec-Fetch-Site": "same-origin"}, status: 403},
			// Not client authentication: a non-browser caller proves nothing
			// and is let through, as before.
			{name: "restricted client without browser headers", client: "spa", status: 200},
			{name: "unrestricted client from another origin", client: "mobile", header: map[string]string{"Origin": other}, status: 200},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := ts.users.calls.Load()
				r := login(tc.client, tc.header)
				if tc.status == 200 {
					if r.status != 200 {
						t.Fatalf("%d %s", r.status, r.body)
					}
					return
				}
				wantProblem(t, r, 403, "origin_not_allowed")
				if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
					t.Fatalf("a refused login set cookies: %q", sc)
				}
				if ts.users.calls.Load() != before {
					t.Fatal("a refused login reached the password check")
				}
			})
		}
	})

	t.Run("refresh", func(t *testing.T) {
		rt := login("spa", map[string]string{"Origin": app}).cookie("ts_refresh")
		r := ts.do(t, treq{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{rt}, header: map[string]string{"Origin": other}})
		wantProblem(t, r, 403, "origin_not_allowed")
		if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("a refused refresh set cookies: %q", sc)
		}
		// Refused before rotation: the token still works from the client's origin.
		r = ts.do(t, treq{method: "POST", path: "/auth/refresh", cookies: []*http.Cookie{rt}, header: map[string]string{"Origin": app}})
		if r.status != 200 || r.cookie("ts_refresh") == nil {
			t.Fatalf("refresh from the client's origin: %d %s", r.status, r.body)
		}
	})

	t.Run("exchange", func(t *testing.T) {
		web := login("web", nil)
		cookie, csrf := web.cookie("ts_session"), web.json(t)["csrf_token"].(string)
		exchange := func(origin string) *tresp {
			return ts.do(t, treq{method: "POST", path: "/auth/exchange", cookies: []*http.Cookie{cookie},
				header: map[string]string{"Origin": origin, "X-CSRF-Token": csrf}})
		}
		wantProblem(t, exchange(other), 403, "origin_not_allowed")
		if r := exchange(app); r.status != 200 || r.json(t)["access_token"] == nil {
			t.Fatalf("exchange from the client's origin: %d %s", r.status, r.body)
		}
	})
}

func TestNormalOrigin(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{in: "https://app.example.com", want: "https://app.example.com", ok: true},
		{in: "HTTPS://App.Example.COM:443", want: "https://app.example.com", ok: true},
		{in: "http://localhost:80", want: "http://localhost", ok: true},
		{in: "http://localhost:5173", want: "http://localhost:5173", ok: true},
		{in: "https://[::1]:8443", want: "https://[::1]:8443", ok: true},
		{in: "https://app.example.com:80", want: "https://app.example.com:80", ok: true},
		{in: "null"},
		{in: ""},
		{in: "ftp://app.example.com"},
		{in: "https://app.example.com/path"},
		{in: "https://u@app.example.com"},
		{in: "https://app.example.com?q"},
	}
	for _, tc := range tests {
		got, ok := normalOrigin(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalOrigin(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
