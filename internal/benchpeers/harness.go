package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Pinned peers that are not Go modules of this harness (those are pinned in
// go.mod). Change a version here and its cached build is rebuilt.
const (
	oauth2ProxyModule  = "github.com/oauth2-proxy/oauth2-proxy/v7"
	oauth2ProxyVersion = "v7.15.6"
)

// errBadStack marks a stack that did not answer as an authenticated stack
// must: its figure would be meaningless.
var errBadStack = errors.New("stack answered wrongly")

type options struct {
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	conns       int
	rate        int
	rateFor     time.Duration
	stacks      *regexp.Regexp
	smoke       bool
	keepWorkDir bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("benchpeers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var filter string
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds: every stack once per round")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "closed-loop run per stack per round (whole seconds, wrk's unit)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "closed-loop warm-up per stack before the rounds (0: none)")
	fs.IntVar(&o.conns, "c", 32, "wrk connections (one thread)")
	fs.IntVar(&o.rate, "rate", 2000, "open-loop rate for the latency figures, requests per second")
	fs.DurationVar(&o.rateFor, "rate-duration", 2*time.Second, "open-loop run per stack per round (p50/p99 are medians over the rounds)")
	fs.StringVar(&filter, "stacks", "", "regular expression: only the stacks whose name matches (bare always runs)")
	fs.BoolVar(&o.smoke, "smoke", false, "one short round of every stack (1 s, no warm-up, 0.5 s at 200 req/s): checks the harness, not a figure to read")
	fs.BoolVar(&o.keepWorkDir, "keep", false, "keep the work directory (server logs) after the run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	re, err := regexp.Compile(filter)
	if err != nil {
		return o, fmt.Errorf("-stacks: %w", err)
	}
	o.stacks = re
	if o.smoke {
		o.rounds, o.duration, o.warmup, o.rate, o.rateFor = 1, time.Second, 0, 200, 500*time.Millisecond
	}
	switch {
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.duration < time.Second || o.duration%time.Second != 0:
		return o, errors.New("-duration must be whole seconds, at least 1s (wrk's unit)")
	case o.warmup%time.Second != 0 || o.warmup < 0:
		return o, errors.New("-warmup must be whole seconds")
	case o.conns < 1, o.rate < 1, o.rateFor <= 0:
		return o, errors.New("-c, -rate and -rate-duration must be positive")
	}
	return o, nil
}

// run is the whole harness; main and the smoke test call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	stacks := selectStacks(o.stacks)
	if err := requireTools(stacks); err != nil {
		return err
	}
	env, err := newEnv(ctx, stderr, o.keepWorkDir)
	if err != nil {
		return err
	}
	defer env.close()

	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	// failed names the stack and shows its servers' logs, unless the run
	// was interrupted (then every child was killed on purpose).
	failed := func(s *stack, what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("%s%s: %w%s", s.name, what, err, env.logsOf(s))
	}
	loadStart := loadAvg()
	logf("== load average at start: %s", loadStart)
	for _, s := range stacks {
		if err := env.prepare(ctx, s); err != nil {
			return failed(s, "", err)
		}
	}
	for _, s := range stacks {
		if err := s.verify(ctx); err != nil {
			return failed(s, "", err)
		}
	}
	logf("== every stack answered its credential and refused without it")

	if o.warmup > 0 {
		logf("== warm-up, %s each", o.warmup)
		for _, s := range stacks {
			if _, err := wrk(ctx, s.target, o.conns, o.warmup); err != nil {
				return failed(s, " warm-up", err)
			}
		}
	}
	fig, err := measure(ctx, o, stacks, logf, failed)
	if err != nil {
		return err
	}
	loadEnd := loadAvg()
	logf("== load average at end: %s", loadEnd)

	fmt.Fprintf(stdout, "\nbenchpeers %s: %d round(s) x %s, wrk -t1 -c%d, GET on 127.0.0.1; latency open loop at %d req/s for %s per round\n",
		strings.Join(args, " "), o.rounds, o.duration, o.conns, o.rate, o.rateFor)
	fmt.Fprintf(stdout, "%s, %d CPUs; oauth2-proxy %s; node %s; load average %s at start, %s at end\n\n",
		runtime.Version(), runtime.NumCPU(), oauth2ProxyVersion, env.nodeVersion, loadStart, loadEnd)
	fig.table(stdout, stacks)
	if o.smoke {
		fmt.Fprintln(stdout, "\n(-smoke: one short round; the figures check the harness, do not quote them)")
	}
	return nil
}

// figures are the measurements of every round, per stack name.
type figures struct {
	rps, ratio, p50, p99 map[string][]float64
}

// measure runs the rounds: in each, every stack closed loop (req/s, and its
// ratio to bare in the same round) then open loop (latency).
func measure(ctx context.Context, o options, stacks []*stack, logf func(string, ...any), failed func(*stack, string, error) error) (figures, error) {
	fig := figures{
		rps:   make(map[string][]float64, len(stacks)),
		ratio: make(map[string][]float64, len(stacks)),
		p50:   make(map[string][]float64, len(stacks)),
		p99:   make(map[string][]float64, len(stacks)),
	}
	for r := range o.rounds {
		// Rotate the order so that no stack always runs right after the
		// same neighbour (or first, on a cold machine).
		order := slices.Concat(stacks[r%len(stacks):], stacks[:r%len(stacks)])
		got := make(map[string]float64, len(stacks))
		for _, s := range order {
			res, err := wrk(ctx, s.target, o.conns, o.duration)
			if err != nil {
				return fig, failed(s, fmt.Sprintf(" round %d", r+1), err)
			}
			got[s.name] = res.rps
			// The open-loop run follows the closed-loop one of the same
			// stack, so both see the same moment of the machine.
			l, err := openLoop(ctx, s.target, o.rate, o.rateFor)
			if err != nil {
				return fig, failed(s, fmt.Sprintf(" round %d at %d req/s", r+1, o.rate), err)
			}
			fig.p50[s.name] = append(fig.p50[s.name], l.p50.Seconds()*1e3)
			fig.p99[s.name] = append(fig.p99[s.name], l.p99.Seconds()*1e3)
		}
		base := got[bareName]
		for _, s := range stacks {
			fig.rps[s.name] = append(fig.rps[s.name], got[s.name])
			fig.ratio[s.name] = append(fig.ratio[s.name], got[s.name]/base)
		}
		logf("== round %d/%d done (bare %.0f req/s), load average %s", r+1, o.rounds, base, loadAvg())
	}
	return fig, nil
}

// table prints the medians of every stack as a Markdown table.
func (fig figures) table(w io.Writer, stacks []*stack) {
	fmt.Fprintln(w, "| stack | req/s (median) | x bare (median [min-max]) | p50 ms | p99 ms (median) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, s := range stacks {
		rt := fig.ratio[s.name]
		fmt.Fprintf(w, "| %s | %.0f | %.2f [%.2f-%.2f] | %.2f | %.2f |\n", s.name, median(fig.rps[s.name]),
			median(rt), slices.Min(rt), slices.Max(rt), median(fig.p50[s.name]), median(fig.p99[s.name]))
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// loadAvg is the first three fields of /proc/loadavg ("?" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
