package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// recoveryLimit is how soon after a replica's promotion the shard it took
// over must serve again (issue 10, item 11: it used to stay dark until
// go-redis's one-minute topology refresh).
const recoveryLimit = 2 * time.Second

// On a real Redis Cluster (three masters, one replica each), the master that
// holds a login's session and the usage counters is killed with SIGKILL.
// Within recoveryLimit of its replica's promotion the session works again, a
// new login works, and the usage report equals every answer given, before,
// during and after the failover (or says that Redis lost data).
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	rc := redistest.StartCluster(t, 3, 1)
	const flush = 200 * time.Millisecond
	a := start(t, "TOKENSHIFT_STORAGE_REDIS_URL="+rc.URL(), "TOKENSHIFT_JWT_KEYS_DIR="+keysDir(t),
		"TOKENSHIFT_CONFIG="+usageConfig(t), "TOKENSHIFT_USAGE_FLUSH_INTERVAL="+flush.String(),
		"TOKENSHIFT_STORAGE_REDIS_READ_TIMEOUT=300ms", "TOKENSHIFT_STORAGE_REDIS_DIAL_TIMEOUT=300ms",
		"TOKENSHIFT_STORAGE_REDIS_POOL_TIMEOUT=300ms")
	token := opsToken(t, a)

	// Log in until the session lands on the shard of the usage counters
	// (one in three does), so that one kill takes both down.
	usageMaster := rc.MasterOf("{tokenshift:usage}:since")
	var session cred
	for i := 0; i < 30 && session.cookies == nil; i++ {
		c := a.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
		sid, _, _ := strings.Cut(c.Value, ".")
		if rc.MasterOf(store.LoginKey(sid)) == usageMaster {
			session = cred{name: "web session", cookies: []*http.Cookie{c}, scheme: "session", client: "web"}
		}
	}
	if session.cookies == nil {
		t.Fatal("no session of 30 logins landed on the usage counters' shard")
	}
	replicas := rc.ReplicasOf(usageMaster)
	if len(replicas) != 1 {
		t.Fatalf("master %s has replicas %v; want one", usageMaster.Addr(), replicas)
	}

	tl := newTally()
	ask := func() event {
		t.Helper()
		e, err := send(a, session)
		if err != nil {
			t.Fatal(err)
		}
		tl.add(e, 1)
		return e
	}
	for range 5 {
		if e := ask(); e.outcome != "accepted" {
			t.Fatalf("session before the failover counted as %+v", e)
		}
	}
	waitExact(t, a, token, "window=1h", tl.snapshot(), time.Now(), 5*time.Second)
	time.Sleep(2 * flush) // the operator's report reads are flushed too
	rc.WaitReplicated(usageMaster)

	usageMaster.Stop() // SIGKILL
	killed := time.Now()
	promotedCh := make(chan time.Time, 1)
	go func() { promotedCh <- rc.WaitMaster(replicas[0], 15*time.Second) }()
	var promoted time.Time
	outage := 0
	for promoted.IsZero() {
		if ask().outcome != "accepted" {
			outage++
		}
		select {
		case promoted = <-promotedCh:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("replica %s promoted %v after the kill; %d session lookups failed meanwhile", replicas[0].Addr(), promoted.Sub(killed).Round(time.Millisecond), outage)

	// The session and a new login, until both work.
	var fresh *http.Cookie
	sessionOK := false
	for !sessionOK || fresh == nil {
		if since := time.Since(promoted); since > recoveryLimit {
			t.Fatalf("%v after the promotion: session works %v, login works %v\n%s", since.Round(time.Millisecond), sessionOK, fresh != nil, a.logs.String())
		}
		if !sessionOK {
			sessionOK = ask().outcome == "accepted"
		}
		if fresh == nil {
			r := a.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass, "client_id": "web"}})
			switch r.status {
			case 200:
				fresh = r.cookie("ts_session")
			case 503:
			default:
				t.Fatalf("login after the failover: %d %s", r.status, r.body)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("session and login work again %v after the promotion", time.Since(promoted).Round(time.Millisecond))
	newSession := cred{name: "new web session", cookies: []*http.Cookie{fresh}, scheme: "session", client: "web"}
	for range 5 {
		for _, c := range []cred{session, newSession} {
			e, err := send(a, c)
			if err != nil {
				t.Fatal(err)
			}
			if e.outcome != "accepted" {
				t.Fatalf("%s after the recovery counted as %+v", c.name, e)
			}
			tl.add(e, 1)
		}
	}

	// Usage: every answer is counted once, or the report says Redis lost
	// some (a flush acknowledged by the old master and not yet replicated).
	want := tl.snapshot()
	ended := time.Now()
	for {
		rep := readReport(t, a, token, "window=1h")
		diff := mismatches(rep, want)
		if len(diff) == 0 {
			t.Logf("usage exact %v after the traffic ended (data_lost_at %v)", time.Since(ended).Round(time.Millisecond), rep.DataLostAt)
			break
		}
		if time.Since(ended) > 5*time.Second {
			if rep.DataLostAt != nil {
				t.Logf("usage differs after the failover, and the report says so (data_lost_at %v):\n  %s", rep.DataLostAt, strings.Join(diff, "\n  "))
				break
			}
			t.Fatalf("usage differs from the answers 5s after the traffic ended, with no loss reported:\n  %s", strings.Join(diff, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
