package httpapi

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServerLayerErrorsEchoNothing: requests fasthttp cannot read never
// reach a handler, and Fiber's message for them quotes the raw request. The
// problem body must not repeat it: a same-origin script could send a broken
// request and read the HttpOnly cookies back from the 400. Sent over a raw
// TCP connection, since no Go client sends such requests.
func TestServerLayerErrorsEchoNothing(t *testing.T) {
	ts := newTestServer(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ts.App.Listener(ln) }()
	t.Cleanup(func() { _ = ts.App.ShutdownWithTimeout(2 * time.Second) })

	const secret = "ts_session=SECRET-SESSION-VALUE"
	const bearer = "Bearer SECRET-BEARER-VALUE"
	creds := "Cookie: " + secret + "\r\nAuthorization: " + bearer + "\r\n"
	tests := []struct {
		name   string
		raw    string
		status int
	}{
		{name: "bad chunk size", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", status: 400},
		{name: "no method", raw: " /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "\r\n", status: 400},
		{name: "bad content length", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Length: abc\r\n\r\n", status: 400},
		{name: "headers over the read buffer", raw: "GET /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", status: 431},
		{name: "body over the limit", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tt.raw); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			t.Logf("%d %s", res.StatusCode, body)
			if res.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", res.StatusCode, tt.status, body)
			}
			if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("Content-Type = %q", res.Header.Get("Content-Type"))
			}
			var p map[string]any
			if err := json.Unmarshal(body, &p); err != nil || p["code"] == nil {
				t.Fatalf("not a problem body: %s", body)
			}
			for _, leak := range []string{"SECRET", "ts_session", "Authorization", "Cookie", "X-Big"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("the answer repeats %q from the request: %s", leak, body)
				}
			}
		})
	}
}
