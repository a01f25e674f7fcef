// Command benchpeers measures tokenshift against its peers on this machine,
// in one run, and prints each stack's throughput as a ratio to a bare Fiber
// handler measured in the same rounds:
//
//	make bench-peers                       # 5 rounds of 5 s, every stack
//	make bench-peers BENCH_PEERS_ARGS='-rounds 3 -stacks "bare|oauth2"'
//	cd internal/benchpeers && go run . -smoke
//
// Every server (redis-server, the peers, tokenshift) runs on a free port of
// 127.0.0.1, started and killed by the harness. Peers come from the Go module
// proxy (pinned in this module's go.mod, oauth2-proxy by `go install` of a
// pinned version, cached by version) and npm (`npm ci` of the committed
// lockfile, cached by its hash). Throughput is closed loop (`wrk -t1 -c32`),
// in interleaved rounds: every stack once per round, in a rotated order, and
// each figure is the median over the rounds of stack/bare in the same round,
// so a machine busy with something else moves both sides. Latency is open
// loop, right after each closed-loop run: a fixed rate (-rate, 2000/s for
// 2 s), each request timed from when it was due; p50 and p99 are medians
// over the rounds.
//
// The stack "tokenshift legacy express" is tokenshift reading the Express
// peer's sessions (legacy.sources, kind express) from its Redis.
//
// Before measuring, each stack is asked once with its credential (it must
// answer 2xx with the logged-in user in its body or headers) and once
// without (it must refuse): a stack whose login broke cannot pass for a fast
// one. Any non-2xx answer during a measurement fails the run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchpeers:", err)
		os.Exit(1)
	}
}
