package httpapi

import (
	"errors"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestGuardedHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want error // nil: accepted
		// http10: an HTTP/1.0 request, which may come without Host.
		http10 bool
	}{
		{name: "one Content-Length", raw: "Host: x\r\nContent-Length: 5\r\n\r\n"},
		{name: "chunked", raw: "Host: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "gzip then chunked", raw: "Host: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"},
		{name: "codings over two lines", raw: "Host: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "one Authorization", raw: "Host: x\r\nAuthorization: Bearer abc\r\n\r\n"},
		{name: "bare LF line ends", raw: "Host: x\nContent-Length: 5\n\n"},
		{name: "HTTP/1.0 without Host", raw: "\r\n", http10: true},
		{name: "two Content-Length", raw: "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", want: errFraming},
		{name: "two Content-Length, other case", raw: "content-length: 5\r\nCONTENT-LENGTH: 0\r\n\r\n", want: errFraming},
		{name: "Content-Length list", raw: "Content-Length: 5, 5\r\n\r\n", want: errFraming},
		{name: "Transfer-Encoding and Content-Length", raw: "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", want: errFraming},
		{name: "Content-Length after Transfer-Encoding", raw: "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", want: errFraming},
		{name: "last coding not chunked", raw: "Transfer-Encoding: chunked, gzip\r\n\r\n", want: errFraming},
		{name: "identity", raw: "Transfer-Encoding: identity\r\n\r\n", want: errFraming},
		{name: "empty Transfer-Encoding", raw: "Transfer-Encoding: \r\n\r\n", want: errFraming},
		{name: "chunked twice", raw: "Transfer-Encoding: chunked, chunked\r\n\r\n", want: errFraming},
		{name: "obs-fold", raw: "X-A: 1\r\n 2\r\n\r\n", want: errFraming},
		{name: "obs-fold with a tab", raw: "Content-Length: 1\r\n\t0\r\n\r\n", want: errFraming},
		{name: "two Authorization", raw: "Host: x\r\nAuthorization: Basic x\r\nauthorization: Bearer y\r\n\r\n", want: errTwoAuthorizations},
		{name: "two Host", raw: "Host: x\r\nhost: y\r\n\r\n", want: errHost},
		{name: "HTTP/1.1 without Host", raw: "X-A: 1\r\n\r\n", want: errHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := guardedHeaders([]byte(tc.raw), !tc.http10)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || auth.ErrorCode(err) != auth.CodeInvalidRequest {
				t.Fatalf("got %v, want %v as invalid_request", err, tc.want)
			}
		})
	}
}

func TestCheckMethod(t *testing.T) {
	for _, tc := range []struct {
		method string
		want   auth.Code // "": accepted
	}{
		{method: "GET"}, {method: "POST"}, {method: "PATCH"}, {method: "OPTIONS"},
		{method: "post", want: auth.CodeNotImplemented},
		{method: "Get", want: auth.CodeNotImplemented},
		{method: "PROPFIND", want: auth.CodeNotImplemented},
		{method: "G{T", want: auth.CodeInvalidRequest},
		{method: "G\x1bT", want: auth.CodeInvalidRequest},
		{method: "GÉT", want: auth.CodeInvalidRequest},
		{method: "", want: auth.CodeInvalidRequest},
	} {
		err := checkMethod([]byte(tc.method), fiber.DefaultMethods)
		if got := auth.Code(""); err != nil {
			got = auth.ErrorCode(err)
			if got != tc.want {
				t.Errorf("checkMethod(%q) = %s, want %q", tc.method, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("checkMethod(%q) accepted, want %s", tc.method, tc.want)
		}
	}
}

// TestGuardNoAllocations: the checks run on every request.
func TestGuardNoAllocations(t *testing.T) {
	raw := []byte("Host: x\r\nUser-Agent: curl\r\nAuthorization: Bearer abc\r\nContent-Type: application/json\r\nContent-Length: 2\r\nCookie: a=b\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() {
		if guardedHeaders(raw, true) != nil || checkMethod([]byte("POST"), fiber.DefaultMethods) != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// FuzzGuardedHeaders: any header block is judged without a panic, and a
// refusal is always a 400.
func FuzzGuardedHeaders(f *testing.F) {
	for _, s := range []string{"Content-Length: 5\r\n\r\n", "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", "X: a\r\n b\r\n\r\n", ":\r\n\r\n", "\n", "Transfer-Encoding: ,,\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := guardedHeaders(raw, true); err != nil && Status(auth.ErrorCode(err)) != 400 {
			t.Fatalf("refusal %v is not a 400", err)
		}
	})
}
