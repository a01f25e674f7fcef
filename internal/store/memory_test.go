package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestMemoryCloseEndsSubscribeAndLaterCalls(t *testing.T) {
	m := NewMemory(nil)
	done := make(chan error, 1)
	go func() { done <- m.Subscribe(context.Background(), "bus", func([]byte) {}, nil) }()
	waitFor(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.subs["bus"]) == 1
	})
	must(t, m.Close())
	must(t, m.Close()) // idempotent
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe = %v; want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Subscribe did not return after Close")
	}
	if _, err := m.GetCtx(context.Background(), "k"); !errors.Is(err, ErrClosed) || !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("GetCtx after Close = %v; want ErrClosed wrapping auth.ErrUnavailable", err)
	}
}

func TestMemoryResetAndSweep(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(clk.Now)
	defer m.Close()
	ctx := context.Background()
	must(t, m.SetCtx(ctx, "short", []byte("v"), time.Second))
	must(t, m.SetCtx(ctx, "long", []byte("v"), time.Hour))
	clk.Advance(time.Minute)
	m.sweep()
	if _, ok := m.data["short"]; ok {
		t.Fatal("sweep kept an expired key")
	}
	if _, ok := m.data["long"]; !ok {
		t.Fatal("sweep dropped a live key")
	}
	must(t, m.Reset())
	wantValue(t, m, "long", "")
}

func TestMemoryHonoursCancelledContext(t *testing.T) {
	m := NewMemory(nil)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.SetCtx(ctx, "k", []byte("v"), 0); !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("SetCtx = %v; want ErrUnavailable wrapping context.Canceled", err)
	}
}

// A handler that publishes must not deadlock the bus.
func TestMemoryPublishFromHandler(t *testing.T) {
	m := NewMemory(nil)
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	go func() {
		_ = m.Subscribe(ctx, "bus", func(p []byte) {
			got <- string(p)
			if string(p) == "ping" {
				_ = m.Publish(ctx, "bus", []byte("pong"))
			}
		}, nil)
	}()
	waitHeard(t, m, got, "ping")
	deadline := time.After(2 * time.Second)
	for {
		select {
		case p := <-got:
			if p == "pong" {
				return
			}
		case <-deadline:
			t.Fatal("handler's own publish never arrived")
		}
	}
}
