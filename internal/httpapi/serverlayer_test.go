package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
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
		code   string // "": any
		detail string // part of the detail; "": any
		// closes: the server must close the connection after answering
		// (the framing is ambiguous, so is what follows).
		closes bool
	}{
		{name: "bad chunk size", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", status: 400},
		{name: "no method", raw: " /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "\r\n", status: 400},
		{name: "bad content length", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Length: abc\r\n\r\n", status: 400},
		{name: "headers over the read buffer", raw: "GET /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", status: 431},
		{name: "body over the limit", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", status: 413},
		// RFC 9112 §6.3: a length that parsers could read differently.
		{name: "duplicate Content-Length", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", status: 400, code: "invalid_request", detail: "ambiguous", closes: true},
		{name: "duplicate Content-Length smuggling a request", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 34\r\nContent-Length: 0\r\n\r\nGET /auth/me HTTP/1.1\r\nHost: x\r\n\r\n", status: 400, code: "invalid_request", detail: "ambiguous", closes: true},
		{name: "Content-Length list", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 2, 2\r\n\r\n{}", status: 400, code: "invalid_request", closes: true},
		{name: "Transfer-Encoding with Content-Length", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", status: 400, code: "invalid_request", detail: "ambiguous", closes: true},
		{name: "Transfer-Encoding not ending in chunked", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\n{}\r\n0\r\n\r\n", status: 400, code: "invalid_request", detail: "ambiguous", closes: true},
		{name: "chunked twice", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", status: 400, code: "invalid_request", detail: "ambiguous", closes: true},
		{name: "folded header line", raw: "POST /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Type: application/json\r\nContent-Length: 2\r\nX-Note: a\r\n b\r\n\r\n{}", status: 400, code: "invalid_request", detail: "obs-fold", closes: true},
		// Two Authorization headers: authn and an upstream would read
		// different ones.
		{name: "two Authorization headers", raw: "GET /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "Authorization: Bearer SECRET-OTHER\r\n\r\n", status: 400, code: "invalid_request"},
		// RFC 9112 §3.2: exactly one Host in HTTP/1.1.
		{name: "two Host headers", raw: "GET /livez HTTP/1.1\r\nHost: x\r\nHost: evil.example\r\n\r\n", status: 400, code: "invalid_request"},
		{name: "no Host", raw: "GET /livez HTTP/1.1\r\n\r\n", status: 400, code: "invalid_request"},
		// Fiber answers unknown methods itself, as text/plain.
		{name: "lowercase method", raw: "post /auth/login HTTP/1.1\r\nHost: x\r\n" + creds + "Content-Length: 0\r\n\r\n", status: 501, code: "not_implemented"},
		{name: "unknown method", raw: "BREW /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "\r\n", status: 501, code: "not_implemented"},
		{name: "method not a token", raw: "G{T /auth/me HTTP/1.1\r\nHost: x\r\n" + creds + "\r\n", status: 400, code: "invalid_request"},
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
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if tt.code != "" && !strings.Contains(string(body), `"code":"`+tt.code+`"`) {
				t.Errorf("code: want %s, body %s", tt.code, body)
			}
			if tt.detail != "" && !strings.Contains(string(body), tt.detail) {
				t.Errorf("detail: want %q in %s", tt.detail, body)
			}
			// Every answer, even one made before routing, has the headers
			// of every answer.
			if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("security headers missing: %v", res.Header)
			}
			if tt.closes {
				// Nothing else is answered (a smuggled request stays
				// unanswered) and the connection ends at once.
				_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				if extra, err := br.ReadByte(); err == nil {
					t.Errorf("the server sent more after its answer (%q...)", extra)
				} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("the connection was not closed after the answer: %v", err)
				}
			}
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
