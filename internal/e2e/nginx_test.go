package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
)

// nginxBinary is Debian's nginx (.ci/run installs it). Without it the test
// is skipped, except under CI=true, where that is a failure.
func nginxBinary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	citest.Unavailable(t, "nginx not found (apt-get install nginx)")
	return ""
}

// docNginxConfig is the nginx auth_request configuration of
// docs/integrations.md, the block after its marker comment, so the
// documented configuration is the tested one.
func docNginxConfig(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations.md"))
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- nginx-auth-request: used verbatim by internal/e2e/gateway_test.go -->"
	doc := string(b)
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/integrations.md lost its marker %q", marker)
	}
	rest := doc[i+len(marker):]
	start := strings.Index(rest, "```nginx\n")
	end := strings.Index(rest[start+1:], "\n```")
	if start < 0 || end < 0 {
		t.Fatal("docs/integrations.md: no ```nginx block after the marker")
	}
	return rest[start+len("```nginx\n") : start+1+end]
}

// authRequestConfig is the documented configuration pointed at the test's
// tokenshift and app, listening on port.
func authRequestConfig(t testing.TB, tokenshift, app string, port int) string {
	t.Helper()
	conf := docNginxConfig(t)
	for old, repl := range map[string]string{
		"server 127.0.0.1:9091;": "server " + strings.TrimPrefix(tokenshift, "http://") + ";",
		"server 127.0.0.1:3000;": "server " + strings.TrimPrefix(app, "http://") + ";",
		"listen 80;":             fmt.Sprintf("listen 127.0.0.1:%d;", port),
	} {
		if strings.Count(conf, old) != 1 {
			t.Fatalf("the documented nginx configuration should hold %q exactly once", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	return conf
}

type nginxProc struct {
	cmd  *exec.Cmd
	done chan error
	dir  string
	out  *logbuf.Buffer
}

// startNginx runs nginx in the foreground (daemon off, master process on)
// with httpConf inside its http block, every path in a temporary prefix, and
// waits until each port accepts connections.
func startNginx(t testing.TB, httpConf string, ports ...int) *nginxProc {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.MkdirAll(filepath.Join(dir, "tmp", d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n" // workers would otherwise drop to nobody, who cannot read the temp prefix
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
master_process on;
%spid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
%[3]s
}
`, user, dir, httpConf)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &nginxProc{dir: dir, out: &logbuf.Buffer{}, done: make(chan error, 1)}
	n.cmd = exec.Command(bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(n.stop)
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		for {
			select {
			case err := <-n.done:
				t.Fatalf("nginx exited at start: %v\n%s\n%s\n--- config\n%s", err, n.out.String(), n.errorLog(), conf)
			default:
			}
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %d\n%s", port, n.errorLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n
}

func (n *nginxProc) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

func (n *nginxProc) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

// appRecorder is the "legacy app": a Go HTTP server on loopback that records
// every request it receives. /slow/... waits until the test ends.
type appRecorder struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []appRequest
	release chan struct{}
}

type appRequest struct {
	method, path string
	header       http.Header
	body         string
}

func newAppRecorder(t testing.TB) *appRecorder {
	t.Helper()
	a := &appRecorder{release: make(chan struct{})}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.reqs = append(a.reqs, appRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(b)})
		a.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/slow") {
			select {
			case <-a.release:
			case <-time.After(20 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-App", "legacy")
		fmt.Fprintf(w, "hello %s from the legacy app", r.Header.Get("X-Auth-Email"))
	}))
	t.Cleanup(a.Close)
	t.Cleanup(func() { close(a.release) }) // runs first: lets /slow handlers end before Close waits for them
	return a
}

func (a *appRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

func (a *appRecorder) last(t testing.TB) appRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		t.Fatal("the app received nothing")
	}
	return a.reqs[len(a.reqs)-1]
}
