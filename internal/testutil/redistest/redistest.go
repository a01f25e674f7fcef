// Package redistest starts a private redis-server on a free loopback port for a
// test, waits until it answers PING, and kills it when the test ends. Tests can
// stop and restart it on purpose to exercise failure handling.
//
// When redis-server is not installed the test is skipped, except under CI=true
// where a missing server is a failure: CI must never silently skip real-Redis tests.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	args []string // extra redis-server arguments (StartWith)

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start launches redis-server for t and registers its cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, FreePort(t))
}

// StartWith launches redis-server for t on port with extra arguments (for
// instance a replica's or a cluster node's settings), after the defaults so
// they can override them.
func StartWith(t testing.TB, port int, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		citest.Unavailable(t, "redis-server not found on PATH")
	}
	s := &Server{t: t, Port: port, dir: t.TempDir(), args: args}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is a redis:// URL for database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.Port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--protected-mode", "no",
	)
	cmd.Args = append(cmd.Args, s.args...)
	cmd.Dir = s.dir
	cmd.Stdout = nil
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr()) == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	s.t.Fatalf("redis-server on %s did not answer PING within 10s", s.Addr())
}

// Stop kills the server (data is lost: it keeps nothing on disk). Safe to call twice.
func (s *Server) Stop() { kill(&s.mu, &s.cmd) }

// kill takes the process *cmd (guarded by mu) away and kills it, once:
// a second call finds nil.
func kill(mu *sync.Mutex, cmd **exec.Cmd) {
	mu.Lock()
	c := *cmd
	*cmd = nil
	mu.Unlock()
	if c == nil || c.Process == nil {
		return
	}
	_ = c.Process.Kill()
	_, _ = c.Process.Wait()
}

// Pause freezes the server (SIGSTOP): connections stay open and are even
// accepted, but nothing is answered, as with a server stuck in a long command
// or a network that drops packets. Resume undoes it; Stop works on a paused
// server too.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		s.t.Fatalf("redis-server on %s is not running", s.Addr())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal redis-server: %v", err)
	}
}

// Restart starts the server again on the same port after Stop, from the last
// snapshot a SAVE wrote, if any (else empty: nothing else is persisted).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// RestartEmpty starts the server again on the same port with no data, even
// if a snapshot was saved (SAVE writes dump.rdb into the server's directory,
// and Restart loads it: a restart from an older snapshot).
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	if err := os.Remove(filepath.Join(s.dir, "dump.rdb")); err != nil && !os.IsNotExist(err) {
		s.t.Fatalf("remove the snapshot: %v", err)
	}
	s.start()
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}
