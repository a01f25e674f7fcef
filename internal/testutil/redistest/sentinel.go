package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
)

// SentinelOptions shape a Sentinel topology. Zero values take the defaults.
type SentinelOptions struct {
	// MasterName is the name the sentinels monitor (default "tsmaster").
	MasterName string
	// Replicas of the first master (default 1).
	Replicas int
	// Sentinels (default 3; the quorum is a majority of them).
	Sentinels int
	// DownAfter is down-after-milliseconds (default 1s) and FailoverTimeout
	// failover-timeout (default 5s): small, so that tests fail over in seconds.
	DownAfter, FailoverTimeout time.Duration
}

func (o SentinelOptions) withDefaults() SentinelOptions {
	if o.MasterName == "" {
		o.MasterName = "tsmaster"
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Sentinels <= 0 {
		o.Sentinels = 3
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	return o
}

// Sentinel is a Redis Sentinel topology owned by one test, on loopback: a
// master, its replicas (Data[0] is the first master) and the sentinels
// monitoring them, every process started with `redis-server` and killed when
// the test ends. Nothing is persisted.
type Sentinel struct {
	t         testing.TB
	opts      SentinelOptions
	Data      []*Node
	Sentinels []*Node
}

// Node is one redis-server process of a topology.
type Node struct {
	Port int
	dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is host:port of the node.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.Port) }

// Stop kills the node. Safe to call twice.
func (n *Node) Stop() { kill(&n.mu, &n.cmd) }

func (n *Node) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("redis-server", n.args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	n.mu.Lock()
	n.cmd = cmd
	n.mu.Unlock()
	t.Cleanup(n.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(n.Addr()) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not answer PING within 10s", n.Addr())
}

// Client is a go-redis client of the node itself (no topology), closed when
// the test ends.
func (n *Node) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: n.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// StartSentinel starts the topology and returns once every replica has
// finished its first sync and every sentinel knows every replica and every
// other sentinel, so a failover can be asked for at once.
func StartSentinel(t testing.TB, o SentinelOptions) *Sentinel {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		citest.Unavailable(t, "redis-server not found on PATH")
	}
	o = o.withDefaults()
	s := &Sentinel{t: t, opts: o}
	for i := 0; i <= o.Replicas; i++ {
		n := &Node{Port: FreePort(t), dir: t.TempDir()}
		n.args = []string{
			"--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--dir", n.dir,
			// Any node may become the master: diskless, undelayed syncs make
			// the first sync and the old master's resync take milliseconds.
			"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
		}
		if i > 0 {
			n.args = append(n.args, "--replicaof", "127.0.0.1", strconv.Itoa(s.Data[0].Port))
		}
		n.start(t)
		s.Data = append(s.Data, n)
	}
	quorum := o.Sentinels/2 + 1
	for range o.Sentinels {
		n := &Node{Port: FreePort(t), dir: t.TempDir()}
		conf := filepath.Join(n.dir, "sentinel.conf") // sentinels rewrite their config: a file of their own
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\nprotected-mode no\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s %d\n"+
			"sentinel parallel-syncs %s 1\n",
			n.Port, n.dir, o.MasterName, s.Data[0].Port, quorum,
			o.MasterName, o.DownAfter.Milliseconds(), o.MasterName, o.FailoverTimeout.Milliseconds(), o.MasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		n.args = []string{conf, "--sentinel"}
		n.start(t)
		s.Sentinels = append(s.Sentinels, n)
	}
	s.waitKnown(t, 20*time.Second)
	return s
}

// URL is the redis+sentinel:// URL of the topology (internal/store/redisurl.go).
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.Sentinels))
	for i, n := range s.Sentinels {
		addrs[i] = n.Addr()
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + s.opts.MasterName
}

// MasterName is the name the sentinels monitor.
func (s *Sentinel) MasterName() string { return s.opts.MasterName }

func (s *Sentinel) sentinel(t testing.TB, i int) *redis.SentinelClient {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinels[i].Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// waitKnown waits until the topology can fail over.
func (s *Sentinel) waitKnown(t testing.TB, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for _, r := range s.Data[1:] {
		c := r.Client(t)
		for !strings.Contains(c.Info(ctx, "replication").Val(), "master_link_status:up") {
			if time.Now().After(deadline) {
				t.Fatalf("replica %s did not finish its first sync within %s", r.Addr(), within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// A replica reports its link up once it has loaded the first sync, but
	// after a diskless sync the master streams writes to it only once it
	// has sent its first REPLCONF ACK, which replicas do once a second:
	// until then nothing is acknowledged (WAIT answers 0). Ready is a write
	// every replica acknowledged.
	m := s.Data[0].Client(t)
	for {
		m.Set(ctx, "redistest:ready", "1", time.Minute)
		if n, _ := m.Wait(ctx, len(s.Data)-1, 100*time.Millisecond).Result(); n >= int64(len(s.Data)-1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas of %s did not acknowledge a write within %s", s.Data[0].Addr(), within)
		}
	}
	for i := range s.Sentinels {
		c := s.sentinel(t, i)
		for {
			m, err := c.Master(ctx, s.opts.MasterName).Result()
			if err == nil && m["num-slaves"] == strconv.Itoa(s.opts.Replicas) && m["num-other-sentinels"] == strconv.Itoa(s.opts.Sentinels-1) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s does not know the whole topology within %s: %v %v", s.Sentinels[i].Addr(), within, m, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// MasterAddr is the master as the first sentinel names it.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	a, err := s.sentinel(t, 0).GetMasterAddrByName(context.Background(), s.opts.MasterName).Result()
	if err != nil || len(a) != 2 {
		t.Fatalf("get-master-addr-by-name: %v %v", a, err)
	}
	return a[0] + ":" + a[1]
}

// Node returns the data node at addr, or nil.
func (s *Sentinel) Node(addr string) *Node {
	for _, n := range s.Data {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Failover asks the first sentinel for a failover (SENTINEL FAILOVER: the
// old master keeps running and is demoted later, the case where writes can be
// lost) and returns once every sentinel names the new master.
func (s *Sentinel) Failover(t testing.TB) (oldAddr, newAddr string) {
	t.Helper()
	ctx := context.Background()
	oldAddr = s.MasterAddr(t)
	deadline := time.Now().Add(s.opts.FailoverTimeout + 10*time.Second)
	for {
		err := s.sentinel(t, 0).Failover(ctx, s.opts.MasterName).Err()
		if err == nil {
			break
		}
		// NOGOODSLAVE: the sentinel's view of the replica is not fresh yet.
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "NOGOODSLAVE") {
			t.Fatalf("sentinel failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range s.Sentinels {
		c := s.sentinel(t, i)
		for {
			a, err := c.GetMasterAddrByName(ctx, s.opts.MasterName).Result()
			if err == nil && len(a) == 2 && a[0]+":"+a[1] != oldAddr {
				newAddr = a[0] + ":" + a[1]
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s still names %s as master", s.Sentinels[i].Addr(), oldAddr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return oldAddr, newAddr
}

// WaitSettled waits until the master at masterAddr has every other data node
// as a synced replica: after a failover, until the sentinels have demoted the
// old master and it has resynced (which drops whatever it accepted after
// the promotion).
func (s *Sentinel) WaitSettled(t testing.TB, masterAddr string, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	_, port, _ := strings.Cut(masterAddr, ":")
	for _, n := range s.Data {
		if n.Addr() == masterAddr {
			continue
		}
		c := n.Client(t)
		for {
			info := c.Info(ctx, "replication").Val()
			if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+port+"\r\n") && strings.Contains(info, "master_link_status:up") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is not a synced replica of %s within %s:\n%s", n.Addr(), masterAddr, within, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
