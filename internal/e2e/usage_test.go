package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/usage"
)

// wantFromPlan is what a healthy cluster counts for plan sent to n instances,
// worked out from the plan alone.
func wantFromPlan(plan map[*cred]int, n int) map[event]int64 {
	want := map[event]int64{}
	for c, k := range plan {
		e := event{c.scheme, c.client, "accepted"}
		switch {
		case c.scheme == "none":
			e = event{"none", "unknown", "missing"}
		case c.client == "":
			e = event{c.scheme, "unknown", "invalid"}
		}
		want[e] += int64(k * n)
	}
	return want
}

// Three real instances on one real Redis; every scheme from every client and
// invalid requests, in parallel; after one flush interval the report of each
// instance equals the mix exactly.
func TestUsageExactAcrossThreeInstances(t *testing.T) {
	t.Parallel()
	const interval = 300 * time.Millisecond
	c := startCluster(t, 3, "TOKENSHIFT_USAGE_FLUSH_INTERVAL="+interval.String())
	cr := usageCreds(t, c.ins[0])
	token := opsToken(t, c.ins[1])
	plan := map[*cred]int{
		&cr.webSession: 12, &cr.webBearer: 5, &cr.spaCookie: 9, &cr.mobileBearer: 14,
		&cr.badBearer: 3, &cr.forgedSession: 2, &cr.none: 4,
	}
	tl := traffic(t, c.ins, plan, 0, healthy, nil)
	ended := time.Now()
	want := wantFromPlan(plan, len(c.ins))
	if got := tl.snapshot(); !maps.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}

	time.Sleep(interval + 100*time.Millisecond)
	for i, in := range c.ins {
		rep, took := waitExact(t, in, token, "window=1h", want, ended, 5*time.Second)
		t.Logf("instance %d: report equal to the mix %v after the traffic ended (flush interval %v)", i, took.Round(time.Millisecond), interval)
		// Distinct users: alice alone used sessions and JWT cookies; the
		// operator adds itself to bearer once its requests are flushed.
		if u := rep.Schemes["session"].Users; u == nil || *u != 1 {
			t.Errorf("instance %d: session users = %v, want 1", i, u)
		}
		if u := rep.Schemes["jwt_cookie"].Users; u == nil || *u != 1 {
			t.Errorf("instance %d: jwt_cookie users = %v, want 1", i, u)
		}
		if u := rep.Users; u == nil || *u < 1 || *u > 2 {
			t.Errorf("instance %d: users = %v, want alice and perhaps the operator", i, u)
		}
	}
}

// Redis is killed while requests flow and flushes are in flight, then
// restarted on the same port: empty, or from the snapshot it had saved. The
// totals are exact afterwards: what Redis had acknowledged is in the
// snapshot (or gone with an empty restart, which the report marks), the rest
// is delivered once, from the instances' backlogs.
func TestUsageExactThroughRedisOutage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		snapshot bool
	}{
		{name: "restarted empty"},
		{name: "restarted from its snapshot", snapshot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 2, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=300ms",
				"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=300ms",
				"TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=300ms")
			cr := usageCreds(t, c.ins[0])
			token := opsToken(t, c.ins[0])
			ctx := context.Background()
			direct := redis.NewClient(&redis.Options{Addr: c.redis.Addr(), MaxRetries: -1})
			t.Cleanup(func() { _ = direct.Close() })

			plan := map[*cred]int{&cr.webSession: 4, &cr.webBearer: 2, &cr.spaCookie: 4, &cr.mobileBearer: 4, &cr.badBearer: 1, &cr.none: 1}
			p1 := traffic(t, c.ins, plan, 0, healthy, nil)
			waitExact(t, c.ins[0], token, "window=1h", p1.snapshot(), time.Now(), 5*time.Second)

			// From here Redis executes no write: everything it acknowledged
			// is in what it holds now (and in the snapshot), and every flush
			// that follows is stuck in flight until Redis dies.
			if err := direct.Do(ctx, "CLIENT", "PAUSE", 30000, "WRITE").Err(); err != nil {
				t.Fatalf("CLIENT PAUSE: %v", err)
			}
			if tt.snapshot {
				if err := direct.Save(ctx).Err(); err != nil {
					t.Fatalf("SAVE: %v", err)
				}
			}
			p2plan := map[*cred]int{&cr.webSession: 6, &cr.webBearer: 6, &cr.spaCookie: 6, &cr.mobileBearer: 6, &cr.badBearer: 2, &cr.forgedSession: 2, &cr.none: 2}
			total := 0
			for _, n := range p2plan {
				total += n * len(c.ins)
			}
			var sent syncCounter
			killed := make(chan time.Time, 1)
			go func() {
				deadline := time.Now().Add(30 * time.Second)
				for sent.get() < total/2 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				c.redis.Stop()
				killed <- time.Now()
			}()
			p2 := traffic(t, c.ins, p2plan, 20*time.Millisecond, nil, &sent)
			t.Logf("Redis killed after %d of %d requests of the second phase", total/2, total)
			<-killed
			if tt.snapshot {
				c.redis.Restart()
			} else {
				c.redis.RestartEmpty()
			}
			for _, in := range c.ins {
				waitReady(t, in)
			}

			allowed := func(c cred, e event) bool {
				// A pooled connection that died with Redis can still fail
				// one session lookup; it is counted like any answer.
				if c.scheme == "session" && e == (event{"session", "unknown", "store_unavailable"}) {
					return true
				}
				// After an empty restart the sessions went with the data,
				// except that an instance still answers the ones in its near
				// cache until session.near_cache_ttl after their last read
				// (docs/security.md, "The session near cache").
				if !tt.snapshot && c.scheme == "session" {
					return e == event{"session", "unknown", "invalid"} || healthy(c, e)
				}
				return healthy(c, e)
			}
			p3 := traffic(t, c.ins, plan, 0, allowed, nil)
			ended := time.Now()
			want := newTally()
			if tt.snapshot {
				want.merge(p1)
			}
			want.merge(p2)
			want.merge(p3)
			t.Logf("outage phase answers: %v", p2.snapshot())
			for i, in := range c.ins {
				rep, took := waitExact(t, in, token, "window=1h", want.snapshot(), ended, 10*time.Second)
				t.Logf("instance %d: exact %v after the traffic ended", i, took.Round(time.Millisecond))
				if lost := rep.DataLostAt != nil; lost == tt.snapshot {
					t.Errorf("instance %d: data_lost_at = %v; a loss must be reported exactly when Redis came back empty", i, rep.DataLostAt)
				}
			}
		})
	}
}

// waitReady waits until the instance reaches Redis again (GET /readyz is not
// authenticated, so it is not counted).
func waitReady(t *testing.T, in *instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for in.do(t, req{path: "/readyz"}).status != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready 10s after Redis restarted", in.URL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An instance stopped with SIGTERM delivers its last deltas: with a flush
// interval of a minute only the shutdown flush can have sent them. When Redis
// stalls during the shutdown, the flush keeps trying for what is left of
// server.shutdown_timeout, and the process still exits within it.
func TestUsageShutdownFlushDeliversLastDeltas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// stall: Redis refuses writes for this long from just before SIGTERM.
		stall time.Duration
	}{
		{name: "Redis up"},
		{name: "Redis stalls during the shutdown", stall: 2500 * time.Millisecond},
	}
	const budget = 6 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 2, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=1m", "TOKENSHIFT_SERVER_SHUTDOWN_TIMEOUT="+budget.String())
			a, b := c.ins[0], c.ins[1]
			cr := usageCreds(t, a)
			token := opsToken(t, b)
			plan := map[*cred]int{&cr.webSession: 7, &cr.webBearer: 3, &cr.spaCookie: 5, &cr.mobileBearer: 6, &cr.badBearer: 2, &cr.none: 1}
			tl := traffic(t, []*instance{a}, plan, 0, healthy, nil)

			if diff := mismatches(readReport(t, b, token, "window=1h"), nil); len(diff) != 0 {
				t.Fatalf("traffic reached Redis before the shutdown, so this test cannot tell the shutdown flush from a periodic one:\n  %s", strings.Join(diff, "\n  "))
			}
			if tt.stall > 0 {
				direct := redis.NewClient(&redis.Options{Addr: c.redis.Addr()})
				t.Cleanup(func() { _ = direct.Close() })
				if err := direct.Do(context.Background(), "CLIENT", "PAUSE", tt.stall.Milliseconds(), "WRITE").Err(); err != nil {
					t.Fatalf("CLIENT PAUSE: %v", err)
				}
			}
			began := time.Now()
			a.stop()
			took := time.Since(began)
			t.Logf("instance stopped %v after SIGTERM (shutdown_timeout %v)", took.Round(time.Millisecond), budget)
			if took > budget+2*time.Second {
				t.Errorf("shutdown took %v, beyond server.shutdown_timeout %v", took, budget)
			}
			if strings.Contains(a.logs.String(), "final flush failed") {
				t.Errorf("the final flush failed:\n%s", a.logs.String())
			}
			waitExact(t, b, token, "window=1h", tl.snapshot(), time.Now(), 2*time.Second)
		})
	}
}

// The readiness verdict over HTTP, from real traffic: below the threshold,
// above it, and a window shorter than the session lifetime.
func TestUsageReadinessVerdict(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=300ms",
		"TOKENSHIFT_SESSION_ABSOLUTE_TIMEOUT=2m", "TOKENSHIFT_SESSION_IDLE_TIMEOUT=1m",
		"TOKENSHIFT_USAGE_MAX_SESSION_SHARE=0.2")
	in := c.ins[0]
	cr := usageCreds(t, in)
	token := opsToken(t, in)
	// Pretend aggregation has run for an hour, so a 5m window is fully
	// observed (a fresh deployment is not ready by design).
	direct := redis.NewClient(&redis.Options{Addr: c.redis.Addr()})
	t.Cleanup(func() { _ = direct.Close() })
	if err := direct.Set(context.Background(), "{tokenshift:usage}:since", time.Now().Add(-time.Hour).Unix(), 0).Err(); err != nil {
		t.Fatal(err)
	}

	tl := traffic(t, []*instance{in}, map[*cred]int{&cr.mobileBearer: 50, &cr.webSession: 10}, 0, healthy, nil)
	rep, _ := waitExact(t, in, token, "window=5m", tl.snapshot(), time.Now(), 5*time.Second)
	ops := clientRow(rep, opsClientID).Requests
	v := rep.Readiness
	t.Logf("below: %+v", v)
	if !v.Ready || len(v.Reasons) != 0 || v.SessionRequests != 10 || v.TotalRequests != 60+ops ||
		v.Threshold != 0.2 || !v.WindowCoversSessionLifetime || !v.WindowObserved || v.SessionLifetime != "2m" {
		t.Errorf("10 of %d accepted requests with a session, threshold 20%%: verdict %+v, want ready", 60+ops, v)
	}
	if len(v.ClientsUsingSessions) != 1 || v.ClientsUsingSessions[0].ClientID != "web" || v.ClientsUsingSessions[0].Requests != 10 || v.ClientsUsingSessions[0].LastSeen == nil {
		t.Errorf("clients using sessions = %+v, want web with 10 and a last use", v.ClientsUsingSessions)
	}
	if web := clientRow(rep, "web").Readiness; web.Ready || !hasReason(web.Reasons, "above the threshold") || web.SessionShare != 1 {
		t.Errorf("web (sessions only): verdict %+v, want not ready, above the threshold", web)
	}
	if mobile := clientRow(rep, "mobile").Readiness; !mobile.Ready {
		t.Errorf("mobile (tokens only): verdict %+v, want ready", mobile)
	}

	short := readReport(t, in, token, "window=1m").Readiness
	if short.Ready || short.WindowCoversSessionLifetime || !hasReason(short.Reasons, "shorter than the longest session lifetime") {
		t.Errorf("1m window, 2m sessions: verdict %+v, want not ready because the window is too short", short)
	}

	tl.merge(traffic(t, []*instance{in}, map[*cred]int{&cr.webSession: 20}, 0, healthy, nil))
	rep, _ = waitExact(t, in, token, "window=5m", tl.snapshot(), time.Now(), 5*time.Second)
	ops = clientRow(rep, opsClientID).Requests
	v = rep.Readiness
	t.Logf("above: %+v", v)
	if v.Ready || !hasReason(v.Reasons, "above the threshold") || v.SessionRequests != 30 || v.TotalRequests != 80+ops {
		t.Errorf("30 of %d accepted requests with a session, threshold 20%%: verdict %+v, want not ready", 80+ops, v)
	}
}

func clientRow(rep *usage.Report, id string) usage.ClientUsage {
	for _, cu := range rep.Clients {
		if cu.ClientID == id {
			return cu
		}
	}
	return usage.ClientUsage{}
}

func hasReason(reasons []string, part string) bool {
	for _, r := range reasons {
		if strings.Contains(r, part) {
			return true
		}
	}
	return false
}

// Admin endpoints: anonymous 401, a user without the role 403, the operator
// 200, each logged with who asked; the refused requests are counted too
// (missing credential, accepted bearer).
func TestUsageAdminAccess(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_CONFIG="+usageConfig(t), "TOKENSHIFT_LOG_LEVEL=info")
	alice := in.login(t, aliceEmail, alicePass, "web").json(t)
	aliceToken, aliceID := alice["access_token"].(string), alice["user_id"].(string)
	token := opsToken(t, in)

	expectProblem(t, in.do(t, req{path: "/admin/usage?window=1h"}), 401, "unauthenticated")
	expectProblem(t, in.do(t, req{path: "/admin/usage?window=1h", bearer: aliceToken}), 403, "forbidden")
	for _, client := range []string{"", "web", "other", "unknown"} {
		q := "window=1h"
		if client != "" {
			q += "&client=" + client
		}
		if r := in.do(t, req{path: "/admin/usage?" + q, bearer: token}); r.status != 200 {
			t.Errorf("operator GET /admin/usage?%s: %d %s", q, r.status, r.body)
		}
	}
	expectProblem(t, in.do(t, req{path: "/admin/usage?window=1h&client=evil", bearer: token}), 400, "invalid_request")

	logs := in.logs.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`msg="admin request".* email=ops@example.com .*path=/admin/usage query="window=1h&client=unknown"`),
		regexp.MustCompile(`msg="admin access refused" user_id=` + regexp.QuoteMeta(aliceID) + ` client_id=web method=GET path=/admin/usage`),
	} {
		if !want.MatchString(logs) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	// The anonymous request is counted as missing, alice's as an accepted
	// web bearer request, and nothing else happened.
	waitExact(t, in, token, "window=1h", map[event]int64{
		{"none", "unknown", "missing"}: 1,
		{"bearer", "web", "accepted"}:  1,
	}, time.Now(), 5*time.Second)
}

// Forged client ids and labels create no metric series; the global phase is
// published.
func TestUsageMetricSeriesBounded(t *testing.T) {
	t.Parallel()
	in := start(t)
	const clients, schemes, outcomes, loginOutcomes = 3 + 2, 4, 8, 7
	before := scrape(t, in)
	if n := before.count("tokenshift_auth_requests_total"); n != clients*schemes*outcomes {
		t.Fatalf("tokenshift_auth_requests_total has %d series, want %d", n, clients*schemes*outcomes)
	}
	if v, ok := before.value(`tokenshift_phase{client="*",phase="dual"}`); !ok || v != 1 {
		t.Errorf(`tokenshift_phase{client="*",phase="dual"} = %v (present %v), want 1`, v, ok)
	}
	if v, ok := before.value(`tokenshift_phase{client="*",phase="legacy"}`); !ok || v != 0 {
		t.Errorf(`tokenshift_phase{client="*",phase="legacy"} = %v (present %v), want 0`, v, ok)
	}

	access := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	for i := range 5 {
		r := in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass, "client_id": "forged-" + strconv.Itoa(i)}})
		expectProblem(t, r, 400, "unknown_client")
	}
	for i := range 10 {
		forged := map[string]string{"X-Client-Id": "forged-" + strconv.Itoa(i), "X-Tokenshift-Client": "unknown"}
		in.do(t, req{path: "/auth/me", bearer: "forged." + strconv.Itoa(i), header: forged})
		in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_session", Value: "client=forged-" + strconv.Itoa(i)}}, header: forged})
		if r := in.do(t, req{path: "/auth/me?client_id=forged", bearer: access, header: forged}); r.status != 200 || r.json(t)["client_id"] != "mobile" {
			t.Fatalf("a header changed the client: %d %s", r.status, r.body)
		}
	}

	after := scrape(t, in)
	for name, want := range map[string]int{"tokenshift_auth_requests_total": clients * schemes * outcomes, "tokenshift_logins_total": clients * loginOutcomes} {
		if b, a := before.count(name), after.count(name); b != want || a != want {
			t.Errorf("%s: %d series before, %d after forged input; want %d", name, b, a, want)
		}
	}
	if b, a := before.count("tokenshift_phase"), after.count("tokenshift_phase"); a != b {
		t.Errorf("tokenshift_phase: %d series before, %d after", b, a)
	}
	allowed := map[string]bool{"web": true, "spa": true, "mobile": true, "other": true, "unknown": true, "*": true}
	for series := range after {
		if m := clientLabel.FindStringSubmatch(series); m != nil && !allowed[m[1]] {
			t.Errorf("series with client label %q: %s", m[1], series)
		}
	}
	for series, want := range map[string]float64{
		`tokenshift_logins_total{client="other",outcome="unknown_client"}`:                              5,
		`tokenshift_auth_requests_total{client="unknown",outcome="invalid",scheme="bearer",source=""}`:  10,
		`tokenshift_auth_requests_total{client="unknown",outcome="invalid",scheme="session",source=""}`: 10,
		`tokenshift_auth_requests_total{client="mobile",outcome="accepted",scheme="bearer",source=""}`:  10,
		`tokenshift_auth_requests_total{client="other",outcome="accepted",scheme="bearer",source=""}`:   0,
	} {
		if v, ok := after.value(series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

var clientLabel = regexp.MustCompile(`client="([^"]*)"`)

// metricsText maps each sample line's series (name and labels) to its value.
type metricsText map[string]float64

func scrape(t *testing.T, in *instance) metricsText {
	t.Helper()
	r := in.do(t, req{path: "/metrics"})
	if r.status != 200 {
		t.Fatalf("GET /metrics: %d", r.status)
	}
	out := metricsText{}
	sc := bufio.NewScanner(strings.NewReader(string(r.body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func (m metricsText) count(name string) int {
	n := 0
	for series := range m {
		if strings.HasPrefix(series, name+"{") || series == name {
			n++
		}
	}
	return n
}

func (m metricsText) value(series string) (float64, bool) {
	v, ok := m[series]
	return v, ok
}

// The real `tokenshift usage` command against a real instance: the table
// carries the figures, and each run logs out the login it made, so repeated
// runs leave no sessions behind.
func TestUsageCLI(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_CONFIG="+usageConfig(t))
	cr := usageCreds(t, in)
	ops := in.login(t, opsEmail, opsPass, opsClientID).json(t)
	token, opsID := ops["access_token"].(string), ops["user_id"].(string)
	tl := traffic(t, []*instance{in}, map[*cred]int{&cr.webSession: 3, &cr.mobileBearer: 4, &cr.none: 2}, 0, healthy, nil)
	waitExact(t, in, token, "window=1h", tl.snapshot(), time.Now(), 5*time.Second)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"usage", "--server", in.URL, "--email", opsEmail, "--login-client", opsClientID, "--window", "1h"}, args...)...)
		cmd.Env = append(os.Environ(), "TOKENSHIFT_ADMIN_PASSWORD="+opsPass)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tokenshift usage %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for range 3 {
		run()
	}
	out := run("--client", "web")
	for _, want := range []string{
		"Usage over 1h, client web",
		"distinct users n/a",
		"Readiness (client web): NOT READY",
		// The command's own requests are on ops-cli, not on web.
		"  - session share 100.00% (3 of 3 accepted requests) is above the threshold 1.00%",
		"  - the window (1h) is shorter than the longest session lifetime (12h)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("`tokenshift usage --client web` lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "longest session lifetime"); n != 1 {
		t.Errorf("`tokenshift usage --client web` states the window reason %d times, want once:\n%s", n, out)
	}
	all := run()
	if !regexp.MustCompile(`Rejected by reason: .*missing=2`).MatchString(all) {
		t.Errorf("`tokenshift usage` lacks the rejections by reason:\n%s", all)
	}

	r := in.do(t, req{path: "/admin/users/" + opsID + "/sessions", bearer: token})
	if r.status != 200 {
		t.Fatalf("list the operator's logins: %d %s", r.status, r.body)
	}
	var list struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 1 {
		t.Errorf("the operator has %d live logins after 5 CLI runs, want 1 (the test's own): %s", len(list.Sessions), r.body)
	}
}
