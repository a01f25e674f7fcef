package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// opsClientID is a client registered only for the tests' operator: its admin
// requests are counted on a row of their own, which the checks read from the
// same report and set apart, so the traffic under test is compared exactly.
const opsClientID = "ops-cli"

// usageConfig writes a config file with the embedded default's three clients
// plus opsClientID (a YAML list replaces the default's).
func usageConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenshift.yaml")
	yaml := `clients:
  - {id: web, name: Legacy web app, kind: web, token_transport: body}
  - {id: spa, name: Single-page app, kind: spa, token_transport: cookie}
  - {id: mobile, name: Mobile app, kind: mobile, token_transport: body}
  - {id: ` + opsClientID + `, name: Operator CLI, kind: service, token_transport: body}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cluster is n instances sharing one real redis-server and one signing key.
type cluster struct {
	redis *redistest.Server
	ins   []*instance
}

func startCluster(t *testing.T, n int, env ...string) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t)}
	all := append([]string{
		"TOKENSHIFT_STORAGE_REDIS_URL=" + c.redis.URL(),
		"TOKENSHIFT_JWT_KEYS_DIR=" + keysDir(t),
		"TOKENSHIFT_CONFIG=" + usageConfig(t),
	}, env...)
	for range n {
		c.ins = append(c.ins, start(t, all...))
	}
	return c
}

// event is one counted authentication decision, in the report's words.
type event struct{ scheme, client, outcome string }

// cred is a credential the traffic presents, and what it is counted as when
// accepted.
type cred struct {
	name    string
	bearer  string
	cookies []*http.Cookie
	scheme  string // "none" for no credential
	client  string
}

// creds logs alice in with each client and prepares the invalid ones.
type creds struct {
	webSession, webBearer, spaCookie, mobileBearer cred
	badBearer, forgedSession, none                 cred
}

func (c *creds) all() []cred {
	return []cred{c.webSession, c.webBearer, c.spaCookie, c.mobileBearer, c.badBearer, c.forgedSession, c.none}
}

func usageCreds(t *testing.T, in *instance) *creds {
	t.Helper()
	web := in.login(t, aliceEmail, alicePass, "web")
	spa := in.login(t, aliceEmail, alicePass, "spa")
	mobile := in.login(t, aliceEmail, alicePass, "mobile")
	access := spa.cookie("ts_access")
	if access == nil || web.cookie("ts_session") == nil {
		t.Fatalf("login cookies missing: web %v, spa %v", web.cookies, spa.cookies)
	}
	return &creds{
		webSession:    cred{name: "web session", cookies: []*http.Cookie{web.cookie("ts_session")}, scheme: "session", client: "web"},
		webBearer:     cred{name: "web bearer", bearer: web.json(t)["access_token"].(string), scheme: "bearer", client: "web"},
		spaCookie:     cred{name: "spa jwt cookie", cookies: []*http.Cookie{access}, scheme: "jwt_cookie", client: "spa"},
		mobileBearer:  cred{name: "mobile bearer", bearer: mobile.json(t)["access_token"].(string), scheme: "bearer", client: "mobile"},
		badBearer:     cred{name: "garbage bearer", bearer: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", scheme: "bearer"},
		forgedSession: cred{name: "forged session", cookies: []*http.Cookie{{Name: "ts_session", Value: "forged-session-value"}}, scheme: "session"},
		none:          cred{name: "no credential", scheme: "none"},
	}
}

// opsToken logs the operator in through opsClientID.
func opsToken(t *testing.T, in *instance) string {
	t.Helper()
	return in.login(t, opsEmail, opsPass, opsClientID).json(t)["access_token"].(string)
}

// tally is what the responses say was counted. It is filled from every
// authenticated request the test sends except the operator's, so it never
// assumes an outcome the server did not give.
type tally struct {
	mu sync.Mutex
	n  map[event]int64
}

func newTally() *tally { return &tally{n: map[event]int64{}} }

func (tl *tally) add(e event, n int64) {
	tl.mu.Lock()
	tl.n[e] += n
	tl.mu.Unlock()
}

func (tl *tally) merge(o *tally) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for e, n := range o.n {
		tl.add(e, n)
	}
}

func (tl *tally) snapshot() map[event]int64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make(map[event]int64, len(tl.n))
	for e, n := range tl.n {
		out[e] = n
	}
	return out
}

// send presents c to GET /auth/me without failing the test (it runs in
// worker goroutines) and returns what the server counted.
func send(in *instance, c cred) (event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, "GET", in.URL+"/auth/me", nil)
	if err != nil {
		return event{}, err
	}
	if c.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for _, ck := range c.cookies {
		hr.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	res, err := client.Do(hr)
	if err != nil {
		return event{}, fmt.Errorf("%s: %w", c.name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return classify(c, res.StatusCode, body)
}

// classify maps an answer to the event authn records for it: accepted under
// the credential's client, every failure under unknown (no principal is
// believed), the outcome from the problem code and detail.
func classify(c cred, status int, body []byte) (event, error) {
	var p struct{ Code, Detail string }
	_ = json.Unmarshal(body, &p)
	switch {
	case status == 200:
		return event{c.scheme, c.client, "accepted"}, nil
	case status == 401 && p.Code == "unauthenticated":
		return event{"none", "unknown", "missing"}, nil
	case status == 401 && (p.Code == "invalid_token" || p.Code == "invalid_session"):
		outcome := "invalid"
		switch {
		case strings.Contains(p.Detail, "expired"):
			outcome = "expired"
		case strings.Contains(p.Detail, "revoked"):
			outcome = "revoked"
		}
		return event{c.scheme, "unknown", outcome}, nil
	case status == 503 && p.Code == "store_unavailable":
		return event{c.scheme, "unknown", "store_unavailable"}, nil
	}
	return event{}, fmt.Errorf("%s: unexpected answer %d %s", c.name, status, body)
}

// traffic sends n requests with each credential to each instance, all in
// parallel, and tallies the answers. allowed, when set, restricts the
// outcomes that may occur (a healthy cluster answers nothing else); gap
// spaces each worker's requests out.
func traffic(t *testing.T, ins []*instance, plan map[*cred]int, gap time.Duration, allowed func(cred, event) bool, sent *syncCounter) *tally {
	t.Helper()
	tl := newTally()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for _, in := range ins {
		for c, n := range plan {
			wg.Go(func() {
				for range n {
					e, err := send(in, *c)
					if err == nil && allowed != nil && !allowed(*c, e) {
						err = fmt.Errorf("%s on %s counted as %+v", c.name, in.URL, e)
					}
					if err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					tl.add(e, 1)
					if sent != nil {
						sent.inc()
					}
					time.Sleep(gap)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return tl
}

// healthy accepts only the outcome a working cluster gives each credential.
func healthy(c cred, e event) bool {
	switch c.scheme {
	case "none":
		return e == event{"none", "unknown", "missing"}
	}
	if c.client == "" {
		return e == event{c.scheme, "unknown", "invalid"}
	}
	return e == event{c.scheme, c.client, "accepted"}
}

type syncCounter struct {
	mu sync.Mutex
	n  int
}

func (s *syncCounter) inc() {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
}

func (s *syncCounter) get() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// readReport fetches GET /admin/usage?window=... with the operator's token.
func readReport(t *testing.T, in *instance, token, query string) *usage.Report {
	t.Helper()
	r := in.do(t, req{path: "/admin/usage?" + query, bearer: token})
	if r.status != 200 {
		t.Fatalf("GET /admin/usage?%s on %s: %d %s", query, in.URL, r.status, r.body)
	}
	var rep usage.Report
	if err := json.Unmarshal(r.body, &rep); err != nil {
		t.Fatalf("usage report: %v: %s", err, r.body)
	}
	return &rep
}

// mismatches compares a report with the tally: every figure of the traffic
// under test exactly, the operator's own row set apart (only accepted bearer
// requests may be on it). An empty result means equal.
func mismatches(rep *usage.Report, want map[event]int64) []string {
	var out []string
	var ops usage.ClientUsage
	known := map[string]bool{"web": true, "spa": true, "mobile": true, opsClientID: true, "other": true, "unknown": true}
	rows := map[string]usage.ClientUsage{}
	for _, cu := range rep.Clients {
		if !known[cu.ClientID] {
			out = append(out, "unexpected client row "+cu.ClientID)
		}
		rows[cu.ClientID] = cu
		if cu.ClientID == opsClientID {
			ops = cu
		}
	}
	if ops.Rejected != 0 || ops.Schemes["session"].Requests != 0 || ops.Schemes["jwt_cookie"].Requests != 0 {
		out = append(out, fmt.Sprintf("the operator's row holds more than accepted bearer requests: %+v", ops))
	}
	opsBearer := ops.Schemes["bearer"].Requests

	accepted := map[string]int64{}
	rejected := map[string]int64{}
	outcomes := map[string]int64{}
	clientAcc := map[[2]string]int64{}
	clientRej := map[[2]string]int64{}
	clientRejTotal := map[string]int64{}
	var total, totalRej int64
	for e, n := range want {
		outcomes[e.outcome] += n
		if e.outcome == "accepted" {
			accepted[e.scheme] += n
			clientAcc[[2]string{e.client, e.scheme}] += n
			total += n
			continue
		}
		totalRej += n
		clientRejTotal[e.client] += n
		if e.scheme != "none" {
			rejected[e.scheme] += n
			clientRej[[2]string{e.client, e.scheme}] += n
		}
	}
	check := func(what string, got, want int64) {
		if got != want {
			out = append(out, fmt.Sprintf("%s = %d, want %d", what, got, want))
		}
	}
	check("requests (without the operator's)", rep.Requests-opsBearer, total)
	check("rejected", rep.Rejected, totalRej)
	for _, s := range []string{"session", "bearer", "jwt_cookie"} {
		got := rep.Schemes[s].Requests
		if s == "bearer" {
			got -= opsBearer
		}
		check("schemes."+s+".requests", got, accepted[s])
		check("schemes."+s+".rejected", rep.Schemes[s].Rejected, rejected[s])
	}
	names := map[string]bool{}
	for o := range rep.Outcomes {
		names[o] = true
	}
	for o := range outcomes {
		names[o] = true
	}
	for o := range names {
		got := rep.Outcomes[o]
		if o == "accepted" {
			got -= opsBearer
		}
		check("outcomes."+o, got, outcomes[o])
	}
	for _, id := range []string{"web", "spa", "mobile", "other", "unknown"} {
		cu := rows[id]
		check("clients."+id+".rejected", cu.Rejected, clientRejTotal[id])
		for _, s := range []string{"session", "bearer", "jwt_cookie"} {
			check("clients."+id+"."+s+".requests", cu.Schemes[s].Requests, clientAcc[[2]string{id, s}])
			check("clients."+id+"."+s+".rejected", cu.Schemes[s].Rejected, clientRej[[2]string{id, s}])
		}
	}
	sort.Strings(out)
	return out
}

// waitExact reads the report (query, e.g. "window=1h") from in until it
// equals want, and fails if it does not within limit of start. It returns the
// report and how long it took after start.
func waitExact(t *testing.T, in *instance, token, query string, want map[event]int64, start time.Time, limit time.Duration) (*usage.Report, time.Duration) {
	t.Helper()
	for {
		rep := readReport(t, in, token, query)
		diff := mismatches(rep, want)
		if len(diff) == 0 {
			return rep, time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("report from %s still differs from the traffic %v after the traffic ended:\n  %s", in.URL, limit, strings.Join(diff, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
