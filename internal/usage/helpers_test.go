package usage

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

var testClients = []string{"web", "spa", "mobile"}

// base is a fixed instant in the middle of a minute.
var base = time.Date(2025, 3, 10, 12, 20, 30, 0, time.UTC)

// newClock is the shared settable clock; the name keeps the call sites.
var newClock = fakeclock.New

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRedisClient has short timeouts and no retries, so failure tests are fast
// and each Flush sends its pipeline exactly once.
func newRedisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  300 * time.Millisecond,
		ReadTimeout:  300 * time.Millisecond,
		WriteTimeout: 300 * time.Millisecond,
		MaxRetries:   -1,
		PoolSize:     4,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testOptions(clock *fakeclock.Clock, rdb redis.UniversalClient) Options {
	return Options{
		Clients:         testClients,
		Redis:           rdb,
		Clock:           clock.Now,
		Logger:          quietLogger(),
		SessionLifetime: 12 * time.Hour,
		MaxSessionShare: DefaultMaxSessionShare,
	}
}

func mustNew(t testing.TB, o Options) *Recorder {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func startRedis(t testing.TB) *redistest.Server { return redistest.Start(t) }

// proxy is a TCP relay to Redis that a test can cut (connections reset, new
// ones refused) or turn into a black hole for replies (requests still reach
// Redis and are executed, answers never come back: a flush that times out
// although Redis applied it).
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns []net.Conn
}

type proxyMode int

const (
	proxyPass proxyMode = iota
	proxyRefuse
	proxyBlackhole
)

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{t: t, ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.currentMode() == proxyRefuse {
			_ = c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() {
			_, _ = io.Copy(up, c)
			_ = up.Close()
		}()
		go p.replies(c, up)
	}
}

func (p *proxy) replies(client, up net.Conn) {
	defer client.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 && p.currentMode() != proxyBlackhole {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) currentMode() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *proxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Cut resets every connection and refuses new ones.
func (p *proxy) Cut() {
	p.setMode(proxyRefuse)
	p.closeAll()
}

// Blackhole forwards requests but swallows replies.
func (p *proxy) Blackhole() { p.setMode(proxyBlackhole) }

// Open restores normal relaying; connections used while black-holed are reset
// so no late reply can reach a new request.
func (p *proxy) Open() {
	if p.currentMode() == proxyBlackhole {
		p.closeAll()
	}
	p.setMode(proxyPass)
}

// event is one kind of traffic in a test mix.
type event struct {
	scheme  auth.Scheme
	client  string
	outcome auth.Outcome
}

// counts is the expected outcome of a mix, computed independently of the
// Recorder.
type counts struct {
	accepted map[auth.Scheme]int64
	byClient map[string]map[auth.Scheme]int64 // accepted
	rejected map[string]int64                 // per client label
	outcomes map[auth.Outcome]int64
}

func newCounts() *counts {
	return &counts{
		accepted: map[auth.Scheme]int64{},
		byClient: map[string]map[auth.Scheme]int64{},
		rejected: map[string]int64{},
		outcomes: map[auth.Outcome]int64{},
	}
}

// add records what the Recorder should count for one event (after labelling).
func (c *counts) add(e event, n int64) {
	client := e.client
	switch {
	case client == "" || client == auth.ClientUnknown:
		client = auth.ClientUnknown
	case client != "web" && client != "spa" && client != "mobile":
		client = auth.ClientOther
	}
	c.outcomes[e.outcome] += n
	if e.outcome != auth.OutcomeAccepted {
		c.rejected[client] += n
	}
	if e.outcome == auth.OutcomeAccepted {
		c.accepted[e.scheme] += n
		if c.byClient[client] == nil {
			c.byClient[client] = map[auth.Scheme]int64{}
		}
		c.byClient[client][e.scheme] += n
	}
}

func (c *counts) merge(o *counts) {
	for s, n := range o.accepted {
		c.accepted[s] += n
	}
	for cl, m := range o.byClient {
		if c.byClient[cl] == nil {
			c.byClient[cl] = map[auth.Scheme]int64{}
		}
		for s, n := range m {
			c.byClient[cl][s] += n
		}
	}
	for o2, n := range o.outcomes {
		c.outcomes[o2] += n
	}
	for cl, n := range o.rejected {
		c.rejected[cl] += n
	}
}

// checkReport compares the count figures of a report with the expectation.
func checkReport(t *testing.T, name string, rep *Report, want *counts) {
	t.Helper()
	var total int64
	for _, n := range want.accepted {
		total += n
	}
	if rep.Requests != total {
		t.Errorf("%s: requests = %d, want %d", name, rep.Requests, total)
	}
	for _, s := range auth.Schemes {
		got := rep.Schemes[s.String()]
		if got.Requests != want.accepted[s] {
			t.Errorf("%s: scheme %s requests = %d, want %d", name, s, got.Requests, want.accepted[s])
		}
		if wantShare := ratio(want.accepted[s], total); got.Share != wantShare {
			t.Errorf("%s: scheme %s share = %v, want %v", name, s, got.Share, wantShare)
		}
	}
	for o := range auth.NumOutcomes {
		if got := rep.Outcomes[o.String()]; got != want.outcomes[o] {
			t.Errorf("%s: outcome %s = %d, want %d", name, o, got, want.outcomes[o])
		}
	}
	seen := map[string]bool{}
	for _, cu := range rep.Clients {
		seen[cu.ClientID] = true
		if cu.Rejected != want.rejected[cu.ClientID] {
			t.Errorf("%s: client %s rejected = %d, want %d", name, cu.ClientID, cu.Rejected, want.rejected[cu.ClientID])
		}
		for _, s := range auth.Schemes {
			if got, w := cu.Schemes[s.String()].Requests, want.byClient[cu.ClientID][s]; got != w {
				t.Errorf("%s: client %s scheme %s requests = %d, want %d", name, cu.ClientID, s, got, w)
			}
		}
	}
	for cl, m := range want.byClient {
		for _, n := range m {
			if n > 0 && !seen[cl] {
				t.Errorf("%s: client %s missing from report", name, cl)
			}
		}
	}
	for cl, n := range want.rejected {
		if n > 0 && !seen[cl] && (rep.ClientID == "" || rep.ClientID == cl) {
			t.Errorf("%s: client %s (with %d rejected) missing from report", name, cl, n)
		}
	}
}

// gatherValue returns the value of the metric family name with the given
// labels (all must match), or an error if there is no such series.
func gatherValue(g prometheus.Gatherer, name string, labels map[string]string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), nil
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), nil
			}
		}
	}
	return 0, errors.New("no such series: " + name)
}
