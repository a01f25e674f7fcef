package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// backend is one store under the contract plus a way to let time pass: the
// memory store moves its fake clock, Redis really waits.
type backend struct {
	st   Store
	wait func(d time.Duration)
}

// newFakeClock is the memory store's manual clock.
func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

func memoryBackend(t *testing.T) backend {
	clk := newFakeClock()
	m := NewMemory(clk.Now)
	t.Cleanup(func() { _ = m.Close() })
	return backend{st: m, wait: clk.Advance}
}

func newTestRedis(t *testing.T, url string, o RedisOptions) *Redis {
	t.Helper()
	o.URL = url
	r, err := NewRedis(o)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func redisBackend(t *testing.T) backend {
	srv := redistest.Start(t)
	return backend{st: newTestRedis(t, srv.URL(), RedisOptions{}), wait: time.Sleep}
}

// clusterBackends is a real Redis Cluster of one node, which refuses a script
// whose keys hash to different slots as any Cluster does. The node is started
// once for parent (a cluster takes seconds to come up) and emptied for each
// case.
func clusterBackends(parent *testing.T) func(t *testing.T) backend {
	var node *redistest.SingleNodeCluster
	return func(t *testing.T) backend {
		if node == nil {
			node = redistest.StartSingleNodeCluster(parent)
		}
		r := newTestRedis(t, node.URL(), RedisOptions{})
		must(t, r.Redis().FlushAll(context.Background()).Err())
		return backend{st: r, wait: time.Sleep}
	}
}

// short is an expiry long enough for a Redis round trip and short enough to
// wait for in a test.
const short = 150 * time.Millisecond

type contractCase struct {
	name string
	run  func(t *testing.T, ctx context.Context, b backend)
}

var contractCases = []contractCase{
	{name: "get of a missing key is nil, nil", run: func(t *testing.T, ctx context.Context, b backend) {
		v, err := b.st.GetCtx(ctx, "nope")
		if err != nil || v != nil {
			t.Fatalf("GetCtx = %q, %v; want nil, nil", v, err)
		}
		v, err = b.st.Get("nope")
		if err != nil || v != nil {
			t.Fatalf("Get = %q, %v; want nil, nil", v, err)
		}
	}},
	{name: "set then get round-trips and is not aliased", run: func(t *testing.T, ctx context.Context, b backend) {
		val := []byte("hello")
		must(t, b.st.SetCtx(ctx, "k", val, 0))
		val[0] = 'J'
		wantValue(t, b.st, "k", "hello")
		must(t, b.st.Set("k2", []byte("fiber"), 0))
		got, err := b.st.Get("k2")
		if err != nil || string(got) != "fiber" {
			t.Fatalf("Get = %q, %v", got, err)
		}
	}},
	{name: "set with expiry disappears after it", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "k", []byte("v"), short))
		must(t, b.st.SetCtx(ctx, "forever", []byte("v"), 0))
		wantValue(t, b.st, "k", "v")
		b.wait(2 * short)
		wantValue(t, b.st, "k", "")
		wantValue(t, b.st, "forever", "v")
	}},
	{name: "overwriting with exp 0 removes the expiry", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "k", []byte("v1"), short))
		must(t, b.st.SetCtx(ctx, "k", []byte("v2"), 0))
		b.wait(2 * short)
		wantValue(t, b.st, "k", "v2")
	}},
	{name: "empty value is ignored as fiber.Storage says", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "k", []byte("v"), 0))
		must(t, b.st.SetCtx(ctx, "k", nil, 0))
		wantValue(t, b.st, "k", "v")
	}},
	{name: "delete removes several keys and ignores missing ones", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "a", []byte("1"), 0))
		must(t, b.st.SetCtx(ctx, "b", []byte("2"), 0))
		must(t, b.st.DeleteCtx(ctx, "a", "b", "missing"))
		must(t, b.st.DeleteCtx(ctx))
		wantValue(t, b.st, "a", "")
		wantValue(t, b.st, "b", "")
		must(t, b.st.SetCtx(ctx, "c", []byte("3"), 0))
		must(t, b.st.Delete("c"))
		wantValue(t, b.st, "c", "")
	}},
	{name: "SetNX sets once, and again after expiry", run: func(t *testing.T, ctx context.Context, b backend) {
		ok, err := b.st.SetNX(ctx, "lock", []byte("a"), short)
		if err != nil || !ok {
			t.Fatalf("first SetNX = %v, %v; want true", ok, err)
		}
		ok, err = b.st.SetNX(ctx, "lock", []byte("b"), short)
		if err != nil || ok {
			t.Fatalf("second SetNX = %v, %v; want false", ok, err)
		}
		wantValue(t, b.st, "lock", "a")
		b.wait(2 * short)
		ok, err = b.st.SetNX(ctx, "lock", []byte("c"), 0)
		if err != nil || !ok {
			t.Fatalf("SetNX after expiry = %v, %v; want true", ok, err)
		}
		wantValue(t, b.st, "lock", "c")
	}},
	{name: "GetDel consumes exactly once", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "rt", []byte("family"), time.Minute))
		v, err := b.st.GetDel(ctx, "rt")
		if err != nil || string(v) != "family" {
			t.Fatalf("GetDel = %q, %v", v, err)
		}
		v, err = b.st.GetDel(ctx, "rt")
		if err != nil || v != nil {
			t.Fatalf("second GetDel = %q, %v; want nil, nil", v, err)
		}
	}},
	{name: "GetDel under concurrency hands the value to one caller", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "rt", []byte("x"), time.Minute))
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := b.st.GetDel(ctx, "rt")
				if err == nil && v != nil {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("%d callers got the value, want 1", winners)
		}
	}},
	// Consume's keys share a {hash tag} so that the cases run on Cluster too.
	{name: "Consume takes the value once and leaves it as the marker", run: func(t *testing.T, ctx context.Context, b backend) {
		val, used, err := b.st.Consume(ctx, "rt:{a}", "rtu:{a}")
		if err != nil || val != nil || used != nil {
			t.Fatalf("Consume of nothing = %q, %q, %v; want nil, nil, nil", val, used, err)
		}
		must(t, b.st.SetCtx(ctx, "rt:{a}", []byte("record"), time.Minute))
		val, used, err = b.st.Consume(ctx, "rt:{a}", "rtu:{a}")
		if err != nil || string(val) != "record" || used != nil {
			t.Fatalf("first Consume = %q, %q, %v; want the record", val, used, err)
		}
		wantValue(t, b.st, "rt:{a}", "")
		wantValue(t, b.st, "rtu:{a}", "record")
		for range 2 {
			val, used, err = b.st.Consume(ctx, "rt:{a}", "rtu:{a}")
			if err != nil || val != nil || string(used) != "record" {
				t.Fatalf("later Consume = %q, %q, %v; want nil and the marker", val, used, err)
			}
		}
	}},
	{name: "Consume's marker expires when the value would have", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "rt:{a}", []byte("short"), 2*short))
		must(t, b.st.SetCtx(ctx, "rt:{b}", []byte("forever"), 0))
		if val, _, err := b.st.Consume(ctx, "rt:{a}", "rtu:{a}"); err != nil || string(val) != "short" {
			t.Fatalf("Consume = %q, %v", val, err)
		}
		if val, _, err := b.st.Consume(ctx, "rt:{b}", "rtu:{b}"); err != nil || string(val) != "forever" {
			t.Fatalf("Consume = %q, %v", val, err)
		}
		b.wait(short)
		wantValue(t, b.st, "rtu:{a}", "short")
		b.wait(2 * short)
		wantValue(t, b.st, "rtu:{a}", "")
		wantValue(t, b.st, "rtu:{b}", "forever")
	}},
	{name: "Consume under concurrency: one caller takes, every other sees the marker", run: func(t *testing.T, ctx context.Context, b backend) {
		for round := range 10 {
			must(t, b.st.SetCtx(ctx, "rt:{c}", []byte("x"), time.Minute))
			must(t, b.st.DeleteCtx(ctx, "rtu:{c}"))
			var (
				wg                 sync.WaitGroup
				mu                 sync.Mutex
				takers, markedSeen int
				start              = make(chan struct{})
			)
			const callers = 8
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					val, used, err := b.st.Consume(ctx, "rt:{c}", "rtu:{c}")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						t.Errorf("Consume: %v", err)
					case val != nil && used == nil:
						takers++
					case val == nil && string(used) == "x":
						markedSeen++
					default:
						t.Errorf("Consume = %q, %q; want the value or the marker", val, used)
					}
				}()
			}
			close(start)
			wg.Wait()
			if takers != 1 || markedSeen != callers-1 {
				t.Fatalf("round %d: %d took the value and %d saw the marker; want 1 and %d", round, takers, markedSeen, callers-1)
			}
		}
	}},
	{name: "Consume of a set is ErrWrongType", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SAdd(ctx, "rt:{d}", time.Minute, "a"))
		if _, _, err := b.st.Consume(ctx, "rt:{d}", "rtu:{d}"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("err = %v; want ErrWrongType", err)
		}
		must(t, b.st.SAdd(ctx, "rtu:{e}", time.Minute, "a"))
		if _, _, err := b.st.Consume(ctx, "rt:{e}", "rtu:{e}"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("marker is a set: err = %v; want ErrWrongType", err)
		}
	}},
	{name: "Incr counts with the TTL set at creation", run: func(t *testing.T, ctx context.Context, b backend) {
		n, ttl, err := b.st.Incr(ctx, "c", time.Minute)
		if err != nil || n != 1 || ttl <= 50*time.Second || ttl > time.Minute {
			t.Fatalf("Incr = %d, %v, %v; want 1, ~1m", n, ttl, err)
		}
		b.wait(short)
		n, ttl2, err := b.st.Incr(ctx, "c", time.Hour)
		if err != nil || n != 2 || ttl2 > ttl {
			t.Fatalf("second Incr = %d, %v, %v; want 2 and the first TTL kept (<= %v)", n, ttl2, err, ttl)
		}
	}},
	{name: "Incr restarts after expiry", run: func(t *testing.T, ctx context.Context, b backend) {
		for range 3 {
			if _, _, err := b.st.Incr(ctx, "c", short); err != nil {
				t.Fatal(err)
			}
		}
		b.wait(2 * short)
		n, _, err := b.st.Incr(ctx, "c", short)
		if err != nil || n != 1 {
			t.Fatalf("Incr after expiry = %d, %v; want 1", n, err)
		}
	}},
	{name: "Incr without expiry reports TTL 0", run: func(t *testing.T, ctx context.Context, b backend) {
		n, ttl, err := b.st.Incr(ctx, "c", 0)
		if err != nil || n != 1 || ttl != 0 {
			t.Fatalf("Incr = %d, %v, %v; want 1, 0", n, ttl, err)
		}
	}},
	{name: "Incr of a non-integer is ErrWrongType", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SetCtx(ctx, "s", []byte("abc"), 0))
		if _, _, err := b.st.Incr(ctx, "s", 0); !errors.Is(err, ErrWrongType) {
			t.Fatalf("err = %v; want ErrWrongType", err)
		}
	}},
	{name: "Decr refunds, keeps the TTL, never goes below zero nor creates", run: func(t *testing.T, ctx context.Context, b backend) {
		for range 2 {
			if _, _, err := b.st.Incr(ctx, "c", time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := b.st.Decr(ctx, "c"); err != nil || n != 1 {
			t.Fatalf("Decr = %d, %v; want 1", n, err)
		}
		if n, _ := b.st.Decr(ctx, "c"); n != 0 {
			t.Fatalf("second Decr = %d; want 0", n)
		}
		if n, _ := b.st.Decr(ctx, "c"); n != 0 {
			t.Fatalf("Decr at zero = %d; want 0", n)
		}
		n, ttl, err := b.st.Incr(ctx, "c", time.Hour)
		if err != nil || n != 1 || ttl > time.Minute {
			t.Fatalf("Incr after refunds = %d, %v, %v; want 1 with the first TTL kept", n, ttl, err)
		}
		if n, err := b.st.Decr(ctx, "absent"); err != nil || n != 0 {
			t.Fatalf("Decr of an absent key = %d, %v; want 0, nil", n, err)
		}
		if v, _ := b.st.GetCtx(ctx, "absent"); v != nil {
			t.Fatalf("Decr created the key: %q", v)
		}
		must(t, b.st.SAdd(ctx, "set", time.Minute, "a"))
		if _, err := b.st.Decr(ctx, "set"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("Decr of a set: %v; want ErrWrongType", err)
		}
	}},
	{name: "sets add, list and remove; the last removal deletes the key", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SAdd(ctx, "s", time.Minute, "a", "b"))
		must(t, b.st.SAdd(ctx, "s", time.Minute, "b", "c"))
		wantMembers(t, b.st, "s", "a", "b", "c")
		must(t, b.st.SRem(ctx, "s", "a", "zz"))
		wantMembers(t, b.st, "s", "b", "c")
		must(t, b.st.SRem(ctx, "s", "b", "c"))
		wantMembers(t, b.st, "s")
		// The emptied set is gone: the key can hold a string again.
		must(t, b.st.SetCtx(ctx, "s", []byte("v"), 0))
		wantValue(t, b.st, "s", "v")
	}},
	{name: "SAdd extends the expiry but never shortens it", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SAdd(ctx, "grow", short, "a"))
		must(t, b.st.SAdd(ctx, "grow", time.Minute, "b"))
		must(t, b.st.SAdd(ctx, "keep", time.Minute, "a"))
		must(t, b.st.SAdd(ctx, "keep", short/3, "b"))
		must(t, b.st.SAdd(ctx, "dies", short, "a"))
		b.wait(2 * short)
		wantMembers(t, b.st, "grow", "a", "b")
		wantMembers(t, b.st, "keep", "a", "b")
		wantMembers(t, b.st, "dies")
	}},
	{name: "hashes set, read whole and delete fields", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.HSet(ctx, "h", time.Minute, "f1", []byte("v1")))
		must(t, b.st.HSet(ctx, "h", time.Minute, "f2", []byte("v2")))
		must(t, b.st.HSet(ctx, "h", time.Minute, "f1", []byte("v1b")))
		got, err := b.st.HGetAll(ctx, "h")
		if err != nil || len(got) != 2 || string(got["f1"]) != "v1b" || string(got["f2"]) != "v2" {
			t.Fatalf("HGetAll = %q, %v", got, err)
		}
		must(t, b.st.HDel(ctx, "h", "f1", "nope"))
		got, err = b.st.HGetAll(ctx, "h")
		if err != nil || len(got) != 1 || string(got["f2"]) != "v2" {
			t.Fatalf("HGetAll after HDel = %q, %v", got, err)
		}
		got, err = b.st.HGetAll(ctx, "missing")
		if err != nil || len(got) != 0 {
			t.Fatalf("HGetAll(missing) = %q, %v", got, err)
		}
	}},
	{name: "HSetFields writes several fields at once and extends the expiry", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.HSet(ctx, "hf", short, "old", []byte("o")))
		must(t, b.st.HSetFields(ctx, "hf", time.Minute, Field{Name: "a", Value: []byte("1")}, Field{Name: "old", Value: []byte("2")}))
		must(t, b.st.HSetFields(ctx, "hf", time.Minute))
		b.wait(2 * short)
		got, err := b.st.HGetAll(ctx, "hf")
		if err != nil || len(got) != 2 || string(got["a"]) != "1" || string(got["old"]) != "2" {
			t.Fatalf("HGetAll = %q, %v", got, err)
		}
	}},
	{name: "TakeField takes a value once, then reports it used", run: func(t *testing.T, ctx context.Context, b backend) {
		id1, id2 := []byte("first-id-0123456"), []byte("second-id-012345")
		must(t, b.st.HSetFields(ctx, "login", time.Minute, Field{Name: "a", Value: []byte("who")}, Field{Name: "a1", Value: []byte("+more")},
			Field{Name: "x", Value: []byte("other")}, Field{Name: "t", Value: append(slices.Clone(id1), "-state"...)}))
		h, taken, used, err := b.st.TakeField(ctx, "login", "t", "u", id1, 2)
		if err != nil || !taken || used || len(h) != 4 || string(h["x"]) != "other" || string(h["t"]) != string(id1)+"-state" || string(h["a"]) != "who" || string(h["a1"]) != "+more" {
			t.Fatalf("first take = %q, %v, %v, %v", h, taken, used, err)
		}
		if _, taken, used, err = b.st.TakeField(ctx, "login", "t", "u", id1, 2); err != nil || taken || !used {
			t.Fatalf("second take: taken %v used %v err %v; want used", taken, used, err)
		}
		if _, taken, used, err = b.st.TakeField(ctx, "login", "t", "u", []byte("never-issued-id!"), 2); err != nil || taken || used {
			t.Fatalf("unknown id: taken %v used %v err %v; want neither", taken, used, err)
		}
		// The used field keeps the newest keep fingerprints.
		for _, id := range [][]byte{id2, []byte("third-id-0123456")} {
			must(t, b.st.HSet(ctx, "login", time.Minute, "t", id))
			if _, taken, _, err := b.st.TakeField(ctx, "login", "t", "u", id, 2); err != nil || !taken {
				t.Fatalf("take %q: %v, %v", id, taken, err)
			}
		}
		if _, _, used, _ := b.st.TakeField(ctx, "login", "t", "u", id2, 2); !used {
			t.Fatal("the second newest fingerprint was dropped")
		}
		if _, _, used, _ := b.st.TakeField(ctx, "login", "t", "u", id1, 2); used {
			t.Fatal("more than keep fingerprints were kept")
		}
		h, taken, used, err = b.st.TakeField(ctx, "absent", "t", "u", id1, 2)
		if err != nil || taken || used || len(h) != 0 {
			t.Fatalf("absent key = %q, %v, %v, %v", h, taken, used, err)
		}
	}},
	{name: "hash expiry is honoured", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.HSet(ctx, "h", short, "f", []byte("v")))
		b.wait(2 * short)
		got, err := b.st.HGetAll(ctx, "h")
		if err != nil || len(got) != 0 {
			t.Fatalf("HGetAll after expiry = %q, %v", got, err)
		}
	}},
	{name: "reading a set as a string is ErrWrongType", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SAdd(ctx, "s", 0, "a"))
		if _, err := b.st.GetCtx(ctx, "s"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("err = %v; want ErrWrongType", err)
		}
	}},
	{name: "publish reaches every subscriber in order; cancel ends Subscribe", run: func(t *testing.T, ctx context.Context, b backend) {
		subCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		type sub struct {
			got  chan []byte
			done chan error
		}
		subs := make([]sub, 2)
		for i := range subs {
			s := sub{got: make(chan []byte, 100), done: make(chan error, 1)}
			subs[i] = s
			go func() {
				s.done <- b.st.Subscribe(subCtx, "bus", func(p []byte) { s.got <- p }, nil)
			}()
		}
		// Subscribing is asynchronous (as in Redis): publish a probe until both hear it.
		for _, s := range subs {
			waitFor(t, func() bool {
				must(t, b.st.Publish(ctx, "bus", []byte("probe")))
				select {
				case <-s.got:
					return true
				case <-time.After(20 * time.Millisecond):
					return false
				}
			})
		}
		must(t, b.st.Publish(ctx, "other", []byte("not for us")))
		for _, p := range []string{"one", "two", "three"} {
			must(t, b.st.Publish(ctx, "bus", []byte(p)))
		}
		for i, s := range subs {
			var got []string
			for len(got) < 3 {
				select {
				case p := <-s.got:
					if string(p) != "probe" {
						got = append(got, string(p))
					}
				case <-time.After(2 * time.Second):
					t.Fatalf("subscriber %d got %q, then nothing", i, got)
				}
			}
			if !slices.Equal(got, []string{"one", "two", "three"}) {
				t.Fatalf("subscriber %d got %q", i, got)
			}
		}
		cancel()
		for i, s := range subs {
			select {
			case err := <-s.done:
				if err != nil {
					t.Fatalf("Subscribe %d returned %v after cancel; want nil", i, err)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("Subscribe %d did not return after cancel", i)
			}
		}
	}},
	{name: "ping answers", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.Ping(ctx))
	}},
}

func TestContract(t *testing.T) { runContract(t, contractCases) }

// runContract runs every case on a fresh store of each back end.
func runContract(t *testing.T, cases []contractCase) {
	backends := []struct {
		name string
		open func(t *testing.T) backend
	}{
		{name: "memory", open: memoryBackend},
		{name: "redis", open: redisBackend},
		{name: "redis-cluster", open: clusterBackends(t)},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					tc.run(t, ctx, be.open(t))
				})
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantValue checks key holds want; "" means absent.
func wantValue(t *testing.T, st Store, key, want string) {
	t.Helper()
	got, err := st.GetCtx(context.Background(), key)
	if err != nil {
		t.Fatalf("GetCtx(%q): %v", key, err)
	}
	if want == "" && got != nil {
		t.Fatalf("GetCtx(%q) = %q; want absent", key, got)
	}
	if !bytes.Equal(got, []byte(want)) && want != "" {
		t.Fatalf("GetCtx(%q) = %q; want %q", key, got, want)
	}
}

func wantMembers(t *testing.T, st Store, key string, want ...string) {
	t.Helper()
	got, err := st.SMembers(context.Background(), key)
	if err != nil {
		t.Fatalf("SMembers(%q): %v", key, err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("SMembers(%q) = %q; want %q", key, got, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}
