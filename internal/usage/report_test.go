package usage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestPlanWindow(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 20, 30, 0, time.UTC)
	tests := []struct {
		name     string
		window   time.Duration
		from     time.Time
		step     time.Duration
		minutes  int
		hours    int
		userHrs  int
		wantFrom time.Time
	}{
		{name: "1h per minute", window: time.Hour, step: time.Minute, minutes: 61, userHrs: 2,
			wantFrom: time.Date(2025, 3, 10, 11, 20, 0, 0, time.UTC)},
		{name: "2h per minute", window: 2 * time.Hour, step: time.Minute, minutes: 121, userHrs: 3,
			wantFrom: time.Date(2025, 3, 10, 10, 20, 0, 0, time.UTC)},
		{name: "24h: partial first hour per minute", window: 24 * time.Hour, step: time.Hour, minutes: 40, hours: 24, userHrs: 25,
			wantFrom: time.Date(2025, 3, 9, 12, 20, 0, 0, time.UTC)},
		{name: "72h: beyond minute retention, whole first hour", window: 72 * time.Hour, step: time.Hour, hours: 73, userHrs: 73,
			wantFrom: time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planWindow(now, tt.window, minuteRetention)
			if p.step != tt.step || len(p.minutes) != tt.minutes || len(p.hours) != tt.hours || len(p.userHours) != tt.userHrs {
				t.Errorf("plan = step %v, %d minutes, %d hours, %d user hours; want %v, %d, %d, %d",
					p.step, len(p.minutes), len(p.hours), len(p.userHours), tt.step, tt.minutes, tt.hours, tt.userHrs)
			}
			if got := time.Unix(p.from, 0).UTC(); !got.Equal(tt.wantFrom) {
				t.Errorf("from = %v, want %v", got, tt.wantFrom)
			}
			if len(p.minutes) > 0 && len(p.hours) > 0 && p.minutes[len(p.minutes)-1]+minuteSeconds != p.hours[0] {
				t.Errorf("minutes end at %d, hours start at %d: gap or overlap", p.minutes[len(p.minutes)-1], p.hours[0])
			}
		})
	}
}

// Events at known ages fall in or out of each window, from minute or hour
// buckets, the same way in memory and in Redis.
func TestWindowsSelectBuckets(t *testing.T) {
	now := time.Date(2025, 3, 10, 12, 20, 30, 0, time.UTC)
	events := []struct {
		age time.Duration
		n   int
	}{
		{60 * time.Hour, 1}, {3 * time.Hour, 2}, {90 * time.Minute, 4}, {30 * time.Minute, 8}, {5 * time.Minute, 16},
	}
	windows := []struct {
		window time.Duration
		want   int64
	}{
		{window: time.Hour, want: 8 + 16},
		{window: 2 * time.Hour, want: 4 + 8 + 16},
		{window: 4 * time.Hour, want: 2 + 4 + 8 + 16},
		{window: 72 * time.Hour, want: 1 + 2 + 4 + 8 + 16},
	}
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			clock := newClock(now.Add(-61 * time.Hour))
			o := testOptions(clock, nil)
			if mode == "redis" {
				o.Redis = newRedisClient(t, startRedis(t).Addr())
			}
			r := mustNew(t, o)
			ctx := context.Background()
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			for _, e := range events {
				clock.Set(now.Add(-e.age))
				for range e.n {
					r.Record(auth.SchemeSession, "web", "u1", auth.OutcomeAccepted)
				}
				if err := r.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			clock.Set(now)
			for _, w := range windows {
				rep, err := r.Report(ctx, w.window, "")
				if err != nil {
					t.Fatalf("window %v: %v", w.window, err)
				}
				if got := rep.Schemes["session"].Requests; got != w.want {
					t.Errorf("window %v: session requests = %d, want %d", w.window, got, w.want)
				}
				var inSeries int64
				for _, p := range rep.Series {
					inSeries += p.Schemes["session"]
				}
				if inSeries != w.want {
					t.Errorf("window %v: series sums to %d, want %d", w.window, inSeries, w.want)
				}
				last := rep.Clients[0].Schemes["session"].LastSeen
				if rep.Clients[0].ClientID != "web" || last == nil || !last.Equal(now.Add(-5*time.Minute)) {
					t.Errorf("window %v: web session last_seen = %v, want %v", w.window, last, now.Add(-5*time.Minute))
				}
			}
		})
	}
}

// The in-memory back end produces the same report as Redis for the same
// traffic (distinct users aside, which are estimates in Redis).
func TestMemoryAndRedisReportsAgree(t *testing.T) {
	clock := newClock(base)
	mem := mustNew(t, testOptions(clock, nil))
	red := mustNew(t, testOptions(clock, newRedisClient(t, startRedis(t).Addr())))
	ctx := context.Background()
	for _, r := range []*Recorder{mem, red} {
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(13 * time.Hour)
	for step := range 5 {
		for _, r := range []*Recorder{mem, red} {
			record(r, step*500, 500)
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(17 * time.Minute)
	}
	for _, window := range []time.Duration{time.Hour, 24 * time.Hour} {
		a, err := mem.Report(ctx, window, "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := red.Report(ctx, window, "")
		if err != nil {
			t.Fatal(err)
		}
		checkUsers(t, "memory "+window.String(), a)
		checkUsers(t, "redis "+window.String(), b)
		for _, rep := range []*Report{a, b} {
			rep.Users = nil
			for k, s := range rep.Schemes {
				s.Users = nil
				rep.Schemes[k] = s
			}
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("window %v: reports differ\nmemory: %s\nredis:  %s", window, ja, jb)
		}
	}
}

func TestReadiness(t *testing.T) {
	type traffic struct {
		client string
		scheme auth.Scheme
		n      int
	}
	tests := []struct {
		name        string
		lifetime    time.Duration
		history     time.Duration // how long before now aggregation started
		window      time.Duration
		traffic     []traffic
		ready       bool
		reason      string // substring of a reason, when not ready
		covers      bool
		share       float64
		usingSess   []string
		clientReady map[string]bool
	}{
		{
			name: "below threshold", lifetime: 12 * time.Hour, history: 48 * time.Hour, window: 24 * time.Hour,
			traffic: []traffic{{"mobile", auth.SchemeBearer, 995}, {"web", auth.SchemeSession, 5}},
			ready:   true, covers: true, share: 0.005, usingSess: []string{"web"},
			clientReady: map[string]bool{"mobile": true, "web": false, "spa": false},
		},
		{
			name: "above threshold", lifetime: 12 * time.Hour, history: 48 * time.Hour, window: 24 * time.Hour,
			traffic: []traffic{{"mobile", auth.SchemeBearer, 90}, {"web", auth.SchemeSession, 10}},
			ready:   false, reason: "above the threshold", covers: true, share: 0.1, usingSess: []string{"web"},
			clientReady: map[string]bool{"mobile": true, "web": false},
		},
		{
			name: "window shorter than session lifetime", lifetime: 30 * 24 * time.Hour, history: 48 * time.Hour, window: 24 * time.Hour,
			traffic: []traffic{{"mobile", auth.SchemeBearer, 100}},
			ready:   false, reason: "shorter than the longest session lifetime", covers: false,
			clientReady: map[string]bool{"mobile": false},
		},
		{
			name: "no traffic", lifetime: time.Hour, history: 48 * time.Hour, window: 24 * time.Hour,
			ready: false, reason: "no accepted request", covers: true,
		},
		{
			name: "data younger than the window", lifetime: time.Hour, history: 2 * time.Hour, window: 24 * time.Hour,
			traffic: []traffic{{"spa", auth.SchemeJWTCookie, 100}},
			ready:   false, reason: "usage data only goes back", covers: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := base
			clock := newClock(now.Add(-tt.history))
			o := testOptions(clock, nil)
			o.SessionLifetime = tt.lifetime
			r := mustNew(t, o)
			ctx := context.Background()
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Set(now.Add(-time.Hour))
			for _, tr := range tt.traffic {
				for range tr.n {
					r.Record(tr.scheme, tr.client, "someone", auth.OutcomeAccepted)
				}
				// Refused sessions do not count towards the share.
				r.Record(auth.SchemeSession, tr.client, "", auth.OutcomeRetired)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			clock.Set(now)
			rep, err := r.Report(ctx, tt.window, "")
			if err != nil {
				t.Fatal(err)
			}
			v := rep.Readiness
			if v.Ready != tt.ready {
				t.Errorf("ready = %v, want %v (reasons %q)", v.Ready, tt.ready, v.Reasons)
			}
			if !tt.ready && !containsSubstring(v.Reasons, tt.reason) {
				t.Errorf("reasons %q lack %q", v.Reasons, tt.reason)
			}
			if tt.ready && len(v.Reasons) != 0 {
				t.Errorf("ready with reasons %q", v.Reasons)
			}
			if v.WindowCoversSessionLifetime != tt.covers {
				t.Errorf("window_covers_session_lifetime = %v, want %v", v.WindowCoversSessionLifetime, tt.covers)
			}
			if v.SessionShare != tt.share || v.Threshold != DefaultMaxSessionShare {
				t.Errorf("share %v threshold %v, want %v and %v", v.SessionShare, v.Threshold, tt.share, DefaultMaxSessionShare)
			}
			var using []string
			for _, c := range v.ClientsUsingSessions {
				using = append(using, c.ClientID)
				if c.LastSeen == nil || !c.LastSeen.Equal(now.Add(-time.Hour)) {
					t.Errorf("client %s last_seen = %v, want %v", c.ClientID, c.LastSeen, now.Add(-time.Hour))
				}
			}
			if strings.Join(using, ",") != strings.Join(tt.usingSess, ",") {
				t.Errorf("clients using sessions = %v, want %v", using, tt.usingSess)
			}
			for _, cu := range rep.Clients {
				if want, ok := tt.clientReady[cu.ClientID]; ok && (cu.Readiness == nil || cu.Readiness.Ready != want) {
					t.Errorf("client %s ready = %v, want %v (reasons %q)", cu.ClientID, cu.Readiness.Ready, want, cu.Readiness.Reasons)
				}
			}
		})
	}
}

// TestReadinessMaxShareZero: usage.max_session_share 0 means no session at
// all, globally and per client; it is not replaced by the 1 % default.
func TestReadinessMaxShareZero(t *testing.T) {
	clock := newClock(base.Add(-48 * time.Hour))
	o := testOptions(clock, nil)
	o.MaxSessionShare = 0
	r := mustNew(t, o)
	ctx := context.Background()
	if err := r.Flush(ctx); err != nil { // data since two days ago
		t.Fatal(err)
	}
	clock.Set(base.Add(-time.Hour))
	for range 9999 {
		r.Record(auth.SchemeBearer, "mobile", "b", auth.OutcomeAccepted)
	}
	r.Record(auth.SchemeSession, "web", "a", auth.OutcomeAccepted) // 0.01 %
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Set(base)
	rep, err := r.Report(ctx, 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if v := rep.Readiness; v.Ready || v.Threshold != 0 || !containsSubstring(v.Reasons, "above the threshold 0.00%") {
		t.Errorf("one session in 10 000 with threshold 0: ready %v, threshold %v, reasons %q", v.Ready, v.Threshold, v.Reasons)
	}
	for _, c := range rep.Clients {
		if c.ClientID == "mobile" && (c.Readiness == nil || !c.Readiness.Ready) {
			t.Errorf("mobile sent no session, yet its readiness is %+v", c.Readiness)
		}
	}
}

// TestReportOmitsVerdictsForLabels: other and unknown are labels, not
// clients a phase can be set for: the report keeps their counts but gives
// them no readiness verdict; their sessions still weigh in the global one.
func TestReportOmitsVerdictsForLabels(t *testing.T) {
	r := mustNew(t, testOptions(newClock(base), nil))
	r.Record(auth.SchemeSession, "forged-client", "a", auth.OutcomeAccepted)
	r.Record(auth.SchemeNone, "", "", auth.OutcomeMissing)
	r.Record(auth.SchemeBearer, "mobile", "b", auth.OutcomeAccepted)
	rep, err := r.Report(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range rep.Clients {
		seen[c.ClientID] = true
		switch c.ClientID {
		case auth.ClientOther, auth.ClientUnknown:
			if c.Readiness != nil {
				t.Errorf("%s carries a readiness verdict: %+v", c.ClientID, c.Readiness)
			}
		default:
			if c.Readiness == nil {
				t.Errorf("registered client %s has no readiness verdict", c.ClientID)
			}
		}
	}
	if !seen[auth.ClientOther] || !seen[auth.ClientUnknown] {
		t.Fatalf("clients %v lack other or unknown", seen)
	}
	if rep.Readiness.SessionRequests != 1 || len(rep.Readiness.ClientsUsingSessions) != 1 || rep.Readiness.ClientsUsingSessions[0].ClientID != auth.ClientOther {
		t.Errorf("global verdict = %+v, want other's session counted", rep.Readiness)
	}
	raw, _ := json.Marshal(rep.Clients)
	if n := strings.Count(string(raw), `"readiness"`); n != len(rep.Clients)-2 {
		t.Errorf("%d readiness keys in %s, want %d", n, raw, len(rep.Clients)-2)
	}
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestSessionShareAndClientReport(t *testing.T) {
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, nil))
	ctx := context.Background()
	for range 30 {
		r.Record(auth.SchemeSession, "web", "a", auth.OutcomeAccepted)
	}
	for range 70 {
		r.Record(auth.SchemeBearer, "web", "a", auth.OutcomeAccepted)
	}
	for range 100 {
		r.Record(auth.SchemeBearer, "mobile", "b", auth.OutcomeAccepted)
	}
	r.Record(auth.SchemeSession, "web", "a", auth.OutcomeRetired)

	// The session refused by the phase counts as session use, in the share
	// and in the total.
	tests := []struct {
		name                          string
		clients                       []string
		wantSession, wantAll, retired int64
	}{
		{name: "all clients", wantSession: 31, wantAll: 201, retired: 1},
		{name: "web", clients: []string{"web"}, wantSession: 31, wantAll: 101, retired: 1},
		{name: "web and mobile", clients: []string{"web", "mobile"}, wantSession: 31, wantAll: 201, retired: 1},
		{name: "mobile", clients: []string{"mobile"}, wantAll: 100},
		{name: "spa", clients: []string{"spa"}},
	}
	for _, tt := range tests {
		sh, err := r.SessionShare(ctx, tt.clients, time.Hour)
		if err != nil || sh.SessionRequests != tt.wantSession || sh.TotalRequests != tt.wantAll || sh.RetiredRequests != tt.retired {
			t.Errorf("%s: SessionShare = %+v, %v; want %d session (%d retired) of %d", tt.name, sh, err, tt.wantSession, tt.retired, tt.wantAll)
		}
		// Aggregation started with this recorder's first flush, now: the
		// hour window is not observed.
		if !sh.DataSince.Equal(base) || !sh.WindowStart.Equal(base.Add(-time.Hour)) || sh.Observed() {
			t.Errorf("%s: data since %v, window start %v, observed %v; want %v, %v, false", tt.name, sh.DataSince, sh.WindowStart, sh.Observed(), base, base.Add(-time.Hour))
		}
	}

	rep, err := r.Report(ctx, time.Hour, "web")
	if err != nil {
		t.Fatal(err)
	}
	if rep.ClientID != "web" || len(rep.Clients) != 1 || rep.Requests != 100 || rep.Schemes["session"].Share != 0.3 {
		t.Errorf("web report: client %q, %d clients, %d requests, session share %v", rep.ClientID, len(rep.Clients), rep.Requests, rep.Schemes["session"].Share)
	}
	if rep.Users != nil || rep.Schemes["session"].Users != nil {
		t.Error("client report carries distinct users, which are only counted across all clients")
	}
	if rep.Schemes["session"].Rejected != 1 || rep.Outcomes["session_retired"] != 1 {
		t.Errorf("web report rejected sessions = %d, outcome session_retired = %d; want 1, 1", rep.Schemes["session"].Rejected, rep.Outcomes["session_retired"])
	}
}

func TestReportErrors(t *testing.T) {
	r := mustNew(t, testOptions(newClock(base), nil))
	ctx := context.Background()
	tests := []struct {
		name   string
		window time.Duration
		client string
		want   error
	}{
		{name: "zero window", window: 0, want: ErrInvalidWindow},
		{name: "negative window", window: -time.Hour, want: ErrInvalidWindow},
		{name: "beyond retention", window: DefaultRetention + time.Hour, want: ErrInvalidWindow},
		{name: "unregistered client", window: time.Hour, client: "evil", want: auth.ErrNotFound},
		{name: "other label", window: time.Hour, client: auth.ClientOther},
		{name: "unknown label", window: time.Hour, client: auth.ClientUnknown},
		{name: "whole retention", window: DefaultRetention},
	}
	for _, tt := range tests {
		_, err := r.Report(ctx, tt.window, tt.client)
		if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := r.SessionShare(ctx, []string{"evil"}, time.Hour); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("SessionShare with an unregistered client: err = %v, want ErrUnknownClient", err)
	}
}

// The JSON keys of DESIGN.md section 3 are a contract.
func TestReportJSONContract(t *testing.T) {
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, nil))
	record(r, 0, 100)
	rep, err := r.Report(context.Background(), 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Window  *string `json:"window"`
		Schemes map[string]map[string]json.RawMessage
		Clients []struct {
			ClientID *string                               `json:"client_id"`
			Schemes  map[string]map[string]json.RawMessage `json:"schemes"`
		}
		Outcomes  map[string]int64
		Series    []json.RawMessage
		Readiness struct {
			Ready   *bool     `json:"ready"`
			Reasons *[]string `json:"reasons"`
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Window == nil || *doc.Window != "24h" {
		t.Errorf("window = %v, want 24h", doc.Window)
	}
	for _, s := range []string{"session", "bearer", "jwt_cookie"} {
		for _, k := range []string{"requests", "share", "users"} {
			if _, ok := doc.Schemes[s][k]; !ok {
				t.Errorf("schemes.%s.%s missing", s, k)
			}
		}
	}
	if len(doc.Clients) == 0 {
		t.Fatal("no clients")
	}
	for _, c := range doc.Clients {
		for _, k := range []string{"requests", "last_seen"} {
			if _, ok := c.Schemes["session"][k]; !ok {
				t.Errorf("clients[%v].schemes.session.%s missing", c.ClientID, k)
			}
		}
	}
	if _, ok := doc.Outcomes["accepted"]; !ok || len(doc.Series) == 0 || doc.Readiness.Ready == nil || doc.Readiness.Reasons == nil {
		t.Errorf("outcomes/series/readiness incomplete: %s", raw)
	}
}

// Last uses older than the retention are forgotten the same way by both back
// ends: pruned when the last-seen table is next written, and never reported
// even before that.
func TestLastSeenExpiresWithRetention(t *testing.T) {
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			clock := newClock(base)
			o := testOptions(clock, nil)
			var direct *redis.Client
			if mode == "redis" {
				srv := startRedis(t)
				o.Redis = newRedisClient(t, srv.Addr())
				direct = newRedisClient(t, srv.Addr())
			}
			r := mustNew(t, o)
			ctx := context.Background()
			flush := func() {
				t.Helper()
				if err := r.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			lastSeen := func(client string, s auth.Scheme) *time.Time {
				t.Helper()
				rep, err := r.Report(ctx, time.Hour, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, cu := range rep.Clients {
					if cu.ClientID == client {
						return cu.Schemes[s.String()].LastSeen
					}
				}
				return nil
			}

			r.Record(auth.SchemeSession, "web", "u", auth.OutcomeAccepted)
			flush()
			old := clock.Now()
			clock.Advance(DefaultRetention)
			r.Record(auth.SchemeJWTCookie, "spa", "u", auth.OutcomeAccepted)
			flush()
			if got := lastSeen("web", auth.SchemeSession); got == nil || !got.Equal(old) {
				t.Fatalf("web session last_seen %v after exactly the retention = %v, want %v", DefaultRetention, got, old)
			}

			// Past the retention and its last hour: not reported although
			// nothing was written since...
			clock.Advance(time.Hour + time.Minute)
			if got := lastSeen("web", auth.SchemeSession); got != nil {
				t.Errorf("web session last_seen past the retention = %v, want none", got)
			}
			if got := lastSeen("spa", auth.SchemeJWTCookie); got == nil {
				t.Error("spa's recent last use is gone")
			}
			// ...and pruned by the next write.
			r.Record(auth.SchemeBearer, "mobile", "u", auth.OutcomeAccepted)
			flush()
			if direct != nil {
				fields, err := direct.HGetAll(ctx, lastSeenKey).Result()
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := fields["web|session"]; ok || len(fields) != 2 {
					t.Errorf("last-seen hash after pruning = %v, want spa|jwt_cookie and mobile|bearer only", fields)
				}
			} else {
				mb := r.backend.(*memoryBackend)
				mb.mu.Lock()
				n := len(mb.last)
				_, ok := mb.last[clientScheme{"web", auth.SchemeSession}]
				mb.mu.Unlock()
				if ok || n != 2 {
					t.Errorf("in-memory last-seen after pruning has %d entries (web session kept: %v), want 2", n, ok)
				}
			}
		})
	}
}
