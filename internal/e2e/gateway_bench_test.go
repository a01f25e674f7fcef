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
// running auth_request against a location that answers 200 inside nginx
// (location = /noop { return 200; }: the ceiling of the mechanism itself,
// no second process and no network hop), nginx with the documented
// auth_request configuration asking tokenshift, and tokenshift's own reverse
// proxy, for each credential scheme. Every request must answer 200, and for
// the authenticated variants the app checks that X-Auth-User names the user
// who logged in: any request without it fails the benchmark. Run it with
// -count to get a spread; the summary logged after each round gives, over
// the rounds so far, the median req/s with its min-max and the median of the
// per-round ratios to the baselines:
//
//	CI=true go test ./internal/e2e -run '^$' -bench BenchmarkGateway -benchtime 3000x -count 5 -v
//
// Everything (load generator, nginx, tokenshift, app) shares the machine's
// cores, so compare the ratios, not the absolute figures.
func BenchmarkGateway(b *testing.B) {
	nginxBinary(b)
	var wantUser atomic.Value // alice's user id, once logged in
	wantUser.Store("")
	var missing atomic.Int64 // authenticated requests that reached the app without the identity
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/app/authenticated/") && r.Header.Get("X-Auth-User") != wantUser.Load().(string) {
			missing.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from the legacy app")
	}))
	b.Cleanup(app.Close)

	cfg := filepath.Join(b.TempDir(), "tokenshift.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("proxy:\n  routes:\n    - {prefix: /app, upstream: %q, auth: required}\n", app.URL)), 0o600); err != nil {
		b.Fatal(err)
	}
	ts := start(b, "TOKENSHIFT_CONFIG="+cfg, "TOKENSHIFT_RATELIMIT_PER_IP=1000", "TOKENSHIFT_SERVER_TRUSTED_PROXIES=127.0.0.1")

	authPort, directPort, noopPort := redistest.FreePort(b), redistest.FreePort(b), redistest.FreePort(b)
	// direct: nginx serves the app with no authentication (the baseline).
	// noop: the same auth_request mechanism, its check answered by nginx
	// itself: the ceiling of any forward-auth service.
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
    location = /noop {
        internal;
        return 200;
    }
    location / {
        auth_request /noop;
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
	userID, _ := web.json(b)["user_id"].(string)
	if userID == "" {
		b.Fatalf("login answered no user_id: %s", web.body)
	}
	wantUser.Store(userID)
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

	figures := &benchFigures{rps: map[string][]float64{}, p99: map[string][]float64{}}
	run := func(name, url string, cred func(*http.Request)) {
		missing.Store(0)
		b.Run(name, func(b *testing.B) {
			rps, p99 := load(b, url, cred)
			if b.N > 1 { // not the single-iteration probe the framework runs first
				figures.add(name, rps, p99)
			}
		})
		if n := missing.Load(); n > 0 {
			b.Fatalf("%s: %d requests reached the app without X-Auth-User %q", name, n, userID)
		}
	}
	run("nginx-direct", direct+"/app/hello", nil)
	run("nginx-auth_request/noop-check", noop+"/app/hello", nil)
	for _, s := range schemes {
		run("nginx-auth_request/"+s, viaNginx+"/app/authenticated/hello", creds[s])
	}
	for _, s := range schemes {
		run("tokenshift-proxy/"+s, ts.URL+"/app/authenticated/hello", creds[s])
	}
	b.Log(figures.summary("nginx-direct", "nginx-auth_request/noop-check"))
}

// benchFigures collects each variant's runs: -count repeats every
// sub-benchmark that many times in a row.
type benchFigures struct {
	order    []string
	rps, p99 map[string][]float64
}

func (f *benchFigures) add(name string, rps, p99 float64) {
	if _, seen := f.rps[name]; !seen {
		f.order = append(f.order, name)
	}
	f.rps[name] = append(f.rps[name], rps)
	f.p99[name] = append(f.p99[name], p99)
}

// summary gives per variant the median req/s with its min-max over the
// runs, the median p99, and the ratio of medians to each baseline with, in
// brackets, the widest ratio the runs allow (slowest run of the variant over
// the fastest of the baseline, and the reverse): a difference inside that
// bracket is noise.
func (f *benchFigures) summary(direct, noop string) string {
	var sum strings.Builder
	fmt.Fprintf(&sum, "\nmedian [min-max] over the runs of each variant\n%-32s %5s %22s %8s %18s %18s\n", "path", "runs", "req/s", "p99 ms", "vs direct", "vs noop check")
	ratio := func(name, base string) string {
		v, w := f.rps[name], f.rps[base]
		if len(v) == 0 || len(w) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f [%.2f-%.2f]", median(v)/median(w), slices.Min(v)/slices.Max(w), slices.Max(v)/slices.Min(w))
	}
	for _, name := range f.order {
		fmt.Fprintf(&sum, "%-32s %5d %22s %8.2f %18s %18s\n", name, len(f.rps[name]), spread(f.rps[name], "%.0f"), median(f.p99[name]),
			ratio(name, direct), ratio(name, noop))
	}
	return sum.String()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread formats the median and the min-max of xs.
func spread(xs []float64, verb string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(verb+" ["+verb+"-"+verb+"]", median(xs), slices.Min(xs), slices.Max(xs))
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
