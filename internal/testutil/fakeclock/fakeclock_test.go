package fakeclock

import (
	"sync"
	"testing"
	"time"
)

var start = time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC)

func TestClock(t *testing.T) {
	tests := []struct {
		name string
		move func(c *Clock)
		want time.Time
	}{
		{name: "reads its start", move: func(*Clock) {}, want: start},
		{name: "advance", move: func(c *Clock) { c.Advance(90 * time.Second) }, want: start.Add(90 * time.Second)},
		{name: "advance twice", move: func(c *Clock) { c.Advance(time.Second); c.Advance(time.Second) }, want: start.Add(2 * time.Second)},
		{name: "backwards", move: func(c *Clock) { c.Advance(-time.Hour) }, want: start.Add(-time.Hour)},
		{name: "set", move: func(c *Clock) { c.Set(start.AddDate(1, 0, 0)) }, want: start.AddDate(1, 0, 0)},
		{name: "advance after set", move: func(c *Clock) { c.Set(start.Add(time.Hour)); c.Advance(time.Minute) }, want: start.Add(61 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New(start)
			tc.move(c)
			if got := c.Now(); !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Fatalf("Now() = %v, want %v", got, tc.want)
			}
		})
	}
}

// The method value is what the code under test takes.
func TestNowAsFunc(t *testing.T) {
	c := New(start)
	var now func() time.Time = c.Now
	c.Advance(time.Minute)
	if got := now(); !got.Equal(start.Add(time.Minute)) {
		t.Fatalf("now() = %v: the method value does not follow the clock", got)
	}
}

// Readers and movers at once: run with -race.
func TestConcurrentUse(t *testing.T) {
	c := New(start)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(start.Add(800 * time.Millisecond)) {
		t.Fatalf("Now() = %v after 800 steps of 1ms, want %v", got, start.Add(800*time.Millisecond))
	}
}
