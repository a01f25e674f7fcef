// Package handlerbench drives a fasthttp handler in-process for the
// benchmarks of internal/httpapi and internal/gateway: the same request
// context over and over, so a figure is the handler's own work per request
// without the network (and without parsing the request: the request is
// parsed once). Besides ns/op it reports cpu-ns/op, the CPU time of the
// benchmark's own thread, which on a shared machine does not count the time
// spent waiting for a core (background GC work on other threads is not in
// it either).
package handlerbench

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Request prepares a reusable GET of uri for host; setup adds credentials.
func Request(uri, host string, setup func(r *fasthttp.Request)) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost(host)
	if setup != nil {
		setup(&ctx.Request)
	}
	return &ctx
}

// Run answers ctx with h b.N times. check must accept the answer before the
// loop and after it (nil: status 200), so a benchmark can never time a
// refusal.
func Run(b *testing.B, h fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, check func(*fasthttp.Response) bool) {
	b.Helper()
	if check == nil {
		check = func(r *fasthttp.Response) bool { return r.StatusCode() == fasthttp.StatusOK }
	}
	h(ctx)
	if !check(&ctx.Response) {
		b.Fatalf("refused before the loop: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	b.ResetTimer()
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
	b.StopTimer()
	if d := threadCPUTime() - start; b.N > 0 && d > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	if !check(&ctx.Response) {
		b.Fatalf("refused after the loop: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

// threadCPUTime is the user and system time of the calling OS thread (0
// where the platform cannot tell).
func threadCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
