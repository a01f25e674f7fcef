package usage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestRecordDoesNotAllocate(t *testing.T) {
	r := mustNew(t, testOptions(newClock(base), nil))
	users := benchUsers(64)
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		r.Record(auth.SchemeBearer, "mobile", users[i%len(users)], auth.OutcomeAccepted)
		r.Record(auth.SchemeNone, "forged", "", auth.OutcomeInvalid)
		r.Record(auth.SchemeNone, auth.ClientUnknown, "", auth.OutcomeMissing)
		i++
	})
	if allocs != 0 {
		t.Errorf("Record allocates %v times per call, want 0", allocs)
	}
}

func TestLabels(t *testing.T) {
	r := mustNew(t, testOptions(newClock(base), nil))
	tests := []struct {
		name, client, want string
	}{
		{name: "registered", client: "spa", want: "spa"},
		{name: "unregistered", client: "spa2", want: auth.ClientOther},
		{name: "no client", client: "", want: auth.ClientUnknown},
		{name: "case differs", client: "WEB", want: auth.ClientOther},
		{name: "label other", client: auth.ClientOther, want: auth.ClientOther},
		// authn records failures without a principal under the label itself.
		{name: "label unknown", client: auth.ClientUnknown, want: auth.ClientUnknown},
		{name: "unknown, other case", client: "Unknown", want: auth.ClientOther},
	}
	for _, tt := range tests {
		if got := r.labels[r.clientIndex(tt.client)]; got != tt.want {
			t.Errorf("%s: %q labelled %q, want %q", tt.name, tt.client, got, tt.want)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{name: "reserved client other", edit: func(o *Options) { o.Clients = []string{"other"} }},
		{name: "reserved client unknown", edit: func(o *Options) { o.Clients = []string{"unknown"} }},
		{name: "separator in client", edit: func(o *Options) { o.Clients = []string{"a|b"} }},
		{name: "space in client", edit: func(o *Options) { o.Clients = []string{"a b"} }},
		{name: "empty client", edit: func(o *Options) { o.Clients = []string{""} }},
		{name: "duplicate client", edit: func(o *Options) { o.Clients = []string{"web", "web"} }},
		{name: "negative interval", edit: func(o *Options) { o.FlushInterval = -1 }},
		{name: "short retention", edit: func(o *Options) { o.Retention = 1 }},
		{name: "share above one", edit: func(o *Options) { o.MaxSessionShare = 1.5 }},
		{name: "negative share", edit: func(o *Options) { o.MaxSessionShare = -0.01 }},
		{name: "NaN share", edit: func(o *Options) { o.MaxSessionShare = math.NaN() }},
		{name: "negative store timeout", edit: func(o *Options) { o.StoreTimeout = -time.Second }},
		{name: "negative backlog", edit: func(o *Options) { o.MaxBacklog = -1 }},
	}
	for _, tt := range tests {
		o := testOptions(newClock(base), nil)
		tt.edit(&o)
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", tt.name, err)
		}
	}
}

// A user key found in the table is not added twice; a full table drops and
// counts; a drain empties it.
func TestUserSet(t *testing.T) {
	s := newUserSet(16)
	for i := range 10 {
		s.add(userKey(fmt.Sprint("u", i), auth.SchemeBearer))
		s.add(userKey(fmt.Sprint("u", i), auth.SchemeBearer))
	}
	got := s.drain(nil)
	if len(got) != 10 || s.dropped.Load() != 0 {
		t.Fatalf("drained %d keys, dropped %d; want 10, 0", len(got), s.dropped.Load())
	}
	for _, k := range got {
		if keyScheme(k) != auth.SchemeBearer {
			t.Errorf("key %x lost its scheme", k)
		}
	}
	if again := s.drain(nil); len(again) != 0 {
		t.Errorf("second drain returned %d keys", len(again))
	}
	for i := range 40 {
		s.add(userKey(fmt.Sprint("v", i), auth.SchemeSession))
	}
	if n := len(s.drain(nil)); n != 16 || s.dropped.Load() != 24 {
		t.Errorf("overfull table kept %d and dropped %d; want 16 and 24", n, s.dropped.Load())
	}
}

// Whatever client id, user id, scheme and outcome a caller passes, Record
// counts exactly one event under a known label, scheme and outcome.
func FuzzRecord(f *testing.F) {
	f.Add("web", "alice", uint8(1), uint8(0))
	f.Add("", "", uint8(0), uint8(1))
	f.Add("other", "x", uint8(3), uint8(6))
	f.Add("web|session|accepted", "\x00", uint8(200), uint8(255))
	r := mustNew(f, testOptions(newClock(base), nil))
	f.Fuzz(func(t *testing.T, client, user string, scheme, outcome uint8) {
		r.Record(auth.Scheme(scheme), client, user, auth.Outcome(outcome))
		r.flushMu.Lock()
		b := r.cut(0)
		r.flushMu.Unlock()
		if b == nil || len(b.counts) != 1 || b.counts[0].n != 1 {
			t.Fatalf("one Record produced batch %+v", b)
		}
		k := b.counts[0].key
		if !slices.Contains(r.labels, k.client) || k.scheme >= auth.NumSchemes || k.outcome >= auth.NumOutcomes {
			t.Fatalf("Record(%q) counted under %+v", client, k)
		}
		if back, ok := parseField(k.String()); !ok || back != k {
			t.Fatalf("field %q does not parse back (%+v, %v)", k.String(), back, ok)
		}
		if user != "" && k.outcome == auth.OutcomeAccepted && k.scheme != auth.SchemeNone && len(b.users) != 1 {
			t.Fatalf("accepted user not sampled: %d keys", len(b.users))
		}
	})
}

// Fields written by another version (unknown scheme or outcome, garbage) are
// skipped, never fatal.
func TestParseBucketSkipsUnknownFields(t *testing.T) {
	b := parseBucket(map[string]string{
		"web|session|accepted":  "3",
		"web|passkey|accepted":  "5",
		"web|session|teleport":  "7",
		"garbage":               "1",
		"web|bearer|invalid":    "x",
		"|session|accepted":     "1",
		"other|none|invalid":    "2",
		"mobile|bearer|expired": "4",
	})
	want := bucketCounts{
		{client: "web", scheme: auth.SchemeSession, outcome: auth.OutcomeAccepted}:  3,
		{client: "other", scheme: auth.SchemeNone, outcome: auth.OutcomeInvalid}:    2,
		{client: "mobile", scheme: auth.SchemeBearer, outcome: auth.OutcomeExpired}: 4,
	}
	if len(b) != len(want) {
		t.Fatalf("parsed %v, want %v", b, want)
	}
	for k, n := range want {
		if b[k] != n {
			t.Errorf("%v = %d, want %d", k, b[k], n)
		}
	}
}

func TestInMemoryHyperLogLog(t *testing.T) {
	tests := []struct {
		name string
		n    int
		tol  float64
	}{
		{name: "small sets are exact", n: 500, tol: 0},
		{name: "large sets within 3%", n: 200_000, tol: 0.03},
	}
	for _, tt := range tests {
		var a, b hll
		for i := range tt.n {
			k := keyMember(userKey(fmt.Sprint("user-", i), auth.SchemeBearer))
			if i%2 == 0 {
				a.add(k)
			} else {
				b.add(k)
			}
			a.add(k) // a holds everything, b half
		}
		var union hll
		union.merge(&b)
		union.merge(&a)
		for name, got := range map[string]int64{"direct": a.count(), "union": union.count()} {
			if d := float64(got-int64(tt.n)) / float64(tt.n); d > tt.tol || d < -tt.tol {
				t.Errorf("%s %s: estimate %d for %d members", tt.name, name, got, tt.n)
			}
		}
	}
}

func benchUsers(n int) []string {
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("%08x-4b1d-4c2e-9f3a-%012x", i*2654435761, i)
	}
	return users
}

// BenchmarkRecord measures the hot path: label lookup, counter increment and
// user sampling of an accepted bearer request.
func BenchmarkRecord(b *testing.B) {
	r := mustNew(b, testOptions(newClock(base), nil))
	users := benchUsers(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Record(auth.SchemeBearer, "mobile", users[i&1023], auth.OutcomeAccepted)
		i++
	}
}

// BenchmarkRecordUnauthenticated is the path of a request refused without a
// principal (no credential: scheme none, client unknown, outcome missing).
func BenchmarkRecordUnauthenticated(b *testing.B) {
	r := mustNew(b, testOptions(newClock(base), nil))
	b.ReportAllocs()
	for b.Loop() {
		r.Record(auth.SchemeNone, auth.ClientUnknown, "", auth.OutcomeMissing)
	}
}

// BenchmarkRecordParallel is BenchmarkRecord from GOMAXPROCS goroutines (run
// with -cpu 1,2).
func BenchmarkRecordParallel(b *testing.B) {
	r := mustNew(b, testOptions(newClock(base), nil))
	users := benchUsers(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(auth.SchemeBearer, "mobile", users[i&1023], auth.OutcomeAccepted)
			i++
		}
	})
}

// BenchmarkFlushInMemory shows what one flush interval costs the background loop.
func BenchmarkFlushInMemory(b *testing.B) {
	r := mustNew(b, testOptions(newClock(base), nil))
	users := benchUsers(1024)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for i := range 1000 {
			r.Record(auth.SchemeSession, "web", users[i&1023], auth.OutcomeAccepted)
		}
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
