package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
)

func serveConfig(t *testing.T, addr string) *config.Config {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Addr = addr
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServeRefusesABusyPortBeforeSayingListening: a port already in use
// makes serve fail with the listen error, and "tokenshift listening" is never
// logged.
func TestServeRefusesABusyPortBeforeSayingListening(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logs logbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = serve(ctx, serveConfig(t, busy.Addr().String()), slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "listen "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port = %v, want a listen error", err)
	}
	if strings.Contains(logs.String(), "tokenshift listening") {
		t.Errorf("serve said it was listening on a port it could not bind:\n%s", logs.String())
	}
}

// TestServeLogsTheBoundAddress: the "listening" line comes once the socket is
// bound, with the real address (port 0 resolved), so whoever reads it can
// connect at once.
func TestServeLogsTheBoundAddress(t *testing.T) {
	var logs logbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveConfig(t, "127.0.0.1:0"), slog.New(slog.NewJSONHandler(&logs, nil)), nil)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	var addr string
	deadline := time.Now().Add(15 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "tokenshift listening" {
				addr, _ = rec["addr"].(string)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("listening address logged = %q, want the bound one:\n%s", addr, logs.String())
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial the logged address %s: %v", addr, err)
	}
	c.Close()
}
