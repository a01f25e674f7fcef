package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func TestMemoryDurableIsImmediate(t *testing.T) {
	m := NewMemory(time.Now)
	if err := m.Durable(context.Background()); err != nil {
		t.Fatalf("Durable: %v", err)
	}
	_ = m.Close()
	if err := m.Durable(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Durable after Close = %v, want ErrClosed", err)
	}
}

func TestNewRedisRefusesReplicaTimeoutNotBelowReadTimeout(t *testing.T) {
	_, err := NewRedis(RedisOptions{URL: "redis://127.0.0.1:1", MinReplicas: 1, ReplicaTimeout: time.Second, ReadTimeout: time.Second})
	if err == nil {
		t.Fatal("NewRedis accepted a WAIT timeout that the read timeout would cut")
	}
	if _, err := NewRedis(RedisOptions{URL: "redis://127.0.0.1:1", MinReplicas: -1}); err == nil {
		t.Fatal("NewRedis accepted MinReplicas -1")
	}
}

// TestRedisDurable: the barrier passes only when enough replicas hold the
// writes, fails within the replica timeout otherwise, and is off at 0.
func TestRedisDurable(t *testing.T) {
	t.Parallel()
	alone := redistest.Start(t)
	pair := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1, Sentinels: 1})
	master := pair.Data[0].Addr()
	const timeout = 150 * time.Millisecond

	tests := []struct {
		name        string
		url         string
		minReplicas int
		wantErr     bool
	}{
		{name: "off without replicas", url: alone.URL(), minReplicas: 0},
		{name: "one required, none there", url: alone.URL(), minReplicas: 1, wantErr: true},
		{name: "one required, one there", url: "redis://" + master, minReplicas: 1},
		{name: "two required, one there", url: "redis://" + master, minReplicas: 2, wantErr: true},
		{name: "sentinel, one required, one there", url: pair.URL(), minReplicas: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRedis(t, tc.url, RedisOptions{MinReplicas: tc.minReplicas, ReplicaTimeout: timeout})
			ctx := context.Background()
			if err := r.SetCtx(ctx, "k", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := r.Durable(ctx)
			took := time.Since(start)
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Durable: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotDurable) || !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("Durable = %v, want ErrNotDurable wrapping auth.ErrUnavailable", err)
			}
			if took < timeout || took > timeout+time.Second {
				t.Fatalf("Durable failed after %s, want about the replica timeout %s", took, timeout)
			}
		})
	}

	t.Run("replica stopped", func(t *testing.T) {
		r := newTestRedis(t, "redis://"+master, RedisOptions{MinReplicas: 1, ReplicaTimeout: timeout})
		pair.Data[1].Stop()
		ctx := context.Background()
		if err := r.SetCtx(ctx, "k2", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := r.Durable(ctx); !errors.Is(err, ErrNotDurable) {
			t.Fatalf("Durable with the only replica gone = %v, want ErrNotDurable", err)
		}
	})
}

// TestRedisDurableFailsOnReplacedMaster is the mechanism behind the
// Sentinel end-to-end test: after SENTINEL FAILOVER the old master still
// answers writes until the sentinels demote it (seconds later), and a client
// that has not heard +switch-master yet would acknowledge them; the barrier
// must refuse, because the old master has lost its replica and its resync
// will drop those writes.
func TestRedisDurableFailsOnReplacedMaster(t *testing.T) {
	t.Parallel()
	top := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1, Sentinels: 1})
	oldMaster := newTestRedis(t, "redis://"+top.Data[0].Addr(), RedisOptions{MinReplicas: 1, ReplicaTimeout: 150 * time.Millisecond})
	ctx := context.Background()
	if err := oldMaster.SetCtx(ctx, "before", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := oldMaster.Durable(ctx); err != nil {
		t.Fatalf("Durable before the failover: %v", err)
	}

	old, promoted := top.Failover(t)
	if old != top.Data[0].Addr() || promoted != top.Data[1].Addr() {
		t.Fatalf("failover %s -> %s, want %s -> %s", old, promoted, top.Data[0].Addr(), top.Data[1].Addr())
	}
	err := oldMaster.SetCtx(ctx, "after", []byte("v"), time.Minute)
	if err == nil {
		err = oldMaster.Durable(ctx)
	}
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("write + Durable on the replaced master = %v, want an error wrapping auth.ErrUnavailable", err)
	}
}
