// Package e2e drives the real tokenshift binary over loopback HTTP: the same
// process a user starts with `make run`, on the in-memory store and on a real
// redis-server started by the test.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/httpcheck"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenshift-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tokenshift")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/tokenshift")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tokenshift:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type instance struct {
	t    testing.TB
	URL  string
	env  []string
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	done chan error
}

// start runs `tokenshift serve` with env on a free port and waits for /livez.
func start(t testing.TB, env ...string) *instance {
	t.Helper()
	port := redistest.FreePort(t)
	in := &instance{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), env: append([]string{
		fmt.Sprintf("TOKENSHIFT_SERVER_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("TOKENSHIFT_SERVER_PUBLIC_URL=http://127.0.0.1:%d", port),
		"TOKENSHIFT_LOG_LEVEL=warn",
	}, env...)}
	in.run()
	t.Cleanup(in.kill)
	return in
}

func (in *instance) run() {
	t := in.t
	t.Helper()
	in.logs = &logbuf.Buffer{}
	in.cmd = exec.Command(binary, "serve")
	in.cmd.Env = append(os.Environ(), in.env...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.done = make(chan error, 1)
	go func() { in.done <- in.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-in.done:
			t.Fatalf("tokenshift exited at start: %v\n%s", err, in.logs.String())
		default:
		}
		resp, err := http.Get(in.URL + "/livez")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("tokenshift did not become live\n%s", in.logs.String())
}

// stop sends SIGTERM and waits for a clean exit.
func (in *instance) stop() {
	in.t.Helper()
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		if err != nil {
			in.t.Errorf("exit after SIGTERM: %v\n%s", err, in.logs.String())
		}
	case <-time.After(20 * time.Second):
		in.t.Errorf("no exit 20s after SIGTERM\n%s", in.logs.String())
		_ = in.cmd.Process.Kill()
	}
	in.cmd = nil
}

func (in *instance) restart() {
	in.stop()
	in.run()
}

func (in *instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		_ = in.cmd.Process.Kill()
		<-in.done
		in.cmd = nil
	}
}

// req is one HTTP request description.
type req struct {
	method  string
	path    string
	json    any
	form    url.Values
	raw     string
	ctype   string
	bearer  string
	cookies []*http.Cookie
	header  map[string]string
}

type resp struct {
	status  int
	header  http.Header
	body    []byte
	cookies []*http.Cookie
}

func (r *resp) json(t testing.TB) map[string]any {
	t.Helper()
	return httpcheck.Object(t, r.body)
}

func (r *resp) cookie(prefix string) *http.Cookie {
	for _, c := range r.cookies {
		if strings.HasPrefix(c.Name, prefix) || strings.HasSuffix(c.Name, prefix) {
			return c
		}
	}
	return nil
}

var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (in *instance) do(t testing.TB, r req) *resp {
	t.Helper()
	var body io.Reader
	ctype := r.ctype
	switch {
	case r.json != nil:
		b, _ := json.Marshal(r.json)
		body = bytes.NewReader(b)
		if ctype == "" {
			ctype = "application/json"
		}
	case r.form != nil:
		body = strings.NewReader(r.form.Encode())
		ctype = "application/x-www-form-urlencoded"
	case r.raw != "":
		body = strings.NewReader(r.raw)
	}
	if r.method == "" {
		r.method = "GET"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, r.method, in.URL+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	for _, c := range r.cookies {
		hr.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &resp{status: res.StatusCode, header: res.Header, body: b, cookies: res.Cookies()}
}

// expectProblem asserts an RFC 9457 answer with status and code.
func expectProblem(t *testing.T, r *resp, status int, code string) {
	t.Helper()
	httpcheck.CompleteProblem(t, httpcheck.Answer{Status: r.status, Header: r.header, Body: r.body}, status, code)
}

// login logs in as email through client and returns the answer.
func (in *instance) login(t testing.TB, email, password, clientID string) *resp {
	t.Helper()
	r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": email, "password": password, "client_id": clientID}})
	if r.status != 200 {
		t.Fatalf("login %s: %d %s\n%s", email, r.status, r.body, in.logs.String())
	}
	return r
}

// keysDir makes a signing key shared by several instances.
func keysDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(binary, "keys", "generate", "--dir", dir, "--kid", "k1").CombinedOutput()
	if err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	return dir
}
