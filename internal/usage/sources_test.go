package usage

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Legacy requests are session use of their client (report, readiness,
// guard share) and are reported per source, the same in memory and in
// Redis, across two instances sharing Redis.
func TestSourcesCounted(t *testing.T) {
	srv := startRedis(t)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			clock := newClock(base)
			reg := prometheus.NewRegistry()
			newRec := func(reg prometheus.Registerer) *Recorder {
				o := testOptions(clock, nil)
				if backend == "redis" {
					o.Redis = newRedisClient(t, srv.Addr())
				}
				o.Sources = []string{"shop", "forum"}
				o.Registry = reg
				return mustNew(t, o)
			}
			r := newRec(reg)
			r2 := r
			if backend == "redis" {
				_ = newRedisClient(t, srv.Addr()).FlushAll(context.Background()).Err()
				r2 = newRec(nil)
			}
			for i := range 6 {
				r.RecordSource("shop", auth.SchemeSession, "web", []string{"u-1", "u-2", "u-3"}[i%3], auth.OutcomeAccepted)
			}
			r2.RecordSource("shop", auth.SchemeSession, "web", "u-4", auth.OutcomeAccepted)
			r.RecordSource("shop", auth.SchemeSession, auth.ClientUnknown, "", auth.OutcomeInvalid)
			r.RecordSource("shop", auth.SchemeSession, "web", "u-1", auth.OutcomeRetired)
			r.RecordSource("nope", auth.SchemeSession, "web", "u-9", auth.OutcomeAccepted) // unconfigured: plain session use
			r.Record(auth.SchemeSession, "web", "u-5", auth.OutcomeAccepted)
			r.Record(auth.SchemeBearer, "web", "u-5", auth.OutcomeAccepted)
			if err := r2.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			rep, err := r.Report(context.Background(), time.Hour, "")
			if err != nil {
				t.Fatal(err)
			}
			shop := rep.Sources["shop"]
			if shop.Requests != 7 || shop.Rejected != 2 || shop.Users == nil || *shop.Users != 4 || shop.LastSeen == nil {
				b, _ := json.Marshal(rep.Sources)
				t.Fatalf("sources = %s, want shop 7 requests, 2 rejected, 4 users, last seen", b)
			}
			if f := rep.Sources["forum"]; f.Requests != 0 || f.LastSeen != nil {
				t.Fatalf("forum = %+v", f)
			}
			var web ClientUsage
			for _, c := range rep.Clients {
				if c.ClientID == "web" {
					web = c
				}
			}
			if got := web.Schemes["session"]; got.Requests != 9 || got.LastSeen == nil {
				t.Fatalf("web session = %+v, want 9 (7 shop, 1 unconfigured source, 1 own)", got)
			}
			if rep.Schemes["session"].Requests != 9 || rep.Requests != 10 {
				t.Fatalf("schemes = %+v, requests %d", rep.Schemes, rep.Requests)
			}
			sh, err := r.SessionShare(context.Background(), []string{"web"}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if sh.SessionRequests != 10 || sh.RetiredRequests != 1 || sh.TotalRequests != 11 {
				t.Fatalf("share = %+v, want legacy use and its retired request counted", sh)
			}
			// The metric: legacy series carry the source, own ones an empty one;
			// the two are disjoint, so sums by client stay right.
			wantShop := 7.0
			if r2 != r {
				wantShop = 6 // this instance's own counts
			}
			if v, err := gatherValue(reg, "tokenshift_auth_requests_total", map[string]string{"client": "web", "scheme": "session", "outcome": "accepted", "source": "shop"}); err != nil || v != wantShop {
				t.Fatalf("shop series = %v, %v; want %v", v, err, wantShop)
			}
			if v, err := gatherValue(reg, "tokenshift_auth_requests_total", map[string]string{"client": "web", "scheme": "session", "outcome": "accepted", "source": ""}); err != nil || v != 2 {
				t.Fatalf("own series = %v, %v; want 2", v, err)
			}
			// A client report carries the sources' counts, not their users.
			crep, err := r.Report(context.Background(), time.Hour, "web")
			if err != nil {
				t.Fatal(err)
			}
			if s := crep.Sources["shop"]; s.Requests != 7 || s.Users != nil {
				t.Fatalf("client report shop = %+v", s)
			}
		})
	}
}

// Without sources the report has no "sources" key at all.
func TestNoSourcesNoKey(t *testing.T) {
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, nil))
	r.Record(auth.SchemeSession, "web", "u-1", auth.OutcomeAccepted)
	rep, err := r.Report(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), `"sources"`) {
		t.Fatalf("report has sources: %s", b)
	}
}

func TestSourceNamesChecked(t *testing.T) {
	for _, names := range [][]string{{"a|b"}, {"a", "a"}, {""}, {"has space"}} {
		o := testOptions(newClock(base), nil)
		o.Sources = names
		if _, err := New(o); err == nil {
			t.Errorf("New accepted sources %q", names)
		}
	}
}

// BenchmarkRecordSource is the hot path of an accepted legacy request.
func BenchmarkRecordSource(b *testing.B) {
	o := testOptions(newClock(base), nil)
	o.Sources = []string{"shop", "forum"}
	r := mustNew(b, o)
	users := benchUsers(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.RecordSource("shop", auth.SchemeSession, "web", users[i&1023], auth.OutcomeAccepted)
		i++
	}
}
