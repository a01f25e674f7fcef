package legacy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
)

// legacyApp is a small legacy endpoint: GET /me answers for the cookie
// "JSESSIONID" it knows, counting calls.
type legacyApp struct {
	srv        *httptest.Server
	calls      atomic.Int64
	sessions   map[string]string // JSESSIONID -> JSON answer
	status     atomic.Int64      // forced status, 0: normal
	delay      atomic.Int64      // ns
	lastCookie atomic.Value
	// gate, when set, is called inside the handler before it answers.
	gate atomic.Pointer[func()]
}

func startLegacyApp(t *testing.T) *legacyApp {
	a := &legacyApp{sessions: map[string]string{
		"good":    `{"user":{"id":"u-1","email":"alice@example.com","roles":["user","admin"]}}`,
		"numeric": `{"user":{"id":77}}`,
		"noid":    `{"user":{}}`,
		"badjson": `{"user":`,
		"badrole": `{"user":{"id":"u-2","roles":[1]}}`,
		"huge":    `{"user":{"id":"u-3","pad":"` + strings.Repeat("x", MaxDataBytes) + `"}}`,
		"deep":    `{"user":{"id":"u-4"},"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`,
	}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.lastCookie.Store(r.Header.Get("Cookie"))
		if g := a.gate.Load(); g != nil {
			(*g)()
		}
		if d := a.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s := a.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		c, err := r.Cookie("JSESSIONID")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := a.sessions[c.Value]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func calloutOptions(a *legacyApp, clock *fakeclock.Clock) Options {
	return Options{Name: "spring", Kind: KindCallout, Client: "web", URL: a.srv.URL + "/me",
		ForwardCookies: []string{"JSESSIONID", "XSRF-TOKEN"}, Subject: "user.id", Email: "user.email", Roles: "user.roles",
		Timeout: 300 * time.Millisecond, Clock: clock.Now}
}

func TestCalloutLoad(t *testing.T) {
	a := startLegacyApp(t)
	clock := fakeclock.New(time.Now())
	src := mustSource(t, calloutOptions(a, clock))
	ctx := context.Background()
	tests := []struct {
		session string
		user    string
		email   string
		roles   []string
		wantErr error
	}{
		{session: "good", user: "u-1", email: "alice@example.com", roles: []string{"user", "admin"}},
		{session: "numeric", user: "77"},
		{session: "unknown", wantErr: ErrNotFound},
		{session: "noid", wantErr: ErrMalformed},
		{session: "badjson", wantErr: ErrMalformed},
		{session: "badrole", wantErr: ErrMalformed},
		{session: "huge", wantErr: ErrMalformed},
		{session: "deep", wantErr: ErrMalformed},
	}
	for _, tc := range tests {
		id, err := src.Parse(cookieJar(map[string]string{"JSESSIONID": tc.session, "other": "not forwarded"}))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		sess, err := src.Load(ctx, id)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: %v, want %v", tc.session, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.session, err)
		}
		if sess.UserID != tc.user || sess.Email != tc.email || strings.Join(sess.Roles, ",") != strings.Join(tc.roles, ",") ||
			!sess.ExpiresAt.Equal(clock.Now().Add(time.Second)) || sess.Source != "spring" {
			t.Errorf("%s: session = %+v", tc.session, sess)
		}
	}
	if c := a.lastCookie.Load().(string); strings.Contains(c, "other") {
		t.Errorf("forwarded a cookie not in forward_cookies: %q", c)
	}
	id, _ := src.Parse(cookieJar(map[string]string{"JSESSIONID": "good", "XSRF-TOKEN": "t"}))
	if id != "JSESSIONID=good; XSRF-TOKEN=t" {
		t.Errorf("id = %q", id)
	}
	for _, bad := range []string{"a;b", "a b", "a\x00", strings.Repeat("a", maxCalloutCookieBytes+1)} {
		if _, err := src.Parse(cookieJar(map[string]string{"JSESSIONID": bad})); !errors.Is(err, ErrForged) {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
	if _, err := src.Parse(cookieJar(nil)); !errors.Is(err, ErrNoCookie) {
		t.Errorf("no cookie: %v", err)
	}
	if err := src.End(ctx, id); !errors.Is(err, ErrEndUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("End: %v", err)
	}
}

func TestCalloutStatusAndTimeout(t *testing.T) {
	a := startLegacyApp(t)
	src := mustSource(t, calloutOptions(a, fakeclock.New(time.Now())))
	ctx := context.Background()
	for status, want := range map[int]error{401: ErrNotFound, 403: ErrNotFound, 404: ErrNotFound, 302: ErrNotFound,
		500: auth.ErrUnavailable, 502: auth.ErrUnavailable, 429: auth.ErrUnavailable, 204: auth.ErrUnavailable} {
		a.status.Store(int64(status))
		src.Forget("JSESSIONID=good")
		if _, err := src.Load(ctx, "JSESSIONID=good"); !errors.Is(err, want) {
			t.Errorf("status %d: %v, want %v", status, err, want)
		}
	}
	a.status.Store(0)
	a.delay.Store(int64(700 * time.Millisecond))
	start := time.Now()
	_, err := src.Load(ctx, "JSESSIONID=numeric")
	if !errors.Is(err, auth.ErrUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("slow app: %v after %v", err, time.Since(start))
	}
	if strings.Contains(err.Error(), "numeric") {
		t.Errorf("error quotes the cookie: %v", err)
	}
}

// The cache keeps an answer at most cache_ttl, and Forget / ForgetUser end
// it at once, so a revocation wins over it.
func TestCalloutCache(t *testing.T) {
	a := startLegacyApp(t)
	clock := fakeclock.New(time.Now())
	o := calloutOptions(a, clock)
	o.CacheTTL = 800 * time.Millisecond
	src := mustSource(t, o)
	ctx := context.Background()
	load := func() string {
		t.Helper()
		s, err := src.Load(ctx, "JSESSIONID=good")
		if err != nil {
			t.Fatal(err)
		}
		return s.UserID
	}
	load()
	clock.Advance(799 * time.Millisecond)
	load()
	if n := a.calls.Load(); n != 1 {
		t.Fatalf("%d callouts within the TTL, want 1", n)
	}
	clock.Advance(time.Millisecond)
	load()
	if n := a.calls.Load(); n != 2 {
		t.Fatalf("%d callouts after the TTL, want 2", n)
	}
	src.Forget("JSESSIONID=good")
	load()
	if n := a.calls.Load(); n != 3 {
		t.Fatalf("Forget did not drop the answer (%d callouts)", n)
	}
	src.ForgetUser("u-1")
	load()
	if n := a.calls.Load(); n != 4 {
		t.Fatalf("ForgetUser did not drop the answer (%d callouts)", n)
	}
	// A 401 is cached too (a flood of dead cookies costs one callout per TTL)...
	for range 3 {
		if _, err := src.Load(ctx, "JSESSIONID=unknown"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := a.calls.Load(); n != 5 {
		t.Fatalf("%d callouts for a cached 401, want 5", n)
	}
	// ...an outage is not.
	a.status.Store(500)
	for range 2 {
		_, _ = src.Load(ctx, "JSESSIONID=numeric")
	}
	if n := a.calls.Load(); n != 7 {
		t.Fatalf("%d callouts, want 7: errors must not be cached", n)
	}
	// A cached session handed out is a copy.
	a.status.Store(0)
	s1, _ := src.Load(ctx, "JSESSIONID=good")
	s1.Roles[0] = "changed"
	if s2, _ := src.Load(ctx, "JSESSIONID=good"); s2.Roles[0] != "user" {
		t.Fatal("cache shares its session with callers")
	}
}

// An answer fetched while Forget or ForgetUser runs is not cached: the
// revocation wins. The handler holds the answer until the revocation is
// done, so every trial has the race the same way round.
func TestCalloutForgetDuringFetch(t *testing.T) {
	a := startLegacyApp(t)
	src := mustSource(t, calloutOptions(a, fakeclock.New(time.Now())))
	for trial := range 40 {
		arrived, release := make(chan struct{}), make(chan struct{})
		gate := func() { arrived <- struct{}{}; <-release }
		a.gate.Store(&gate)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = src.Load(context.Background(), "JSESSIONID=good")
		}()
		<-arrived
		if trial%2 == 0 {
			src.ForgetUser("u-1")
		} else {
			src.Forget("JSESSIONID=good")
		}
		close(release)
		<-done
		a.gate.Store(nil)
		before := a.calls.Load()
		_, _ = src.Load(context.Background(), "JSESSIONID=good")
		if a.calls.Load() != before+1 {
			t.Fatalf("trial %d: the answer fetched across a revocation was cached", trial)
		}
		src.Forget("JSESSIONID=good")
	}
}
