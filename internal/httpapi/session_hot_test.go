package httpapi

import (
	"bytes"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestSessionMeHotPath: GET /auth/me with a session the near cache holds
// allocates nothing in tokenshift's code (issue 13, target 2), and many
// requests of the same login at once, which share the cache entry's
// principal, race on nothing (run with -race) and each answer the session.
func TestSessionMeHotPath(t *testing.T) {
	s := newDevServer(t)
	h := s.App.Handler()
	ctx := s.meRequestAs(t, "web", "session")
	for range 2 { // the first request reads the store, the second is a hit
		ctx.Response.Reset()
		h(ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	if !raceEnabled { // the race detector's runtime allocates in sync.Pool
		if n := testing.AllocsPerRun(200, func() {
			ctx.Response.Reset()
			h(ctx)
		}); n != 0 {
			t.Fatalf("a near-cache hit costs %v allocations per request, want 0", n)
		}
	}
	var cookie []byte
	ctx.Request.Header.VisitAllCookie(func(k, v []byte) {
		if string(k) == "ts_session" {
			cookie = append([]byte(nil), v...)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			c := meRequest(func(r *fasthttp.Request) { r.Header.SetCookieBytesKV([]byte("ts_session"), cookie) })
			for range 100 {
				c.Response.Reset()
				h(c)
				if c.Response.StatusCode() != 200 || !bytes.Contains(c.Response.Body(), []byte(`"scheme":"session"`)) {
					errs <- string(c.Response.Body())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent hit: %s", e)
	}
}
