package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/gateway"
)

// TestProxyStreamsEvents: each server-sent event reaches the client while the
// upstream is still waiting to send the next one (nothing is buffered whole),
// and a stream longer than server.write_timeout is not cut.
func TestProxyStreamsEvents(t *testing.T) {
	next := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := 1; i <= 4; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			f.Flush()
			if i == 4 {
				return
			}
			select {
			case <-next:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
	})
	e := newEnv(t, envOptions{writeTimeout: time.Second, gateway: routes(gateway.Route{Prefix: "/events", Upstream: up.URL, Auth: gateway.AuthRequired})})
	cr := e.login(t, "web")
	base := e.listen(t)

	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+cr.access)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				lines <- l
			}
		}
		close(lines)
	}()
	start := time.Now()
	for i := 1; i <= 4; i++ {
		select {
		case l, ok := <-lines:
			if !ok || l != fmt.Sprintf("data: event %d", i) {
				t.Fatalf("event %d: got %q (open %v) after %s", i, l, ok, time.Since(start))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive while the upstream waits: the proxy buffers", i)
		}
		if i < 4 {
			// Outlive the 1s write timeout in total before the last event.
			time.Sleep(400 * time.Millisecond)
			next <- struct{}{}
		}
	}
	t.Logf("4 events over %s with server.write_timeout 1s", time.Since(start))
}

// wsUpstream answers a WebSocket handshake with 101 and then echoes bytes,
// or refuses it with 403 on /ws/refuse (keeping the connection open, as a
// server may).
func wsUpstream(t *testing.T) *upstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws/refuse" {
			http.Error(w, "no sockets here", http.StatusForbidden)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: accept-%s\r\nX-Seen-User: %s\r\n\r\n",
			r.Header.Get("Sec-WebSocket-Key"), r.Header.Get("X-Auth-User"))
		brw.Flush()
		_, _ = io.Copy(conn, brw)
	})
}

func handshake(t *testing.T, base, path string, header map[string]string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k1\r\nSec-WebSocket-Version: 13\r\n", path)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, res
}

func TestProxyWebSocket(t *testing.T) {
	up := wsUpstream(t)
	e := newEnv(t, envOptions{gateway: routes(gateway.Route{Prefix: "/ws", Upstream: up.URL, Auth: gateway.AuthRequired})})
	cr := e.login(t, "web")
	base := e.listen(t)

	t.Run("authenticated upgrade is tunnelled", func(t *testing.T) {
		conn, br, res := handshake(t, base, "/ws/chat", map[string]string{"Authorization": "Bearer " + cr.access, "X-Auth-User": "u-forged"})
		if res.StatusCode != 101 || res.Header.Get("Sec-WebSocket-Accept") != "accept-k1" {
			t.Fatalf("handshake: %d %v", res.StatusCode, res.Header)
		}
		if res.Header.Get("X-Seen-User") != cr.userID {
			t.Fatalf("the upstream saw X-Auth-User %q, want %q", res.Header.Get("X-Seen-User"), cr.userID)
		}
		for _, msg := range []string{"hello", "frames are opaque bytes to the proxy"} {
			if _, err := io.WriteString(conn, msg); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
				t.Fatalf("echo %q: %q %v", msg, buf, err)
			}
		}
	})
	t.Run("unauthenticated upgrade is refused", func(t *testing.T) {
		before := up.count()
		_, _, res := handshake(t, base, "/ws/chat", nil)
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("status %d Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if up.count() != before {
			t.Fatal("the upstream was reached")
		}
	})
	t.Run("cross-site cookie upgrade is refused", func(t *testing.T) {
		_, _, res := handshake(t, base, "/ws/chat", map[string]string{"Cookie": "ts_session=" + cr.session, "Origin": "https://evil.example"})
		if res.StatusCode != 403 {
			t.Fatalf("status %d, want 403", res.StatusCode)
		}
	})
	t.Run("same-origin cookie upgrade is tunnelled", func(t *testing.T) {
		_, _, res := handshake(t, base, "/ws/chat", map[string]string{"Cookie": "ts_session=" + cr.session, "Origin": "http://example.com"})
		if res.StatusCode != 101 {
			t.Fatalf("status %d, want 101", res.StatusCode)
		}
	})
	t.Run("an upstream refusal is relayed, never tunnelled", func(t *testing.T) {
		conn, br, res := handshake(t, base, "/ws/refuse", map[string]string{"Authorization": "Bearer " + cr.access})
		body, _ := io.ReadAll(io.LimitReader(res.Body, 100))
		if res.StatusCode != 403 || !strings.Contains(string(body), "no sockets here") {
			t.Fatalf("status %d body %q", res.StatusCode, body)
		}
		// The connection is tokenshift's again: a next request on it is
		// authenticated like any other, not piped raw to the upstream.
		before := up.count()
		if _, err := io.WriteString(conn, "GET /ws/other HTTP/1.1\r\nHost: example.com\r\nX-Auth-User: u-forged\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		next, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if next.StatusCode != 401 || up.count() != before {
			t.Fatalf("second request on the connection: %d, upstream reached %v", next.StatusCode, up.count() != before)
		}
	})
}
