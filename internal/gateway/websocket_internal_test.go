package gateway

import (
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// isWebSocketCheck's one pass over the headers answers what three c.Get
// lookups answered: any spelling of the names, first occurrence counts,
// Upgrade as a token list.
func TestIsWebSocketCheckAsLookups(t *testing.T) {
	lookups := func(c *fiber.Ctx) bool {
		return c.Get("Sec-Websocket-Key") != "" ||
			strings.EqualFold(c.Get("Sec-Fetch-Mode"), "websocket") ||
			hasToken(c.Get(fiber.HeaderUpgrade), "websocket")
	}
	cases := [][][2]string{
		nil,
		{{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}},
		{{"sec-websocket-key", ""}},
		{{"SEC-FETCH-MODE", "WebSocket"}},
		{{"Sec-Fetch-Mode", "navigate"}, {"Sec-Fetch-Mode", "websocket"}},
		{{"Sec-Fetch-Mode", "websocket"}, {"Sec-Fetch-Mode", "navigate"}},
		{{"Upgrade", "h2c, WebSocket"}},
		{{"upgrade", "h2c"}, {"Upgrade", "websocket"}},
		{{"Upgrade", "websockets"}},
		{{"X-Other", "websocket"}, {"Connection", "upgrade"}},
	}
	app := fiber.New()
	for _, hs := range cases {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fiber.MethodGet)
		ctx.Request.SetRequestURI("/auth/verify")
		for _, h := range hs {
			ctx.Request.Header.Add(h[0], h[1])
		}
		c := app.AcquireCtx(&ctx)
		if got, want := isWebSocketCheck(c), lookups(c); got != want {
			t.Errorf("headers %q: isWebSocketCheck = %v, the lookups say %v", hs, got, want)
		}
		app.ReleaseCtx(c)
	}
}

// With header names kept as sent (normalising off), every spelling still
// counts: the WebSocket check and the original method never miss a header
// the proxy sent in lower case.
func TestHeaderScansWithoutNormalising(t *testing.T) {
	app := fiber.New()
	for _, tc := range []struct {
		headers    [][2]string
		websocket  bool
		method     string
		wantMethod string
	}{
		{headers: [][2]string{{"sec-websocket-key", "k"}}, websocket: true, method: "GET", wantMethod: "GET"},
		{headers: [][2]string{{"SEC-FETCH-MODE", "websocket"}}, websocket: true, method: "GET", wantMethod: "GET"},
		{headers: [][2]string{{"upgrade", "websocket"}, {"x-forwarded-method", "GET"}, {"X-FORWARDED-METHOD", "POST"}}, websocket: true, method: "GET", wantMethod: "POST"},
		{headers: [][2]string{{"x-original-method", "PUT"}}, method: "GET", wantMethod: "PUT"},
		{headers: [][2]string{{"x-original-method", "HEAD"}, {"X-Forwarded-Method", "GET"}}, method: "GET", wantMethod: "HEAD"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.DisableNormalizing()
		ctx.Request.Header.SetMethod(tc.method)
		ctx.Request.SetRequestURI("/auth/verify")
		for _, h := range tc.headers {
			ctx.Request.Header.Add(h[0], h[1])
		}
		c := app.AcquireCtx(&ctx)
		if got := isWebSocketCheck(c); got != tc.websocket {
			t.Errorf("%q: isWebSocketCheck = %v, want %v", tc.headers, got, tc.websocket)
		}
		if got := OriginalMethod(c); got != tc.wantMethod {
			t.Errorf("%q: OriginalMethod = %q, want %q", tc.headers, got, tc.wantMethod)
		}
		app.ReleaseCtx(c)
	}
}
