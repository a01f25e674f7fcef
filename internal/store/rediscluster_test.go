package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// pausedCalls are the store calls timed against a paused Redis: a plain
// command, a script (EVALSHA) and a hash read, as a login and a session
// lookup use them.
func pausedCalls(r *Redis, key string) []struct {
	name string
	call func(ctx context.Context) error
} {
	return []struct {
		name string
		call func(ctx context.Context) error
	}{
		{name: "GetCtx", call: func(ctx context.Context) error { _, err := r.GetCtx(ctx, key); return err }},
		{name: "Incr", call: func(ctx context.Context) error { _, _, err := r.Incr(ctx, key+":n", time.Minute); return err }},
		{name: "HGetAll", call: func(ctx context.Context) error { _, err := r.HGetAll(ctx, key+":h"); return err }},
	}
}

// assertOneReadTimeout times each call against a paused node: it must fail
// with ErrUnavailable after about one read timeout. go-redis's retries used
// to make it two (standalone, MaxRetries 1) or four (Cluster, MaxRedirects 3).
func assertOneReadTimeout(t *testing.T, r *Redis, key string, readTimeout time.Duration) {
	t.Helper()
	for _, c := range pausedCalls(r, key) {
		start := time.Now()
		err := c.call(context.Background())
		took := time.Since(start)
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s on a paused Redis: err = %v; want auth.ErrUnavailable", c.name, err)
		}
		if bound := readTimeout * 13 / 10; took > bound || took < readTimeout*9/10 {
			t.Errorf("%s on a paused Redis failed after %v; want one read timeout (%v), under %v", c.name, took.Round(time.Millisecond), readTimeout, bound)
		} else {
			t.Logf("%s on a paused Redis failed after %v (read timeout %v): %v", c.name, took.Round(time.Millisecond), readTimeout, err)
		}
	}
}

func TestRedisPausedCallTakesOneReadTimeout(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const readTimeout = 400 * time.Millisecond
	r := newTestRedis(t, srv.URL(), RedisOptions{ReadTimeout: readTimeout, WriteTimeout: readTimeout, DialTimeout: readTimeout})
	must(t, r.Ping(context.Background())) // a pooled connection, as in service
	srv.Pause()
	defer srv.Resume()
	assertOneReadTimeout(t, r, "k", readTimeout)
}

// A Redis Cluster of three masters with one replica each. A paused master
// costs one read timeout per call (item 16), and after a master is killed
// the store uses the promoted replica within about a second of the
// promotion, with and without traffic in between (item 11; go-redis alone
// waited for its one-minute topology refresh).
func TestRedisClusterTimeoutsAndFailover(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3, 1)
	// Three paused calls must end before the cluster node timeout (1 s).
	const readTimeout = 250 * time.Millisecond
	r := newTestRedis(t, c.URL(), RedisOptions{ReadTimeout: readTimeout, WriteTimeout: readTimeout, DialTimeout: readTimeout, PoolTimeout: readTimeout})
	ctx := context.Background()

	t.Run("paused master", func(t *testing.T) {
		const key = "{paused}k"
		must(t, r.SetCtx(ctx, key, []byte("v"), 0))
		m := c.MasterOf(key)
		// Shorter than the cluster node timeout: no failover starts.
		m.Pause()
		defer m.Resume()
		assertOneReadTimeout(t, r, key, readTimeout)
	})

	tests := []struct {
		name string
		idle bool // no call between the kill and the promotion
	}{
		{name: "killed master, calls during the failover"},
		{name: "killed master, idle during the failover", idle: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A key on a shard that still has a replica to promote.
			key, m := "", (*redistest.Server)(nil)
			for j := range 100 {
				key = "{kill" + itoa(i) + "-" + itoa(j) + "}k"
				if m = c.MasterOf(key); len(c.ReplicasOf(m)) == 1 {
					break
				}
			}
			replicas := c.ReplicasOf(m)
			if len(replicas) != 1 {
				t.Fatalf("master %s has replicas %v; want one", m.Addr(), replicas)
			}
			must(t, r.SetCtx(ctx, key, []byte("before"), 0))
			c.WaitReplicated(m)
			m.Stop() // SIGKILL
			killed := time.Now()
			promotedCh := make(chan time.Time, 1)
			go func() { promotedCh <- c.WaitMaster(replicas[0], 15*time.Second) }()
			var promoted time.Time
			if tt.idle {
				promoted = <-promotedCh
			} else {
				for promoted.IsZero() {
					_, _ = r.GetCtx(ctx, key)
					select {
					case promoted = <-promotedCh:
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			t.Logf("replica %s promoted %v after the kill", replicas[0].Addr(), promoted.Sub(killed).Round(time.Millisecond))
			for {
				v, err := r.GetCtx(ctx, key)
				if err == nil {
					if string(v) != "before" {
						t.Fatalf("after the failover %s = %q; want %q", key, v, "before")
					}
					break
				}
				if since := time.Since(promoted); since > 1500*time.Millisecond {
					t.Fatalf("the store still fails %v after the promotion: %v", since.Round(time.Millisecond), err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(promoted)
			t.Logf("served again %v after the promotion", took.Round(time.Millisecond))
			must(t, r.SetCtx(ctx, key, []byte("after"), 0))
			wantValue(t, r, key, "after")
		})
	}
}
