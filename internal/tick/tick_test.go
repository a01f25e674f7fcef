package tick

import (
	"testing"
	"time"
)

func TestEveryStopsWhenFnIsFinished(t *testing.T) {
	calls := 0
	Every(make(chan struct{}), time.Millisecond, func() bool {
		calls++
		return calls < 3
	})
	if calls != 3 {
		t.Fatalf("fn ran %d times, want 3 (it returned false on the third)", calls)
	}
}

func TestEveryStopsWhenDoneCloses(t *testing.T) {
	done := make(chan struct{})
	close(done)
	calls := 0
	Every(done, time.Hour, func() bool { calls++; return true })
	if calls != 0 {
		t.Fatalf("fn ran %d times after done closed, want 0", calls)
	}
}
