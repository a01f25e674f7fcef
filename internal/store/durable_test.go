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

// TestClusterMarkerKeys: the barrier's marker on a Cluster master must hash
// to a slot that master serves, or the node answers MOVED.
func TestClusterMarkerKeys(t *testing.T) {
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 check value = %#x, want 0x31c3 (CRC-16/XMODEM)", got)
	}
	if got := crc16([]byte("foo")) & 16383; got != 12182 {
		t.Fatalf("slot of foo = %d, want 12182 (CLUSTER KEYSLOT foo)", got)
	}
	for _, slot := range []int{0, 5461, 10923, 16383} {
		if got := int(crc16([]byte(tagForSlot(slot))) & 16383); got != slot {
			t.Fatalf("tagForSlot(%d) hashes to %d", slot, got)
		}
	}
	nodes := "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected\n" +
		"67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922\n" +
		"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected [0->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] 17 0-5460\n"
	tests := []struct {
		name     string
		nodes    string
		wantSlot int
		wantOK   bool
	}{
		{name: "own range after a migration entry", nodes: nodes, wantSlot: 17, wantOK: true},
		{name: "replica: no own slots", nodes: "abc 127.0.0.1:1@2 myself,slave def 0 0 1 connected\n", wantOK: false},
		{name: "empty", nodes: "", wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			slot, ok := firstOwnSlot(tc.nodes)
			if ok != tc.wantOK || (ok && slot != tc.wantSlot) {
				t.Fatalf("firstOwnSlot = %d, %v; want %d, %v", slot, ok, tc.wantSlot, tc.wantOK)
			}
		})
	}
}
