package termsafe

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		offset  int // -1: accepted
		invalid bool
	}{
		{name: "plain ASCII", in: "chargeback fraud, ticket 4711", offset: -1},
		{name: "other scripts and emoji", in: "Betrug – Überweisung 払い戻し ✓ 👍", offset: -1},
		{name: "empty", in: "", offset: -1},
		{name: "a real U+FFFD is a character", in: "odd \uFFFD here", offset: -1},
		{name: "ESC", in: "ok\x1b[2J", offset: 2},
		{name: "BEL", in: "\a", offset: 0},
		{name: "CR", in: "a\rb", offset: 1},
		{name: "LF", in: "a\nb", offset: 1},
		{name: "TAB", in: "a\tb", offset: 1},
		{name: "NUL", in: "a\x00", offset: 1},
		{name: "DEL", in: "a\x7f", offset: 1},
		{name: "C1 CSI", in: "a\u009b", offset: 1},
		{name: "bidi override", in: "abc\u202edef", offset: 3},
		{name: "bidi isolate", in: "\u2066x", offset: 0},
		{name: "zero-width space", in: "a\u200bb", offset: 1},
		{name: "invalid UTF-8", in: "ab\xffcd", offset: 2, invalid: true},
		{name: "truncated sequence", in: "ab\xe2\x82", offset: 2, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.in)
			if tc.offset < 0 {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrNotPrintable) {
				t.Fatalf("Check(%q) = %v, want an *Error matching ErrNotPrintable", tc.in, err)
			}
			if e.Offset != tc.offset || e.InvalidUTF8 != tc.invalid {
				t.Fatalf("Check(%q) = %+v, want offset %d, invalid UTF-8 %v", tc.in, e, tc.offset, tc.invalid)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want, lines string }{
		{in: "plain text, élan ✓", want: "plain text, élan ✓", lines: "plain text, élan ✓"},
		{in: "a\x1b[2Jb", want: `a\x1b[2Jb`, lines: `a\x1b[2Jb`},
		{in: "bell\a", want: `bell\a`, lines: `bell\a`},
		{in: "row\r\nforged", want: `row\r\nforged`, lines: "row\\r\nforged"},
		{in: "col\tforged", want: `col\tforged`, lines: `col\tforged`},
		{in: "del\x7f", want: `del\x7f`, lines: `del\x7f`},
		{in: "csi\u009b", want: `csi\u009b`, lines: `csi\u009b`},
		{in: "bidi\u202eabc", want: `bidi\u202eabc`, lines: `bidi\u202eabc`},
		{in: "line sep\u2028", want: `line sep\u2028`, lines: `line sep\u2028`},
		{in: "bad\xffutf8", want: `bad\xffutf8`, lines: `bad\xffutf8`},
		{in: "nul\x00", want: `nul\x00`, lines: `nul\x00`},
		{in: "tag\U000E0001", want: `tag\U000e0001`, lines: `tag\U000e0001`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := Escape(Escape(tc.in)); got != tc.want {
			t.Errorf("Escape is not idempotent on %q: %q", tc.in, got)
		}
		if got := EscapeLines(tc.in); got != tc.lines {
			t.Errorf("EscapeLines(%q) = %q, want %q", tc.in, got, tc.lines)
		}
		if err := Check(Escape(tc.in)); err != nil {
			t.Errorf("Check(Escape(%q)) = %v", tc.in, err)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[2J", "a\r\nb", "\u202e", "\xff\xfe", "\U000E0001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if err := Check(e); err != nil {
			t.Fatalf("Escape(%q) = %q still fails Check: %v", s, e, err)
		}
		if Escape(e) != e {
			t.Fatalf("Escape is not idempotent on %q", s)
		}
	})
}
