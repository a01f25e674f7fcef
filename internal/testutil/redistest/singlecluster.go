package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
)

// SingleNodeCluster is one redis-server in cluster mode that owns all 16384
// slots. It is no test of failover, but it is a real Cluster for what a
// single command sees: go-redis's cluster client, and Redis refusing a
// multi-key command or script whose keys hash to different slots
// (CROSSSLOT) even when one node owns both.
type SingleNodeCluster struct {
	Port int
}

// Addr is host:port of the node.
func (c *SingleNodeCluster) Addr() string { return "127.0.0.1:" + strconv.Itoa(c.Port) }

// URL is the redis+cluster:// URL of the node.
func (c *SingleNodeCluster) URL() string { return "redis+cluster://" + c.Addr() }

// StartSingleNodeCluster launches the node for t, assigns it every slot, waits
// for cluster_state:ok and registers its cleanup.
func StartSingleNodeCluster(t testing.TB) *SingleNodeCluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		citest.Unavailable(t, "redis-server not found on PATH")
	}
	c := &SingleNodeCluster{Port: FreePort(t)}
	dir := t.TempDir()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(c.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--protected-mode", "no",
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
	)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server in cluster mode: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for ping(c.Addr()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("cluster node on %s did not answer PING within 10s", c.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if reply, err := command(c.Addr(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || !strings.HasPrefix(reply, "+OK") {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %q, %v", reply, err)
	}
	for {
		reply, err := command(c.Addr(), "CLUSTER", "INFO")
		if err == nil && strings.Contains(reply, "cluster_state:ok") {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster node on %s not ok within 10s: %q, %v", c.Addr(), reply, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command sends one command in RESP and returns the first reply line, or
// the whole payload of a bulk-string reply.
func command(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "$") {
		return line, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 {
		return line, err
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
