package authn

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzVisitCookiesAsFasthttp: visitCookies yields the cookies fasthttp's own
// parser yields (VisitAllCookie), key for key, value for value, in order,
// for any Cookie header lines a request can carry (NUL separates lines;
// each line goes through fasthttp's request parser as on the wire, so what
// it refuses is skipped).
func FuzzVisitCookiesAsFasthttp(f *testing.F) {
	for _, seed := range []string{
		"ts_session=s1",
		"a=b; ts_access=t1",
		"ts_session=s1; ts_session=s2",
		"ts_session=s1\x00x=0; ts_session=s2",
		` ts_session = "quoted" ;; =v; k; ""; "";x=a=b`,
		`ts_access=""x""; ts_access="; ts_access=" ; `,
		"a=1;b=2;\x00;\x00 c = 3 ",
		"\tts_session=tab\t; ts_session=ok",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, lines string) {
		var raw strings.Builder
		raw.WriteString("GET / HTTP/1.1\r\nHost: x\r\n")
		for _, l := range strings.Split(lines, "\x00") {
			raw.WriteString("Cookie: " + l + "\r\n")
		}
		raw.WriteString("\r\n")
		var a, b fasthttp.Request
		if err := a.Read(bufio.NewReader(strings.NewReader(raw.String()))); err != nil {
			return
		}
		if err := b.Read(bufio.NewReader(strings.NewReader(raw.String()))); err != nil {
			t.Fatalf("the same request parsed once and not twice: %v", err)
		}
		var got, want [][2]string
		visitCookies(&a.Header, func(k, v []byte) { got = append(got, [2]string{string(k), string(v)}) })
		b.Header.VisitAllCookie(func(k, v []byte) { want = append(want, [2]string{string(k), string(v)}) })
		if len(got) != len(want) {
			t.Fatalf("lines %q: visitCookies %q, fasthttp %q", lines, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("lines %q: visitCookies %q, fasthttp %q", lines, got, want)
			}
		}
		// Reading the lines collected nothing: fasthttp still parses them
		// the same afterwards.
		var after [][2]string
		a.Header.VisitAllCookie(func(k, v []byte) { after = append(after, [2]string{string(k), string(v)}) })
		if !bytes.Equal([]byte(strings.Join(flat(after), "\x00")), []byte(strings.Join(flat(want), "\x00"))) {
			t.Fatalf("lines %q: after visitCookies fasthttp reads %q, want %q", lines, after, want)
		}
		// Once fasthttp has its list, visitCookies reads that.
		var collected [][2]string
		visitCookies(&a.Header, func(k, v []byte) { collected = append(collected, [2]string{string(k), string(v)}) })
		if strings.Join(flat(collected), "\x00") != strings.Join(flat(want), "\x00") {
			t.Fatalf("lines %q: visitCookies after collection %q, want %q", lines, collected, want)
		}
	})
}

func flat(kvs [][2]string) []string {
	var s []string
	for _, kv := range kvs {
		s = append(s, kv[0]+"="+kv[1])
	}
	return s
}

// BenchmarkCookieScan: finding the access cookie of a request as it comes
// off the wire (parsed every iteration, as the server does), with a
// 520-byte token, by visitCookies and by fasthttp's list.
//
//	go test -run '^$' -bench CookieScan -benchmem ./internal/authn/
func BenchmarkCookieScan(b *testing.B) {
	token := strings.Repeat("eyJhbGciOiJFZERTQSJ9.", 24) + "sig"
	raw := []byte("GET /auth/me HTTP/1.1\r\nHost: x\r\nCookie: theme=dark; ts_access=" + token + "\r\n\r\n")
	for _, tc := range []struct {
		name  string
		visit func(h *fasthttp.RequestHeader, f func(k, v []byte))
	}{
		{"parse-only", nil},
		{"visitCookies", visitCookies},
		{"fasthttp-list", func(h *fasthttp.RequestHeader, f func(k, v []byte)) { h.VisitAllCookie(f) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var req fasthttp.Request
			rd := bytes.NewReader(raw)
			br := bufio.NewReader(rd)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				req.Reset()
				if err := req.Read(br); err != nil {
					b.Fatal(err)
				}
				if tc.visit == nil {
					continue
				}
				found := 0
				tc.visit(&req.Header, func(k, v []byte) {
					if string(k) == "ts_access" && len(v) == len(token) {
						found++
					}
				})
				if found != 1 {
					b.Fatalf("found %d", found)
				}
			}
		})
	}
}
