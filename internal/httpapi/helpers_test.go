package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/httpcheck"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/usage"
	"github.com/tokenshift/tokenshift/internal/user"
)

// fakeUsers is an Authenticator above the interface: it counts the password
// checks that reach it, which is what the rate limiter must bound.
type fakeUsers struct {
	calls atomic.Int64
	// delay holds every check so concurrent attempts overlap.
	delay time.Duration
	down  atomic.Bool
}

var testUsers = map[string]struct {
	pass string
	u    user.User
}{
	"alice@example.com": {"alice-pass", user.User{ID: "u-alice", Email: "alice@example.com", Roles: []string{"user"}}},
	"ops@example.com":   {"ops-pass", user.User{ID: "u-ops", Email: "ops@example.com", Roles: []string{"admin"}}},
}

func (f *fakeUsers) Verify(_ context.Context, login, password string) (*user.User, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	if f.down.Load() {
		return nil, auth.ErrUnavailable
	}
	e, ok := testUsers[strings.ToLower(login)]
	if !ok || e.pass != password {
		return nil, user.ErrInvalidCredentials
	}
	u := e.u
	return &u, nil
}

type testServer struct {
	*Server
	opts   testOptions
	st     *store.Memory
	users  *fakeUsers
	tokens *token.Service
	sess   *session.Manager
}

// testOptions are a test server's options: the server's own, and the
// dependencies of the logins service it calls, which tests replace (the
// fields here shadow the Options fields of the same name and are copied
// into both).
type testOptions struct {
	Options
	Logger            *slog.Logger
	Store             store.Store
	Flags             authn.Decider
	Usage             UsageRecorder
	Clock             func() time.Time
	Sessions          *session.Manager
	Tokens            *token.Service
	Revoked           *token.Revocations
	Users             logins.Authenticator
	Accounts          logins.AccountManager
	Clients           []auth.Client
	DefaultClient     string
	RateLimit         logins.RateLimit
	MaxCredentialLife time.Duration
	// Issued counts issued credentials; the usage recorder.
	Issued logins.IssueCounter
	// Legacy are the legacy sources the logins service ends and exchanges.
	Legacy logins.LegacySources
}

// build makes the logins service and the server over it; o.Options is left
// as New got it.
func (o *testOptions) build(ctx context.Context) (*Server, error) {
	l, err := logins.New(logins.Options{
		Logger: o.Logger, Store: o.Store, Sessions: o.Sessions, Tokens: o.Tokens, Revoked: o.Revoked,
		Users: o.Users, Accounts: o.Accounts, Flags: o.Flags, Usage: o.Issued,
		Clients: o.Clients, DefaultClient: o.DefaultClient, RateLimit: o.RateLimit,
		MaxCredentialLife: o.MaxCredentialLife, Clock: o.Clock, Legacy: o.Legacy,
	})
	if err != nil {
		return nil, err
	}
	o.Options.Logger, o.Options.Store, o.Options.Flags, o.Options.Usage, o.Options.Clock = o.Logger, o.Store, o.Flags, o.Usage, o.Clock
	o.Options.Logins = l
	return New(ctx, o.Options)
}

// newTestServer builds the real Server over the in-memory store; opt edits
// the options before New.
func newTestServer(t testing.TB, opt func(*testOptions)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := store.NewMemory(time.Now)
	t.Cleanup(func() { _ = st.Close() })
	rev := token.NewRevocations(st, time.Now, nil)
	if err := rev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewEphemeralKeyRing(token.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.NewService(token.Options{CacheBytes: 1 << 20, Clients: []string{"web", "spa", "mobile"}}, ring, st, rev)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.New(st, session.Options{IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, FamilyTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := usage.New(usage.Options{Clients: []string{"web", "spa", "mobile"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	users := &fakeUsers{}
	o := testOptions{
		Logger: slog.New(slog.DiscardHandler), Store: st, Sessions: sess, Tokens: tokens, Revoked: rev,
		Users: users, Usage: rec, Issued: rec,
		Clients: []auth.Client{
			{ID: "web", Kind: auth.ClientKind("web"), TokenTransport: auth.TransportBody},
			{ID: "spa", Kind: auth.ClientKind("spa"), TokenTransport: auth.TransportCookie},
			{ID: "mobile", Kind: auth.ClientKind("mobile"), TokenTransport: auth.TransportBody},
		},
		DefaultClient: "web",
		RateLimit:     logins.RateLimit{PerAccount: 5, PerIP: 20, Window: time.Minute},
		Options: Options{
			Cookies:     CookieOptions{SessionName: "ts_session", AccessName: "ts_access", RefreshName: "ts_refresh"},
			CORSOrigins: []string{"http://tokenshift.test", "https://app.example.com"},
			BodyLimit:   64 << 10,
			ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		},
	}
	if opt != nil {
		opt(&o)
	}
	s, err := o.build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{Server: s, opts: o, st: st, users: users, tokens: tokens, sess: sess}
}

// treq describes one request to the test server.
type treq struct {
	method, path string
	json         any
	form         url.Values
	raw, ctype   string
	header       map[string]string
	cookies      []*http.Cookie
	peer         string // TCP peer address; default 192.0.2.10
}

type tresp struct {
	status  int
	header  http.Header
	body    []byte
	cookies []*http.Cookie
}

func (r *tresp) json(t testing.TB) map[string]any {
	t.Helper()
	return httpcheck.Object(t, r.body)
}

func (r *tresp) cookie(name string) *http.Cookie {
	for _, c := range r.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do runs one request through the app's handler with a chosen TCP peer (which
// app.Test cannot set), without a network.
func (ts *testServer) do(t testing.TB, r treq) *tresp {
	t.Helper()
	var body io.Reader = http.NoBody
	ctype := r.ctype
	switch {
	case r.json != nil:
		b, _ := json.Marshal(r.json)
		body, ctype = bytes.NewReader(b), "application/json"
	case r.form != nil:
		body, ctype = strings.NewReader(r.form.Encode()), "application/x-www-form-urlencoded"
	case r.raw != "":
		body = strings.NewReader(r.raw)
	}
	if r.method == "" {
		r.method = "GET"
	}
	hr, err := http.NewRequest(r.method, "http://tokenshift.test"+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return ts.serve(t, hr, r.peer)
}

func (ts *testServer) serve(t testing.TB, hr *http.Request, peer string) *tresp {
	t.Helper()
	return ts.serveWith(t, hr, peer, nil)
}

// serveWith is serve with p (when not nil) already in the request's
// principal slot, as authn's legacy adapter leaves it.
func (ts *testServer) serveWith(t testing.TB, hr *http.Request, peer string, p *auth.Principal) *tresp {
	t.Helper()
	var raw bytes.Buffer
	if err := hr.Write(&raw); err != nil {
		t.Fatal(err)
	}
	var fr fasthttp.Request
	if err := fr.Read(bufio.NewReader(&raw)); err != nil {
		t.Fatal(err)
	}
	if peer == "" {
		peer = "192.0.2.10"
	}
	var fctx fasthttp.RequestCtx
	fctx.Init(&fr, &net.TCPAddr{IP: net.ParseIP(peer), Port: 40000}, nil)
	if p != nil {
		c := ts.App.AcquireCtx(&fctx)
		authn.SetPrincipal(c, p) // Fiber keeps Locals on the fasthttp context
		ts.App.ReleaseCtx(c)
	}
	ts.App.Handler()(&fctx)
	var out bytes.Buffer
	if _, err := fctx.Response.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(&out), hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &tresp{status: res.StatusCode, header: res.Header, body: b, cookies: res.Cookies()}
}

func wantProblem(t testing.TB, r *tresp, status int, code string) map[string]any {
	t.Helper()
	return httpcheck.Problem(t, httpcheck.Answer{Status: r.status, Header: r.header, Body: r.body}, status, code)
}

// loginJSON logs in through the JSON API and fails the test otherwise.
func (ts *testServer) loginJSON(t testing.TB, email, pass, client string) *tresp {
	t.Helper()
	r := ts.do(t, treq{method: "POST", path: "/auth/login", json: map[string]string{"email": email, "password": pass, "client_id": client}})
	if r.status != 200 {
		t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	return r
}

// parallel runs n copies of fn at once and waits for them.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func isNotFound(err error) bool { return errors.Is(err, auth.ErrNotFound) }
