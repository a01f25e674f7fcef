package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/httpcheck"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/usage"
	"github.com/tokenshift/tokenshift/internal/user"
)

// devServer is a whole Server on the in-memory store with the dev users and
// clients: the same parts `make run` wires, built in-process so handler tests
// go through app.Test and benchmarks through app.Handler().
type devServer struct {
	*Server
	opts   testOptions
	store  *store.Memory
	usage  *usage.Recorder
	tokens *token.Service
	flags  *featureflags.Flags
}

type devOption func(*testOptions, *token.Options)

// withPhase starts the server in phase p (global).
func withPhase(p featureflags.Phase) devOption {
	return func(o *testOptions, _ *token.Options) {
		f, err := featureflags.NewFlags(featureflags.State{Phase: p, RolloutSeed: "test"})
		if err != nil {
			panic(err)
		}
		o.Flags = f
	}
}

// withUsers replaces the dev users with st (the login benchmarks' users).
func withUsers(st user.Store) devOption {
	return func(o *testOptions, _ *token.Options) {
		o.Users = user.NewVerifier(st, &user.VerifierOptions{Logger: slog.New(slog.DiscardHandler)})
	}
}

// withoutTokenCache disables the verified-token cache, so every bearer request
// runs the signature check.
func withoutTokenCache() devOption {
	return func(_ *testOptions, tc *token.Options) { tc.CacheBytes = 0 }
}

var testClients = []auth.Client{
	{ID: "web", Name: "Legacy web", Kind: auth.KindWeb, TokenTransport: auth.TransportBody},
	{ID: "spa", Name: "SPA", Kind: auth.KindSPA, TokenTransport: auth.TransportCookie},
	{ID: "mobile", Name: "Mobile", Kind: auth.KindMobile, TokenTransport: auth.TransportBody},
}

func newDevServer(tb testing.TB, opts ...devOption) *devServer {
	tb.Helper()
	st := store.NewMemory(time.Now)
	tb.Cleanup(func() { st.Close() })
	return newDevServerOn(tb, st, opts...)
}

// newDevServerOn is newDevServer on another store (Redis, for benchmarks);
// devServer.store is set only when st is the in-memory one.
func newDevServerOn(tb testing.TB, st store.Store, opts ...devOption) *devServer {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	ring, err := token.NewEphemeralKeyRing(token.AlgEdDSA)
	if err != nil {
		tb.Fatal(err)
	}
	rev := token.NewRevocations(st, time.Now, nil)
	if err := rev.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, len(testClients))
	for i, c := range testClients {
		ids[i] = c.ID
	}
	rec, err := usage.New(usage.Options{Clients: ids, Clock: time.Now})
	if err != nil {
		tb.Fatal(err)
	}
	sessions, err := session.New(st, session.Options{Revocations: rev})
	if err != nil {
		tb.Fatal(err)
	}
	fs, err := user.ParseFile(configs.DevUsersYAML)
	if err != nil {
		tb.Fatal(err)
	}
	flags, err := featureflags.NewFlags(featureflags.State{Phase: featureflags.PhaseDual, RolloutSeed: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	o := testOptions{
		Logger: slog.New(slog.DiscardHandler),
		Store:  st, Sessions: sessions, Revoked: rev, Users: user.NewVerifier(fs, &user.VerifierOptions{Logger: slog.New(slog.DiscardHandler)}),
		Flags: flags, Usage: rec, Issued: rec, Clients: testClients, DefaultClient: "web",
		RateLimit: logins.RateLimit{PerAccount: 5, PerIP: 20, Window: 15 * time.Minute},
		Options: Options{
			Cookies:   CookieOptions{SessionName: "ts_session", AccessName: "ts_access", RefreshName: "ts_refresh"},
			BodyLimit: 64 << 10, CORSOrigins: []string{"http://localhost:8080"},
		},
	}
	tc := token.DefaultOptions
	for _, opt := range opts {
		opt(&o, &tc)
	}
	tokens, err := token.NewService(tc, ring, st, rev)
	if err != nil {
		tb.Fatal(err)
	}
	o.Tokens = tokens
	s, err := o.build(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	f, _ := o.Flags.(*featureflags.Flags)
	mem, _ := st.(*store.Memory)
	return &devServer{Server: s, opts: o, store: mem, usage: rec, tokens: tokens, flags: f}
}

// call is one request through app.Test.
type call struct {
	method  string
	path    string
	body    string
	ctype   string
	bearer  string
	cookies map[string]string
	header  map[string]string
}

type answer struct {
	status int
	header http.Header
	body   []byte
	cookie map[string]*http.Cookie
}

func (a *answer) json(tb testing.TB) map[string]any {
	tb.Helper()
	return httpcheck.Object(tb, a.body)
}

func (s *devServer) do(tb testing.TB, c call) *answer {
	tb.Helper()
	if c.method == "" {
		c.method = fiber.MethodGet
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r := httptest.NewRequest(c.method, c.path, body)
	if c.ctype != "" {
		r.Header.Set(fiber.HeaderContentType, c.ctype)
	}
	if c.bearer != "" {
		r.Header.Set(fiber.HeaderAuthorization, "Bearer "+c.bearer)
	}
	for k, v := range c.cookies {
		r.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	resp, err := s.App.Test(r, 10_000)
	if err != nil {
		tb.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := &answer{status: resp.StatusCode, header: resp.Header, body: b, cookie: map[string]*http.Cookie{}}
	for _, ck := range resp.Cookies() {
		a.cookie[ck.Name] = ck
	}
	return a
}

// loginJSON logs in with a JSON body and fails the test unless it answers 200.
func (s *devServer) loginJSON(tb testing.TB, email, password, client string) *answer {
	tb.Helper()
	b, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": client})
	a := s.do(tb, call{method: "POST", path: "/auth/login", body: string(b), ctype: fiber.MIMEApplicationJSON})
	if a.status != 200 {
		tb.Fatalf("login %s/%s: %d %s", email, client, a.status, a.body)
	}
	return a
}

// expectProblem asserts an RFC 9457 answer with status and code.
func expectProblem(tb testing.TB, a *answer, status int, code auth.Code) {
	tb.Helper()
	httpcheck.CompleteProblem(tb, httpcheck.Answer{Status: a.status, Header: a.header, Body: a.body}, status, code)
}
