package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// mix is the traffic of the multi-instance tests: every scheme, registered,
// forged and missing clients, accepted and rejected outcomes.
var mix = []event{
	{auth.SchemeSession, "web", auth.OutcomeAccepted},
	{auth.SchemeSession, "web", auth.OutcomeAccepted},
	{auth.SchemeBearer, "mobile", auth.OutcomeAccepted},
	{auth.SchemeBearer, "mobile", auth.OutcomeAccepted},
	{auth.SchemeBearer, "mobile", auth.OutcomeAccepted},
	{auth.SchemeJWTCookie, "spa", auth.OutcomeAccepted},
	{auth.SchemeBearer, "forged-client", auth.OutcomeAccepted},
	{auth.SchemeSession, "web", auth.OutcomeExpired},
	{auth.SchemeSession, "web", auth.OutcomeRetired},
	{auth.SchemeBearer, "", auth.OutcomeInvalid},
	{auth.SchemeNone, "", auth.OutcomeInvalid},
	{auth.SchemeBearer, "mobile", auth.OutcomeRevoked},
	{auth.SchemeSession, "web", auth.OutcomeUnavailable},
	{auth.SchemeBearer, auth.ClientUnknown, auth.OutcomeExpired},
	{auth.SchemeNone, auth.ClientUnknown, auth.OutcomeMissing},
	{auth.SchemeJWTCookie, auth.ClientUnknown, auth.OutcomeInvalid},
	{auth.SchemeBearer, "mobile", auth.OutcomeAccepted},
}

// The mix's length (17) must stay coprime with 150, 200 and 50 (see userOf),
// so that every user of each range is sampled.

// userOf gives each scheme its own, partly overlapping, range of users:
// session 0..149, bearer 100..299, jwt_cookie 0..49.
func userOf(s auth.Scheme, i int) string {
	switch s {
	case auth.SchemeSession:
		return fmt.Sprintf("user-%03d", i%150)
	case auth.SchemeBearer:
		return fmt.Sprintf("user-%03d", 100+i%200)
	default:
		return fmt.Sprintf("user-%03d", i%50)
	}
}

var wantUsers = map[auth.Scheme]int64{auth.SchemeSession: 150, auth.SchemeBearer: 200, auth.SchemeJWTCookie: 50}

const wantUsersAll = 300

// record replays n events of the mix starting at offset and returns what
// should have been counted.
func record(r *Recorder, offset, n int) *counts {
	c := newCounts()
	for i := offset; i < offset+n; i++ {
		e := mix[i%len(mix)]
		r.Record(e.scheme, e.client, userOf(e.scheme, i), e.outcome)
		c.add(e, 1)
	}
	return c
}

func checkUsers(t *testing.T, name string, rep *Report) {
	t.Helper()
	near := func(got *int64, want int64) bool {
		if got == nil {
			return false
		}
		d := float64(*got - want)
		return d*d <= (0.02*float64(want))*(0.02*float64(want))+1
	}
	for s, want := range wantUsers {
		if got := rep.Schemes[s.String()].Users; !near(got, want) {
			t.Errorf("%s: users of %s = %v, want %d ±2%%", name, s, deref(got), want)
		}
	}
	if !near(rep.Users, wantUsersAll) {
		t.Errorf("%s: users (all schemes) = %v, want %d ±2%%", name, deref(rep.Users), wantUsersAll)
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Three instances on one Redis record in parallel while flushing
// concurrently; every instance then reports exactly the whole mix.
func TestThreeInstancesCountExactly(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	const instances, workers, perWorker = 3, 4, 2600

	recs := make([]*Recorder, instances)
	for i := range recs {
		recs[i] = mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	}
	want := newCounts()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range recs {
		stop := make(chan struct{})
		var flushers sync.WaitGroup
		flushers.Go(func() {
			// Flushing while recording exercises the cut boundary.
			for {
				select {
				case <-stop:
					return
				default:
					_ = r.Flush(context.Background())
					time.Sleep(time.Millisecond)
				}
			}
		})
		var workersWG sync.WaitGroup
		for w := range workers {
			workersWG.Go(func() {
				c := record(r, w*perWorker, perWorker)
				mu.Lock()
				want.merge(c)
				mu.Unlock()
			})
		}
		wg.Go(func() {
			workersWG.Wait()
			close(stop)
			flushers.Wait()
		})
	}
	wg.Wait()
	for i, r := range recs {
		if err := r.Flush(context.Background()); err != nil {
			t.Fatalf("final flush of instance %d: %v", i, err)
		}
	}
	for i, r := range recs {
		rep, err := r.Report(context.Background(), time.Hour, "")
		if err != nil {
			t.Fatalf("report from instance %d: %v", i, err)
		}
		name := fmt.Sprintf("instance %d", i)
		checkReport(t, name, rep, want)
		checkUsers(t, name, rep)
		if n := rep.Outcomes["accepted"] + rep.Rejected; n != instances*workers*perWorker {
			t.Errorf("%s: accepted+rejected = %d, want %d", name, n, instances*workers*perWorker)
		}
	}
}

// A cut connection keeps the deltas in memory across failed flushes; they are
// all delivered, each dated by the flush that cut it, once Redis is back.
func TestOutageKeepsDeltasUntilRedisIsBack(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, px.Addr())))
	ctx := context.Background()

	want := record(r, 0, 100)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush before the outage: %v", err)
	}

	px.Cut()
	want.merge(record(r, 100, 130))
	err := r.Flush(ctx)
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("flush during the outage = %v, want an error wrapping auth.ErrUnavailable", err)
	}
	clock.Advance(time.Minute)
	want.merge(record(r, 230, 70))
	if err := r.Flush(ctx); err == nil {
		t.Fatal("second flush during the outage succeeded")
	}
	if got := len(r.pending); got != 2 {
		t.Errorf("pending batches during the outage = %d, want 2", got)
	}

	px.Open()
	clock.Advance(time.Minute)
	want.merge(record(r, 300, 50))
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush after the outage: %v", err)
	}
	if len(r.pending) != 0 {
		t.Errorf("pending batches after recovery = %d, want 0", len(r.pending))
	}

	// Read through a fresh instance that recorded nothing itself.
	reader := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	rep, err := reader.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "after outage", rep, want)

	// The batch cut during the outage at base+1m keeps its minute.
	var perMinute []int64
	for _, p := range rep.Series {
		perMinute = append(perMinute, p.Schemes["session"]+p.Schemes["bearer"]+p.Schemes["jwt_cookie"]+p.Rejected)
	}
	n := len(perMinute)
	if n < 3 || perMinute[n-3] != 230 || perMinute[n-2] != 70 || perMinute[n-1] != 50 {
		t.Errorf("last three minutes = %v, want [... 230 70 50]", perMinute)
	}
	if v, err := gatherValue(r.metrics.private, "tokenshift_usage_flush_errors_total", nil); err != nil || v != 2 {
		t.Errorf("flush errors metric = %v (%v), want 2", v, err)
	}
}

// Redis killed and restarted empty: what was recorded while it was down is
// still delivered after the restart (what it held before is gone with it).
func TestRedisRestartDeliversDeltasRecordedWhileDown(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	ctx := context.Background()

	record(r, 0, 40)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	srv.Stop()
	want := record(r, 40, 90)
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush with Redis stopped succeeded")
	}
	srv.Restart()
	want.merge(record(r, 130, 25))
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush after restart: %v", err)
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "after restart", rep, want)
}

// The same batch applied twice, as after a flush whose reply was lost,
// counts once; a batch that would skip one is refused until the gap is filled.
func TestApplyIsIdempotentAndOrdered(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	ctx := context.Background()

	cutOne := func(offset, n int) (*batch, *counts) {
		c := record(r, offset, n)
		r.flushMu.Lock()
		defer r.flushMu.Unlock()
		return r.cut(clock.Now().Unix()), c
	}
	b1, want := cutOne(0, 30)
	b2, c2 := cutOne(30, 20)
	b3, c3 := cutOne(50, 10)
	want.merge(c2)
	want.merge(c3)

	steps := []struct {
		name    string
		batches []*batch
		applied int
		wantErr bool
	}{
		{name: "first", batches: []*batch{b1}, applied: 1},
		{name: "first again", batches: []*batch{b1}, applied: 1},
		{name: "third skips the second", batches: []*batch{b3}, applied: 0, wantErr: true},
		{name: "second and third", batches: []*batch{b2, b3}, applied: 2},
		{name: "all again", batches: []*batch{b1, b2, b3}, applied: 3},
	}
	for _, s := range steps {
		n, lost, err := r.backend.apply(ctx, clock.Now().Unix(), s.batches)
		if n != s.applied || (err != nil) != s.wantErr || lost {
			t.Fatalf("%s: apply = %d, lost %v, %v; want %d, error %v, no loss", s.name, n, lost, err, s.applied, s.wantErr)
		}
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "applied twice", rep, want)
}

// A flush whose replies never come back times out although Redis executed it;
// the retry must not count it again.
func TestTimedOutButAppliedFlushCountsOnce(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, px.Addr())))
	direct := newRedisClient(t, srv.Addr())
	ctx := context.Background()

	// A first flush opens the connection: a new one would stall on its
	// handshake and never send the batch.
	want := record(r, 0, 20)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("first flush: %v", err)
	}
	clock.Advance(time.Minute)
	want.merge(record(r, 20, 60))
	px.Blackhole()
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush without replies succeeded")
	}
	// Redis did apply it: the minute bucket holds the counts already.
	minute := minuteKey(floorTo(clock.Now().Unix(), minuteSeconds))
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := direct.HLen(ctx, minute).Result()
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis never applied the black-holed flush (HLEN %d, %v)", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(r.pending) != 1 {
		t.Fatalf("pending after the timed-out flush = %d, want 1", len(r.pending))
	}

	px.Open()
	want.merge(record(r, 60, 15))
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("retry flush: %v", err)
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "timed out but applied", rep, want)
}

// Run stops flushing when its context ends; Close then delivers what is left.
func TestCloseFlushesOnShutdown(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	o := testOptions(clock, newRedisClient(t, srv.Addr()))
	o.FlushInterval = time.Hour // only the shutdown flush can deliver
	r := mustNew(t, o)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(done)
	}()
	// Wait for Run's first flush (it marks the start of aggregation), so only
	// the shutdown flush can deliver what is recorded next.
	direct := newRedisClient(t, srv.Addr())
	deadline := time.Now().Add(5 * time.Second)
	for direct.Exists(context.Background(), sinceKey).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not flush at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := record(r, 0, 77)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	reader := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	rep, err := reader.Report(context.Background(), time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	checkReport(t, "after shutdown", rep, want)
}

// With the backlog full, request counts still survive (they stay in the live
// counters), and distinct users that no longer fit are dropped and counted.
func TestBacklogOverflowIsCounted(t *testing.T) {
	srv := startRedis(t)
	px := startProxy(t, srv.Addr())
	clock := newClock(base)
	o := testOptions(clock, newRedisClient(t, px.Addr()))
	o.MaxBacklog = 2
	r, err := newRecorder(o, 64)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	px.Cut()
	const rounds, perRound = 5, 40
	for round := range rounds {
		for i := range perRound {
			r.Record(auth.SchemeBearer, "mobile", fmt.Sprintf("u-%d-%d", round, i), auth.OutcomeAccepted)
		}
		if err := r.Flush(ctx); err == nil {
			t.Fatalf("round %d: flush succeeded through a cut proxy", round)
		}
	}
	reg := r.metrics.private
	if v, err := gatherValue(reg, "tokenshift_usage_dropped_events_total", map[string]string{"reason": "user_table_full"}); err != nil || v == 0 {
		t.Errorf("dropped events = %v (%v), want > 0", v, err)
	}
	if v, err := gatherValue(reg, "tokenshift_usage_backlog_full_total", nil); err != nil || v != rounds-2 {
		t.Errorf("backlog full = %v (%v), want %d", v, err, rounds-2)
	}
	if v, err := gatherValue(reg, "tokenshift_usage_backlog_batches", nil); err != nil || v != 2 {
		t.Errorf("backlog gauge = %v (%v), want 2", v, err)
	}

	px.Open()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush after the outage: %v", err)
	}
	rep, err := r.Report(ctx, time.Hour, "")
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	if got := rep.Schemes["bearer"].Requests; got != rounds*perRound {
		t.Errorf("bearer requests after overflow = %d, want %d (counts must never be dropped)", got, rounds*perRound)
	}
}

// Keys expire with their buckets: minutes after about two days, hours after
// the retention, everything carries the cluster hash tag.
func TestRedisKeysExpire(t *testing.T) {
	srv := startRedis(t)
	clock := newClock(base)
	r := mustNew(t, testOptions(clock, newRedisClient(t, srv.Addr())))
	direct := newRedisClient(t, srv.Addr())
	ctx := context.Background()

	record(r, 0, 20)
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	now := clock.Now().Unix()
	tests := []struct {
		name     string
		key      string
		min, max time.Duration
	}{
		{name: "minute", key: minuteKey(floorTo(now, minuteSeconds)), min: minuteRetention, max: minuteRetention + time.Minute},
		{name: "hour", key: hourKey(floorTo(now, hourSeconds)), min: DefaultRetention, max: DefaultRetention + time.Hour},
		{name: "users", key: usersKey(auth.SchemeSession, floorTo(now, hourSeconds)), min: DefaultRetention, max: DefaultRetention + time.Hour},
	}
	for _, tt := range tests {
		ttl, err := direct.TTL(ctx, tt.key).Result()
		if err != nil || ttl < tt.min-2*time.Second || ttl > tt.max {
			t.Errorf("%s key %s TTL = %v (%v), want in [%v, %v]", tt.name, tt.key, ttl, err, tt.min, tt.max)
		}
	}
	keys, err := direct.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if len(k) < len(keyPrefix) || k[:len(keyPrefix)] != keyPrefix {
			t.Errorf("key %q lacks the %s hash tag", k, keyPrefix)
		}
	}
}
