package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func doc(version int64, body string) []byte {
	return fmt.Appendf(nil, `{"version":%d,"body":%q}`, version, body)
}

// wantConflict checks err is a version conflict (not an outage) naming the
// stored version.
func wantConflict(t *testing.T, err error, stored int64) {
	t.Helper()
	if !errors.Is(err, ErrVersionConflict) || errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err = %v; want ErrVersionConflict, not ErrUnavailable", err)
	}
	if want := fmt.Sprintf("stored %d", stored); !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v; want it to name %q", err, want)
	}
}

func wantVersioned(t *testing.T, st Store, key string, want []byte, version int64) {
	t.Helper()
	got, v, err := st.GetVersioned(context.Background(), key)
	if err != nil || string(got) != string(want) || v != version {
		t.Fatalf("GetVersioned(%q) = %q, %d, %v; want %q, %d, nil", key, got, v, err, want, version)
	}
}

var versionedCases = []contractCase{
	{name: "a missing key is version 0", run: func(t *testing.T, ctx context.Context, b backend) {
		wantVersioned(t, b.st, "v", nil, 0)
		wantConflict(t, b.st.CompareAndSet(ctx, "v", 1, doc(2, "a"), 0), 0)
		wantValue(t, b.st, "v", "")
		must(t, b.st.CompareAndSet(ctx, "v", 0, doc(1, "a"), 0))
		wantVersioned(t, b.st, "v", doc(1, "a"), 1)
	}},
	{name: "only the stored version passes", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.CompareAndSet(ctx, "v", 0, doc(1, "a"), 0))
		must(t, b.st.CompareAndSet(ctx, "v", 1, doc(2, "b"), 0))
		for _, stale := range []int64{0, 1, 3} {
			wantConflict(t, b.st.CompareAndSet(ctx, "v", stale, doc(9, "stale"), 0), 2)
		}
		wantVersioned(t, b.st, "v", doc(2, "b"), 2)
	}},
	{name: "compare-and-set sets the expiry, 0 clears it", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.CompareAndSet(ctx, "gone", 0, doc(1, "a"), short))
		must(t, b.st.SetCtx(ctx, "kept", doc(1, "a"), short))
		must(t, b.st.CompareAndSet(ctx, "kept", 1, doc(2, "b"), 0))
		b.wait(2 * short)
		wantVersioned(t, b.st, "gone", nil, 0)
		wantVersioned(t, b.st, "kept", doc(2, "b"), 2)
	}},
	{name: "the version rule is the same on both back ends", run: func(t *testing.T, ctx context.Context, b backend) {
		tests := []struct {
			name    string
			stored  string
			version int64
			notDoc  bool
		}{
			{name: "integer", stored: `{"version":3}`, version: 3},
			{name: "blank before the object", stored: " \n{\"version\": 7, \"x\": [1]}", version: 7},
			{name: "integral float", stored: `{"version":4.0}`, version: 4},
			{name: "exponent", stored: `{"version":1e2}`, version: 100},
			{name: "no version member", stored: `{"other":1}`, version: 0},
			{name: "empty object", stored: `{}`, version: 0},
			{name: "version as a string", stored: `{"version":"5"}`, version: 0},
			{name: "version null", stored: `{"version":null}`, version: 0},
			{name: "version an object", stored: `{"version":{"n":1}}`, version: 0},
			{name: "fractional version", stored: `{"version":2.5}`, notDoc: true},
			{name: "array", stored: `[1,2]`, notDoc: true},
			{name: "empty array", stored: `[]`, notDoc: true},
			{name: "number", stored: `5`, notDoc: true},
			{name: "string", stored: `"version"`, notDoc: true},
			{name: "not JSON", stored: `version=3`, notDoc: true},
			{name: "truncated object", stored: `{"version":3`, notDoc: true},
			{name: "trailing garbage", stored: `{"version":3} x`, notDoc: true},
			{name: "beyond 2^53", stored: `{"version":1e17}`, notDoc: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := "rule:" + tt.name
				must(t, b.st.SetCtx(ctx, key, []byte(tt.stored), 0))
				_, v, getErr := b.st.GetVersioned(ctx, key)
				casErr := b.st.CompareAndSet(ctx, key, tt.version+1, doc(tt.version+2, "next"), 0)
				if tt.notDoc {
					if !errors.Is(getErr, ErrWrongType) || !errors.Is(casErr, ErrWrongType) {
						t.Fatalf("GetVersioned err = %v, CompareAndSet err = %v; want ErrWrongType from both", getErr, casErr)
					}
					wantValue(t, b.st, key, tt.stored)
					return
				}
				if getErr != nil || v != tt.version {
					t.Fatalf("GetVersioned = %d, %v; want %d", v, getErr, tt.version)
				}
				wantConflict(t, casErr, tt.version) // the script read the same version as Go
				must(t, b.st.CompareAndSet(ctx, key, tt.version, doc(tt.version+1, "next"), 0))
				wantVersioned(t, b.st, key, doc(tt.version+1, "next"), tt.version+1)
			})
		}
	}},
	{name: "a new value that is not a versioned document is refused", run: func(t *testing.T, ctx context.Context, b backend) {
		for _, val := range []string{"", "plain", "[1]", `{"version":1.5}`} {
			if err := b.st.CompareAndSet(ctx, "v", 0, []byte(val), 0); !errors.Is(err, ErrWrongType) {
				t.Fatalf("CompareAndSet(%q) = %v; want ErrWrongType", val, err)
			}
		}
		wantValue(t, b.st, "v", "")
	}},
	{name: "a key of another type is ErrWrongType", run: func(t *testing.T, ctx context.Context, b backend) {
		must(t, b.st.SAdd(ctx, "set", 0, "a"))
		if _, _, err := b.st.GetVersioned(ctx, "set"); !errors.Is(err, ErrWrongType) {
			t.Fatalf("GetVersioned of a set = %v; want ErrWrongType", err)
		}
		if err := b.st.CompareAndSet(ctx, "set", 0, doc(1, "a"), 0); !errors.Is(err, ErrWrongType) {
			t.Fatalf("CompareAndSet of a set = %v; want ErrWrongType", err)
		}
	}},
	{name: "racing writers from one version: exactly one wins", run: func(t *testing.T, ctx context.Context, b backend) {
		const trials, writers = 40, 8
		for trial := range trials {
			key := fmt.Sprintf("race:%d", trial)
			must(t, b.st.CompareAndSet(ctx, key, 0, doc(1, "start"), 0))
			var won, lost atomic.Int32
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					err := b.st.CompareAndSet(ctx, key, 1, doc(2, fmt.Sprint(w)), 0)
					switch {
					case err == nil:
						won.Add(1)
					case errors.Is(err, ErrVersionConflict):
						lost.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if won.Load() != 1 || lost.Load() != writers-1 {
				t.Fatalf("trial %d: %d writers won, %d lost; want 1 and %d", trial, won.Load(), lost.Load(), writers-1)
			}
		}
	}},
}

func TestVersionedContract(t *testing.T) { runContract(t, versionedCases) }

// TestRedisVersionedDown: a Redis that does not answer is an outage
// (ErrUnavailable), never a conflict, and fails fast.
func TestRedisVersionedDown(t *testing.T) {
	srv := redistest.Start(t)
	r := newTestRedis(t, srv.URL(), fast)
	srv.Stop()
	ctx := context.Background()
	start := time.Now()
	if err := r.CompareAndSet(ctx, "v", 0, doc(1, "a"), 0); !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, ErrVersionConflict) {
		t.Fatalf("CompareAndSet with Redis down = %v; want ErrUnavailable", err)
	}
	if _, _, err := r.GetVersioned(ctx, "v"); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("GetVersioned with Redis down = %v; want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v; want a fast failure", took)
	}
}
