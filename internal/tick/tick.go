// Package tick is the one periodic loop of the tree's background goroutines
// (usage flushes, the memory store's sweep, the cluster topology refresh,
// the SQL probe of serve): a ticker, stopped on the way out, and a function
// run at every tick until done closes or the function says it is finished.
package tick

import "time"

// Every calls fn every period until done is closed or fn returns false. It
// does not call fn before the first period has passed, and returns without
// a last call. A tick that is due when done closes may still run (select
// picks among ready cases at random), as with a hand-written loop.
func Every(done <-chan struct{}, period time.Duration, fn func() (more bool)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if !fn() {
				return
			}
		}
	}
}
