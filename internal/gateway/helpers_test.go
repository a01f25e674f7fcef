package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/gateway"
	"github.com/tokenshift/tokenshift/internal/httpapi"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/httpcheck"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/usage"
	"github.com/tokenshift/tokenshift/internal/user"
)

const (
	aliceEmail = "alice@example.com"
	alicePass  = "alice-dev-password"
)

// phase is a fixed phase decision: the gateway tests are about what the
// gateway does with a decision, featureflags has its own tests.
type phase featureflags.Decision

func (d phase) Decide(string, string) featureflags.Decision { return featureflags.Decision(d) }

var (
	dual   = phase{Phase: featureflags.PhaseDual, IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	prefer = phase{Phase: featureflags.PhasePreferJWT, IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true,
		Deprecate: true, DeprecationHeader: "@1767225600", SunsetHeader: "Wed, 30 Jun 2027 00:00:00 GMT", LinkHeader: `<https://docs.example/m>; rel="deprecation"; type="text/html"`}
)

// env is a real tokenshift server (memory store, ephemeral key, dev users)
// with the gateway mounted the way cmd mounts it.
type env struct {
	app    *fiber.App
	srv    *httpapi.Server
	gw     *gateway.Gateway
	usage  *usage.Recorder
	tokens *token.Service
}

type envOptions struct {
	flags        authn.Decider
	writeTimeout time.Duration
	gateway      func(*gateway.Options)
	// trustedProxies is server.trusted_proxies; "0.0.0.0" is the peer of
	// app.Test requests.
	trustedProxies []string
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	rev := token.NewRevocations(st, time.Now, nil)
	rctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := rev.Start(rctx); err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewEphemeralKeyRing(token.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.NewService(token.Options{Issuer: "http://tokenshift.test", Audience: "tokenshift", CacheBytes: 1 << 20}, ring, st, rev)
	if err != nil {
		t.Fatal(err)
	}
	// With the revocation mirror, as cmd wires it: the near cache is on.
	sessions, err := session.New(st, session.Options{Revocations: rev})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := user.ParseFile(configs.DevUsersYAML)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := usage.New(usage.Options{Clients: []string{"web", "spa", "mobile"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if o.flags == nil {
		o.flags = dual
	}
	if o.writeTimeout == 0 {
		o.writeTimeout = 10 * time.Second
	}
	cookies := httpapi.CookieOptions{SessionName: "ts_session", AccessName: "ts_access", RefreshName: "ts_refresh"}
	e := &env{usage: rec, tokens: tokens}
	lg, err := logins.New(logins.Options{
		Logger: quiet(), Store: st, Sessions: sessions, Tokens: tokens, Revoked: rev,
		Users: user.NewVerifier(fs, nil), Flags: o.flags, Usage: rec,
		Clients: []auth.Client{
			{ID: "web", Kind: auth.KindWeb, TokenTransport: auth.TransportBody},
			{ID: "spa", Kind: auth.KindSPA, TokenTransport: auth.TransportCookie},
			{ID: "mobile", Kind: auth.KindMobile, TokenTransport: auth.TransportBody},
		},
		DefaultClient:     "web",
		RateLimit:         logins.RateLimit{PerAccount: 100, PerIP: 100, Window: time.Minute},
		MaxCredentialLife: 168 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = httpapi.New(ctx, httpapi.Options{
		Logger: quiet(), Store: st, Logins: lg, Flags: o.flags, Usage: rec,
		Cookies: cookies, CORSOrigins: []string{"http://tokenshift.test"},
		BodyLimit: 1 << 20, ReadTimeout: 10 * time.Second, WriteTimeout: o.writeTimeout, IdleTimeout: time.Minute,
		TrustedProxies: o.trustedProxies,
		Mount: func(app *fiber.App, s *httpapi.Server) {
			cfg := gateway.Options{
				Authn:             s.AuthnConfig(),
				CSRF:              s.CSRF(),
				Signer:            tokens,
				ForwardAuth:       true,
				CredentialCookies: []string{cookies.SessionCookie(), cookies.AccessCookie(), cookies.RefreshCookie()},
				ClientIP:          s.ClientIP,
				FromTrustedProxy:  s.FromTrustedProxy,
				Logger:            quiet(),
			}
			if o.gateway != nil {
				o.gateway(&cfg)
			}
			g, err := gateway.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Close)
			e.gw = g
			s.SkipCORS(g.Owns)
			g.Mount(app)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.app = e.srv.App
	return e
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// do runs one request through the app (app.Test: no network between the
// client and tokenshift; the proxy's upstream is real loopback HTTP).
func (e *env) do(t testing.TB, r *http.Request) *response {
	t.Helper()
	res, err := e.app.Test(r, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.Method, r.URL, err)
	}
	return &response{Response: res, body: b}
}

type response struct {
	*http.Response
	body []byte
}

func (r *response) problem(t *testing.T, status int, code string) map[string]any {
	t.Helper()
	return httpcheck.Problem(t, httpcheck.Answer{Status: r.StatusCode, Header: r.Header, Body: r.body}, status, code)
}

// creds are the credentials of one login.
type creds struct {
	session, access, accessCookie, csrf string
	userID, sid                         string
}

func (e *env) login(t testing.TB, client string) creds {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": aliceEmail, "password": alicePass, "client_id": client})
	r := httptest.NewRequest("POST", "/auth/login", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	res := e.do(t, r)
	if res.StatusCode != 200 {
		t.Fatalf("login: %d %s", res.StatusCode, res.body)
	}
	var lr struct {
		AccessToken string `json:"access_token"`
		CSRFToken   string `json:"csrf_token"`
		UserID      string `json:"user_id"`
		SID         string `json:"sid"`
	}
	if err := json.Unmarshal(res.body, &lr); err != nil {
		t.Fatal(err)
	}
	c := creds{access: lr.AccessToken, csrf: lr.CSRFToken, userID: lr.UserID, sid: lr.SID}
	for _, ck := range res.Cookies() {
		switch ck.Name {
		case "ts_session":
			c.session = ck.Value
		case "ts_access":
			c.accessCookie = ck.Value
		}
	}
	return c
}

// seen is one request as the upstream received it.
type seen struct {
	method, path, query, host string
	header                    http.Header
	body                      string
}

// upstream is a real HTTP server on loopback that records what reaches it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, host: r.Host, header: r.Header.Clone(), body: string(b)})
		u.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream:"+r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) last(t *testing.T) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return u.reqs[len(u.reqs)-1]
}

// listen serves the app on a real loopback port, for streams and upgrades.
func (e *env) listen(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.ShutdownWithTimeout(2 * time.Second) })
	return "http://" + ln.Addr().String()
}
