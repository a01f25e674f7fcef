package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
)

// ClusterNodeTimeout is the cluster-node-timeout of the clusters StartCluster
// makes: a dead master is marked failed and its replica elected about one to
// two of these after it stops answering (Redis's default, 15 s, would make
// every failover test long).
const ClusterNodeTimeout = time.Second

// Cluster is a Redis Cluster on loopback owned by a test: masters, each with
// its replicas, made with redis-cli --cluster create. Its nodes are Servers,
// so a test can Stop (kill -9), Pause or Restart any of them.
type Cluster struct {
	t     testing.TB
	Nodes []*Server

	mu      sync.Mutex
	clients map[int]*redis.Client // by port: a plain client per node, for inspection
}

// StartCluster starts masters*(1+replicas) nodes and joins them into one
// cluster. It returns when every node sees all slots served, and every
// replica has finished its first sync with its master (a replica that has
// never synced refuses to take over, so a failover test must not kill a
// master before that).
func StartCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		citest.Unavailable(t, "redis-cli not found on PATH (it creates the cluster)")
	}
	c := &Cluster{t: t, clients: map[int]*redis.Client{}}
	t.Cleanup(c.closeClients)
	used := map[int]bool{}
	for range masters * (1 + replicas) {
		port := clusterPort(t, used)
		c.Nodes = append(c.Nodes, StartWith(t, port,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout/time.Millisecond)),
			// Redis 7 syncs a new replica diskless after a 5 s delay by default.
			"--repl-diskless-sync-delay", "0",
		))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitFormed(masters * (1 + replicas))
	return c
}

// clusterPort is a free loopback port whose cluster bus port (port + 10000)
// is free too.
func clusterPort(t testing.TB, used map[int]bool) int {
	t.Helper()
	for range 200 {
		p := FreePort(t)
		if p+10000 > 65535 || used[p] || used[p+10000] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		used[p], used[p+10000] = true, true
		return p
	}
	t.Fatal("no free port pair (port, port+10000) for a cluster node")
	return 0
}

// Addrs lists every node's host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL is the redis+cluster:// URL naming every node as a seed.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") }

func (c *Cluster) client(s *Server) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[s.Port]; ok {
		return cl
	}
	cl := redis.NewClient(&redis.Options{
		Addr: s.Addr(), MaxRetries: -1, DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		DialerRetries: 1, DisableIdentity: true,
	})
	c.clients[s.Port] = cl
	return cl
}

func (c *Cluster) closeClients() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.clients {
		_ = cl.Close()
	}
}

// running reports whether s has not been stopped.
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Do runs one command on node s (not routed: the node answers for itself).
func (c *Cluster) Do(s *Server, args ...any) (any, error) {
	if !s.running() {
		return nil, fmt.Errorf("%s is stopped", s.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.client(s).Do(ctx, args...).Result()
}

// info returns one field of INFO section on s ("" when absent).
func (c *Cluster) info(s *Server, section, field string) string {
	v, err := c.Do(s, "INFO", section)
	if err != nil {
		return ""
	}
	text, _ := v.(string)
	return infoField(text, field)
}

func (c *Cluster) waitFormed(n int) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, s := range c.Nodes {
			if c.clusterInfo(s, "cluster_state") != "ok" ||
				c.clusterInfo(s, "cluster_known_nodes") != strconv.Itoa(n) ||
				c.clusterInfo(s, "cluster_slots_ok") != "16384" {
				ok = false
				break
			}
			if c.info(s, "replication", "role") == "slave" && c.info(s, "replication", "master_link_status") != "up" {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster on %v did not form within 30s", c.Addrs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) clusterInfo(s *Server, field string) string {
	v, err := c.Do(s, "CLUSTER", "INFO")
	if err != nil {
		return ""
	}
	text, _ := v.(string)
	return infoField(text, field)
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id, master string
	port       int
	flags      string
	slots      [][2]int
}

// nodes reads CLUSTER NODES from the first node that answers, other than skip.
func (c *Cluster) nodes(skip *Server) []clusterNode {
	c.t.Helper()
	for _, s := range c.Nodes {
		if s == skip {
			continue
		}
		v, err := c.Do(s, "CLUSTER", "NODES")
		if err != nil {
			continue
		}
		text, _ := v.(string)
		var out []clusterNode
		for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			_, p, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(p)
			n := clusterNode{id: f[0], port: port, flags: f[2], master: f[3]}
			for _, r := range f[8:] {
				if strings.HasPrefix(r, "[") { // a slot being migrated
					continue
				}
				lo, hi, found := strings.Cut(r, "-")
				a, _ := strconv.Atoi(lo)
				b := a
				if found {
					b, _ = strconv.Atoi(hi)
				}
				n.slots = append(n.slots, [2]int{a, b})
			}
			out = append(out, n)
		}
		return out
	}
	c.t.Fatal("no cluster node answered CLUSTER NODES")
	return nil
}

func (c *Cluster) byPort(port int) *Server {
	for _, s := range c.Nodes {
		if s.Port == port {
			return s
		}
	}
	c.t.Fatalf("CLUSTER NODES names port %d, which is not one of this cluster's nodes", port)
	return nil
}

// Slot is the hash slot of key, as the cluster computes it.
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	for _, s := range c.Nodes {
		if v, err := c.Do(s, "CLUSTER", "KEYSLOT", key); err == nil {
			return int(v.(int64))
		}
	}
	c.t.Fatal("no cluster node answered CLUSTER KEYSLOT")
	return 0
}

// MasterOf returns the node that serves key's slot now.
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	slot := c.Slot(key)
	for _, n := range c.nodes(nil) {
		if !strings.Contains(n.flags, "master") || strings.Contains(n.flags, "fail") {
			continue
		}
		for _, r := range n.slots {
			if slot >= r[0] && slot <= r[1] {
				return c.byPort(n.port)
			}
		}
	}
	c.t.Fatalf("no master serves slot %d of %q", slot, key)
	return nil
}

// ReplicasOf returns the replicas of master.
func (c *Cluster) ReplicasOf(master *Server) []*Server {
	c.t.Helper()
	ns := c.nodes(master)
	id := ""
	for _, n := range ns {
		if n.port == master.Port {
			id = n.id
		}
	}
	var out []*Server
	for _, n := range ns {
		if id != "" && n.master == id {
			out = append(out, c.byPort(n.port))
		}
	}
	return out
}

// WaitReplicated waits until every replica of master has applied everything
// master had written when it was called, so what was acknowledged before
// survives a kill of master.
func (c *Cluster) WaitReplicated(master *Server) {
	c.t.Helper()
	want, err := strconv.ParseInt(c.info(master, "replication", "master_repl_offset"), 10, 64)
	if err != nil {
		c.t.Fatalf("master_repl_offset of %s: %v", master.Addr(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range c.ReplicasOf(master) {
		for {
			got, _ := strconv.ParseInt(c.info(r, "replication", "slave_repl_offset"), 10, 64)
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("replica %s is at offset %d, master %s at %d after 10s", r.Addr(), got, master.Addr(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// WaitMaster waits until s reports itself master, and returns when it was
// first seen so (within the polling interval of 10 ms).
func (c *Cluster) WaitMaster(s *Server, limit time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if c.info(s, "replication", "role") == "master" {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s was not promoted to master within %v", s.Addr(), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// String names the nodes, for test logs.
func (c *Cluster) String() string { return fmt.Sprintf("redis cluster %v", c.Addrs()) }

// infoField is one field of an INFO-style answer (lines of field:value), ""
// when absent.
func infoField(text, field string) string {
	for line := range strings.SplitSeq(text, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == field {
			return val
		}
	}
	return ""
}
