package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// unavailable ends t when a tool is missing: a skip on a developer's
// machine, a failure under CI=true (.ci/run installs every tool). It is
// internal/testutil/citest's rule, kept here because this is a module of its
// own and cannot import the product's internal packages.
func unavailable(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not on PATH (under CI=true nothing may skip: .ci/run must install it)", tool)
			}
			t.Skipf("%s is not on PATH (skipped; set CI=true to make this a failure)", tool)
		}
	}
}

// TestSmoke runs the whole harness for one short round of every stack: each
// peer is built or installed, started, logged in, checked with and without
// its credential, and measured once. `make test` runs it; the first run
// pays the oauth2-proxy build and the npm install, later ones use the cache.
func TestSmoke(t *testing.T) {
	unavailable(t, "go", "wrk", "redis-server", "node", "npm")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var out, log bytes.Buffer
	start := time.Now()
	if err := run(ctx, []string{"-smoke"}, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Logf("smoke run in %s\n%s%s", time.Since(start).Round(time.Second), log.String(), out.String())
	for _, s := range allStacks() {
		row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(s.name) + ` \| [1-9][0-9]* \| [0-9.]+ `)
		if !row.MatchString(out.String()) {
			t.Errorf("no figure for %q in\n%s", s.name, out.String())
		}
	}
	// The three-way comparison of docs/benchmarks.md 'Legacy sessions':
	// named here, so a stack dropped from allStacks fails the smoke round.
	for _, name := range []string{"Express + express-session + connect-redis",
		"tokenshift session, redis, /auth/verify", "tokenshift legacy express, redis, /auth/verify"} {
		if !strings.Contains(out.String(), "| "+name+" | ") {
			t.Errorf("the smoke round has no %q row:\n%s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), "load average") {
		t.Errorf("the table does not give the load average:\n%s", out.String())
	}
}

// TestVerifyRefusesBrokenStacks: a stack that answers without a credential,
// or refuses its own, is rejected before any figure is taken.
func TestVerifyRefusesBrokenStacks(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"user_id":"u-alice","scheme":"session"}`))
	}))
	defer open.Close()
	closed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "sid=good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"user_id":"u-alice","scheme":"session"}`))
	}))
	defer closed.Close()
	tests := []struct {
		name    string
		url     string
		cookie  string
		wantErr bool
	}{
		{name: "answers without a credential", url: open.URL, cookie: "sid=good", wantErr: true},
		{name: "refuses its own credential", url: closed.URL, cookie: "sid=stale", wantErr: true},
		{name: "a working stack", url: closed.URL, cookie: "sid=good", wantErr: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &stack{name: tc.name, target: &target{url: tc.url, header: http.Header{"Cookie": {tc.cookie}},
				check: jsonUser(aliceID, "session"), anon: true}}
			err := s.verify(context.Background())
			if tc.wantErr != errors.Is(err, errBadStack) {
				t.Fatalf("verify = %v, want errBadStack: %v", err, tc.wantErr)
			}
		})
	}
}

// TestWrkFailsOnRefusals: a stack that starts refusing during a measurement
// (a session that expired, a store that went away) fails the run instead of
// reporting the rate of its 401s.
func TestWrkFailsOnRefusals(t *testing.T) {
	unavailable(t, "wrk")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	_, err := wrk(context.Background(), &target{url: srv.URL}, 4, time.Second)
	if !errors.Is(err, errBadStack) {
		t.Fatalf("wrk against a server answering 401 = %v, want errBadStack", err)
	}
	_, err = openLoop(context.Background(), &target{url: srv.URL}, 100, 200*time.Millisecond)
	if !errors.Is(err, errBadStack) {
		t.Fatalf("openLoop against a server answering 401 = %v, want errBadStack", err)
	}
}
