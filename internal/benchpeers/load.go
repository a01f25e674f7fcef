package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type wrkResult struct {
	rps      float64
	requests int
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkTotal    = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErrs = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs `wrk -t1 -cN -dD` against t (closed loop: each connection sends
// its next request when the previous one is answered). Any non-2xx answer
// or socket error fails it: the figure would not be of authenticated
// requests.
func wrk(ctx context.Context, t *target, conns int, d time.Duration) (wrkResult, error) {
	args := []string{"-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "--timeout", "5s"}
	for k, vs := range t.header {
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	args = append(args, t.url)
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	m := wrkRPS.FindSubmatch(out)
	n := wrkTotal.FindSubmatch(out)
	if m == nil || n == nil {
		return wrkResult{}, fmt.Errorf("unreadable wrk output:\n%s", out)
	}
	var r wrkResult
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.requests, _ = strconv.Atoi(string(n[1]))
	if r.requests == 0 {
		return r, fmt.Errorf("%w:\n%s", errNoRequests, out)
	}
	if bad := wrkNon2xx.FindSubmatch(out); bad != nil {
		return r, fmt.Errorf("%w: %s of %d answers were not 2xx:\n%s", errBadStack, bad[1], r.requests, out)
	}
	if se := wrkSockErrs.FindSubmatch(out); se != nil {
		return r, fmt.Errorf("socket errors:\n%s", out)
	}
	return r, nil
}

type latency struct {
	p50, p99 time.Duration
}

// openLoop sends rate requests per second for d, each due at a fixed time
// whether or not earlier ones were answered, and times each from when it was
// due (so a stall counts against every request it delays, unlike a closed
// loop that stops sending while it waits). Every answer must pass t.check's
// status test.
func openLoop(ctx context.Context, t *target, rate int, d time.Duration) (latency, error) {
	const workers = 64
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	n := int(float64(rate) * d.Seconds())
	due := make(chan time.Time, n)
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failMu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for at := range due {
				req, _ := http.NewRequestWithContext(ctx, "GET", t.url, nil)
				for k, v := range t.header {
					req.Header[k] = v
				}
				res, err := cl.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode/100 != 2 {
						err = fmt.Errorf("%w: status %d", errBadStack, res.StatusCode)
					}
				}
				if err != nil {
					failMu.Lock()
					if failed == nil {
						failed = err
					}
					failMu.Unlock()
				}
				lat[next.Add(1)-1] = time.Since(at)
			}
		})
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
	}
	close(due)
	wg.Wait()
	if failed != nil {
		return latency{}, failed
	}
	if err := ctx.Err(); err != nil {
		return latency{}, err
	}
	s := lat[:next.Load()]
	if len(s) == 0 {
		return latency{}, errNoRequests
	}
	slices.Sort(s)
	return latency{p50: s[len(s)/2], p99: s[(len(s)*99)/100]}, nil
}
