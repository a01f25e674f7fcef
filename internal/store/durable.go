package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Why a barrier and not a WAIT after each write: Redis replicates one ordered
// stream per master, and WAIT n t blocks until the replicas have acknowledged
// the stream up to the last write of the connection that sends it. A write
// (marker) and WAIT sent in one pipeline, hence on one connection, after the
// caller's writes have answered therefore covers every earlier write this
// process made on that master, whichever pooled connection carried it, and
// also the writes other packages make through Redis() (scripts, pipelines).
//
// What it catches in a Sentinel failover: until go-redis hears
// +switch-master, writes still go to the old master, which answers them (it
// is demoted only seconds later and then drops them in its resync). Its
// replica has left it to become the master, so the old master finds no
// replica to acknowledge and the barrier fails: the caller answers 503
// instead of a success that would not survive. A demoted master answers
// READONLY to the marker, which fails the same way.
//
// What it cannot catch: the writes going to one master and the marker to
// another, because go-redis switched masters between them, when the new
// master already has min_replicas acknowledging replicas. That needs a
// switch inside the few milliseconds between a request's last write and its
// barrier and at least two replicas (docs/architecture.md, Redis topologies).

// durableKey is the marker the barrier writes. One key for every request:
// its value does not matter, only that SET always enters the replication
// stream.
const durableKey = "ts:durable"

// Durable is the barrier of the Store contract: see durable.go's comment.
func (r *Redis) Durable(ctx context.Context) error {
	if r.minReplicas <= 0 {
		return nil
	}
	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	cc, ok := r.client.(*redis.ClusterClient)
	if !ok {
		return r.waitOn(ctx, r.client, durableKey)
	}
	// A request's keys may live on any shard and the barrier does not know
	// which, so every master waits for its own replicas, in parallel.
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		return r.waitOnNode(ctx, node)
	})
	if err != nil && !errors.Is(err, auth.ErrUnavailable) {
		err = wrapErr("durable", err) // ForEachMaster's own: the topology could not be loaded
	}
	return err
}

// waitOn writes key and sends WAIT on the same connection.
func (r *Redis) waitOn(ctx context.Context, c redis.Cmdable, key string) error {
	pipe := c.Pipeline()
	pipe.Set(ctx, key, "1", time.Minute)
	// Pipeliner has no Wait; Do sends the same command.
	wait := pipe.Do(ctx, "WAIT", r.minReplicas, r.replicaTimeout.Milliseconds())
	if _, err := pipe.Exec(ctx); err != nil {
		return wrapErr("durable", err)
	}
	got, err := wait.Int64()
	if err != nil {
		return wrapErr("durable", err)
	}
	if got < int64(r.minReplicas) {
		return fmt.Errorf("store: durable: %d of %d replicas acknowledged within %s: %w", got, r.minReplicas, r.replicaTimeout, ErrNotDurable)
	}
	return nil
}

// waitOnNode runs the barrier on one Cluster master, with a marker key of a
// slot it serves (a node answers MOVED for any other). The key is looked up
// once per node and again after a MOVED (resharding, failover).
func (r *Redis) waitOnNode(ctx context.Context, node *redis.Client) error {
	addr := node.Options().Addr
	for attempt := 0; ; attempt++ {
		key, err := r.markers.forNode(ctx, addr, node)
		if err != nil {
			return err
		}
		err = r.waitOn(ctx, node, key)
		if err == nil || attempt > 0 || !isMoved(err) {
			return err
		}
		r.markers.forget(addr)
	}
}

func isMoved(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && (strings.HasPrefix(re.Error(), "MOVED ") || strings.HasPrefix(re.Error(), "ASK "))
}

// markerKeys caches, per Cluster node address, a marker key that node serves.
type markerKeys struct {
	mu   sync.Mutex
	keys map[string]string
}

func (m *markerKeys) forget(addr string) {
	m.mu.Lock()
	delete(m.keys, addr)
	m.mu.Unlock()
}

func (m *markerKeys) forNode(ctx context.Context, addr string, node *redis.Client) (string, error) {
	m.mu.Lock()
	key, ok := m.keys[addr]
	m.mu.Unlock()
	if ok {
		return key, nil
	}
	nodes, err := node.ClusterNodes(ctx).Result()
	if err != nil {
		return "", wrapErr("durable: cluster nodes", err)
	}
	slot, ok := firstOwnSlot(nodes)
	if !ok {
		return "", fmt.Errorf("store: durable: master %s serves no slot: %w", addr, ErrNotDurable)
	}
	key = durableKey + ":{" + tagForSlot(slot) + "}"
	m.mu.Lock()
	if m.keys == nil {
		m.keys = map[string]string{}
	}
	m.keys[addr] = key
	m.mu.Unlock()
	return key, nil
}

// firstOwnSlot reads CLUSTER NODES: the "myself" line lists the node's slots
// from its ninth field on, as "a-b" or "a" ("[...]" entries are migrations).
func firstOwnSlot(nodes string) (int, bool) {
	for line := range strings.SplitSeq(nodes, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.Contains(f[2], "myself") {
			continue
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue
			}
			first, _, _ := strings.Cut(s, "-")
			if n, err := strconv.Atoi(first); err == nil && n >= 0 && n < 16384 {
				return n, true
			}
		}
	}
	return 0, false
}

// tagForSlot finds a short hash tag whose key slot is slot (CRC16 mod 16384,
// Redis Cluster specification): about 16k tries at worst, once per node.
func tagForSlot(slot int) string {
	for i := 0; ; i++ {
		tag := strconv.Itoa(i)
		if int(crc16([]byte(tag))&16383) == slot {
			return tag
		}
	}
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster hashes keys with.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
