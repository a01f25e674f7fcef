package main

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tokenshift/tokenshift/internal/termsafe"
)

// table writes aligned columns. Every cell is passed through printable:
// values come from the server, and some of them from clients (a login's user
// agent) or from other operators (audit reasons), so an escape sequence in
// one must not reach the operator's terminal, and a tab or newline must not
// forge columns or rows.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)}
	if len(header) > 0 {
		fmt.Fprintln(t.tw, strings.Join(header, "\t"))
	}
	return t
}

// row writes one line; each cell is formatted with %v, then made printable.
func (t *table) row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		io.WriteString(t.tw, printable(fmt.Sprint(c)))
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// printable replaces every character a terminal would not simply print (C0
// and C1 controls such as ESC, BEL, CR, LF and TAB, DEL, Unicode format
// characters such as bidirectional overrides, and bytes that are not UTF-8)
// by a visible Go-style escape: \x1b, \n, \u202e, \xff (termsafe.Escape,
// the counterpart of the rule the server applies to the text it stores).
func printable(s string) string { return termsafe.Escape(s) }

// outf is fmt.Fprintf for everything the CLI prints: every argument that is
// not a number or a bool is formatted with %v and made printable first, so a
// value from the server (a reason, a user id, a detail) cannot drive the
// terminal or forge a line, whatever verb the format uses for it. The format
// itself is the CLI's own text. TestOutputGoesThroughEscaping keeps every
// print of cmd/tokenshift on outf, outln, table or printJSON.
func outf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format, printableArgs(args)...)
}

// outln is fmt.Fprintln with the arguments of outf.
func outln(w io.Writer, args ...any) {
	fmt.Fprintln(w, printableArgs(args)...)
}

func printableArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch reflect.ValueOf(a).Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
			reflect.Float32, reflect.Float64:
			out[i] = a // %d, %.2f keep working; numbers print as digits
		default:
			out[i] = printable(fmt.Sprint(a))
		}
	}
	return out
}

// printableJSON escapes, inside an indented JSON document, every character
// a terminal would act on as a JSON escape (\u001b, \u202e, a surrogate
// pair above U+FFFF), and every byte that is not UTF-8 as \ufffd, so the
// output stays the same JSON for a program and harmless text for a
// terminal. encoding/json escapes C0 controls in strings but passes DEL, C1
// controls, bidirectional overrides and invalid UTF-8 through. The document
// must come from json.Indent: outside strings it then holds only newlines
// and spaces.
func printableJSON(doc []byte) []byte {
	var b bytes.Buffer
	for i := 0; i < len(doc); {
		r, n := utf8.DecodeRune(doc[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\ufffd`)
		case r == '\n' || unicode.IsPrint(r):
			b.Write(doc[i : i+n])
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.Bytes()
}
