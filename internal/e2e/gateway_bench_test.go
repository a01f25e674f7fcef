package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// benchConcurrency is the number of client connections of the load generator.
const benchConcurrency = 16

// BenchmarkGateway measures requests per second on 127.0.0.1, in one run:
// nginx serving the app directly (no authentication: the baseline), nginx
// with the documented auth_request configuration asking tokenshift (and, as
// the mechanism's own ceiling, asking a check that answers 200 at once), and
// tokenshift's own reverse proxy, for each credential scheme. Every request
// must answer 200. Bound it with -benchtime, e.g.
//
//	CI=true go test ./internal/e2e -run '^$' -bench BenchmarkGateway -benchtime 3000x
//
// Everything (load generator, nginx, tokenshift, app) shares the machine's
// cores, so compare the ratios, not the absolute figures.
func BenchmarkGateway(b *testing.B) {
	nginxBinary(b)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from the legacy app")
	}))
	b.Cleanup(app.Close)

	cfg := filepath.Join(b.TempDir(), "tokenshift.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("proxy:\n  routes:\n    - {prefix: /app, upstream: %q, auth: required}\n", app.URL)), 0o600); err != nil {
		b.Fatal(err)
	}
	ts := start(b, "TOKENSHIFT_CONFIG="+cfg, "TOKENSHIFT_RATELIMIT_PER_IP=1000")

	authPort, directPort, noopPort := redistest.FreePort(b), redistest.FreePort(b), redistest.FreePort(b)
	// direct: nginx serves the app with no authentication (the baseline).
	// noop: the same auth_request mechanism asking the app itself, which
	// answers 200 at once: the ceiling of any forward-auth service.
	conf := authRequestConfig(b, ts.URL, app.URL, authPort) + fmt.Sprintf(`
server {
    listen 127.0.0.1:%d;
    location / {
        proxy_pass http://legacy_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
server {
    listen 127.0.0.1:%d;
    location = /_noop/verify {
        internal;
        proxy_pass http://legacy_app/ok;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
    }
    location / {
        auth_request /_noop/verify;
        proxy_pass http://legacy_app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
    }
}
`, directPort, noopPort)
	startNginx(b, conf, authPort, directPort, noopPort)
	viaNginx := fmt.Sprintf("http://127.0.0.1:%d", authPort)
	direct := fmt.Sprintf("http://127.0.0.1:%d", directPort)
	noop := fmt.Sprintf("http://127.0.0.1:%d", noopPort)

	web := ts.login(b, aliceEmail, alicePass, "web")
	spa := ts.login(b, aliceEmail, alicePass, "spa")
	access, _ := web.json(b)["access_token"].(string)
	creds := map[string]func(*http.Request){
		"session": func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "ts_session", Value: web.cookie("ts_session").Value})
		},
		"bearer": func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+access) },
		"jwt_cookie": func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "ts_access", Value: spa.cookie("ts_access").Value})
		},
	}
	schemes := []string{"session", "bearer", "jwt_cookie"}

	type result struct {
		name       string
		rps, p99ms float64
	}
	var results []result
	run := func(name, url string, cred func(*http.Request)) {
		var rps, p99 float64
		b.Run(name, func(b *testing.B) {
			rps, p99 = load(b, url, cred)
		})
		results = append(results, result{name, rps, p99})
	}
	run("nginx-direct", direct+"/app/hello", nil)
	run("nginx-auth_request/noop-check", noop+"/app/hello", nil)
	for _, s := range schemes {
		run("nginx-auth_request/"+s, viaNginx+"/app/hello", creds[s])
	}
	for _, s := range schemes {
		run("tokenshift-proxy/"+s, ts.URL+"/app/hello", creds[s])
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "\n%-32s %10s %8s %10s\n", "path", "req/s", "p99 ms", "vs direct")
	for _, r := range results {
		fmt.Fprintf(&sum, "%-32s %10.0f %8.2f %9.2fx\n", r.name, r.rps, r.p99ms, r.rps/results[0].rps)
	}
	b.Log(sum.String())
}

// load sends b.N GET requests to url from benchConcurrency keep-alive
// connections and reports req/s and the 99th percentile latency.
func load(b *testing.B, url string, cred func(*http.Request)) (rps, p99ms float64) {
	tr := &http.Transport{MaxIdleConnsPerHost: benchConcurrency, MaxConnsPerHost: benchConcurrency, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	for range benchConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) || failed.Load() != nil {
					return
				}
				r, _ := http.NewRequest("GET", url, nil)
				if cred != nil {
					cred(r)
				}
				t0 := time.Now()
				res, err := cl.Do(r)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != 200 {
					failed.Store(fmt.Sprintf("status %d", res.StatusCode))
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatalf("%s: %v", url, f)
	}
	rps = float64(b.N) / b.Elapsed().Seconds()
	slices.Sort(lat)
	p99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	b.ReportMetric(rps, "req/s")
	b.ReportMetric(p99ms, "p99_ms")
	b.ReportMetric(0, "ns/op") // the interesting figure is req/s; ns/op mixes in concurrency
	return rps, p99ms
}
