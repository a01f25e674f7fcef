package store

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// fast timeouts make an outage visible quickly; the assertion below is that
// calls fail within a small multiple of them instead of hanging.
var fast = RedisOptions{
	DialTimeout:  200 * time.Millisecond,
	ReadTimeout:  200 * time.Millisecond,
	WriteTimeout: 200 * time.Millisecond,
	PoolTimeout:  200 * time.Millisecond,
}

func TestRedisOutageAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.URL(), fast)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var reconnects atomic.Int32
	got := make(chan string, 100)
	subDone := make(chan error, 1)
	go func() {
		subDone <- r.Subscribe(ctx, "bus", func(p []byte) { got <- string(p) }, func() { reconnects.Add(1) })
	}()
	waitHeard(t, r, got, "before")

	srv.Stop()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{name: "Get", call: func(context.Context) error { _, err := r.Get("k"); return err }},
		{name: "GetCtx", call: func(ctx context.Context) error { _, err := r.GetCtx(ctx, "k"); return err }},
		{name: "SetCtx", call: func(ctx context.Context) error { return r.SetCtx(ctx, "k", []byte("v"), time.Minute) }},
		{name: "DeleteCtx", call: func(ctx context.Context) error { return r.DeleteCtx(ctx, "k") }},
		{name: "SetNX", call: func(ctx context.Context) error { _, err := r.SetNX(ctx, "k", []byte("v"), 0); return err }},
		{name: "GetDel", call: func(ctx context.Context) error { _, err := r.GetDel(ctx, "k"); return err }},
		{name: "Incr", call: func(ctx context.Context) error { _, _, err := r.Incr(ctx, "k", time.Minute); return err }},
		{name: "SAdd", call: func(ctx context.Context) error { return r.SAdd(ctx, "s", time.Minute, "a") }},
		{name: "SMembers", call: func(ctx context.Context) error { _, err := r.SMembers(ctx, "s"); return err }},
		{name: "HSet", call: func(ctx context.Context) error { return r.HSet(ctx, "h", time.Minute, "f", []byte("v")) }},
		{name: "HGetAll", call: func(ctx context.Context) error { _, err := r.HGetAll(ctx, "h"); return err }},
		{name: "Publish", call: func(ctx context.Context) error { return r.Publish(ctx, "bus", []byte("x")) }},
		{name: "Ping", call: func(ctx context.Context) error { return r.Ping(ctx) }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call(ctx)
		took := time.Since(start)
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Errorf("%s with Redis down: err = %v; want auth.ErrUnavailable", c.name, err)
		}
		if took > time.Second {
			t.Errorf("%s with Redis down took %v; want a fast failure", c.name, took)
		}
	}

	srv.Restart()
	waitFor(t, func() bool { return r.Ping(ctx) == nil })
	must(t, r.SetCtx(ctx, "k", []byte("back"), 0))
	wantValue(t, r, "k", "back")
	waitFor(t, func() bool { time.Sleep(20 * time.Millisecond); return reconnects.Load() > 0 })
	waitHeard(t, r, got, "after")

	cancel()
	select {
	case err := <-subDone:
		if err != nil {
			t.Fatalf("Subscribe returned %v; want nil after cancel", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
	}
}

// waitHeard publishes msg until the subscriber delivers it.
func waitHeard(t *testing.T, st Store, got <-chan string, msg string) {
	t.Helper()
	waitFor(t, func() bool {
		_ = st.Publish(context.Background(), "bus", []byte(msg))
		select {
		case p := <-got:
			return p == msg
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
}

func TestRedisResetIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.URL(), RedisOptions{})
	must(t, r.Set("keep", []byte("me"), 0))
	if err := r.Reset(); !errors.Is(err, ErrResetRefused) {
		t.Fatalf("Reset = %v; want ErrResetRefused", err)
	}
	wantValue(t, r, "keep", "me")
}

func TestRedisCloseEndsSubscribe(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.URL(), RedisOptions{})
	done := make(chan error, 1)
	go func() { done <- r.Subscribe(context.Background(), "bus", func([]byte) {}, nil) }()
	time.Sleep(50 * time.Millisecond)
	must(t, r.Close())
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe = %v; want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Subscribe did not return after Close")
	}
}

func TestOpen(t *testing.T) {
	t.Run("empty URL gives the memory store", func(t *testing.T) {
		st, err := Open(RedisOptions{}, nil)
		must(t, err)
		defer st.Close()
		if _, ok := st.(*Memory); !ok || st.Redis() != nil {
			t.Fatalf("Open(\"\") = %T; want *Memory with no Redis client", st)
		}
	})
	t.Run("reachable Redis", func(t *testing.T) {
		srv := redistest.Start(t)
		st, err := Open(RedisOptions{URL: srv.URL()}, nil)
		must(t, err)
		defer st.Close()
		if st.Redis() == nil {
			t.Fatal("Redis() is nil for a Redis store")
		}
	})
	t.Run("unreachable Redis fails fast and does not show the password", func(t *testing.T) {
		port := redistest.FreePort(t)
		o := fast
		o.URL = "redis://u:s3cret-pw@127.0.0.1:" + itoa(port) + "/0"
		start := time.Now()
		_, err := Open(o, nil)
		if !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("Open = %v; want auth.ErrUnavailable", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("Open took %v", took)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("error shows the password: %v", err)
		}
	})
	t.Run("bad URL", func(t *testing.T) {
		_, err := Open(RedisOptions{URL: "http://u:s3cret-pw@h"}, nil)
		if !errors.Is(err, ErrBadURL) || strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("Open = %v; want ErrBadURL without the password", err)
		}
	})
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n > 0 || i == len(b) {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
