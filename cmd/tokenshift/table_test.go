package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, élan ✓", "plain text, élan ✓"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"bell\a", `bell\a`},
		{"row\r\nforged", `row\r\nforged`},
		{"col\tforged", `col\tforged`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b", `csi\u009b`},
		{"bidi\u202eabc", `bidi\u202eabc`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"nul\x00", `nul\x00`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// noTerminalControl fails when out holds anything but printable text, tabs
// turned to spaces by the table, and line ends.
func noTerminalControl(t *testing.T, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar) {
			t.Fatalf("output holds %U:\n%q", r, out)
		}
	}
}

// TestSessionsListEscapesUserAgents: a user agent recorded before clients'
// input was cleaned (or by an older server) cannot drive the operator's
// terminal or forge a row.
func TestSessionsListEscapesUserAgents(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{"sessions": []map[string]any{{
		"sid": "s1", "client_id": "web", "created_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:00Z",
		"session": true, "tokens": false, "ip": "192.0.2.1",
		"user_agent": "curl\x1b]0;owned\a\x1b[2J\r\nfake-sid\tweb\u202e",
	}}})
	var out bytes.Buffer
	if err := printSessions(&out, raw); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, out.String())
	if lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("want a header and one row, got %d lines:\n%s", len(lines), out.String())
	}
	if !strings.Contains(out.String(), `curl\x1b]0;owned\a\x1b[2J\r\nfake-sid\tweb\u202e`) {
		t.Fatalf("the user agent is not shown escaped:\n%s", out.String())
	}
}

// TestAuditEscapesActorAndReason: entries written before the server refused
// control characters still print safely.
func TestAuditEscapesActorAndReason(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{"entries": []map[string]any{{
		"at": "2026-01-01T00:00:00Z", "actor": "ops\x1b[8m@example.com", "action": "set", "reason": "fine\r\n2026-01-02 admin rollback",
		"from": map[string]any{"version": 1, "phase": "dual"},
		"to":   map[string]any{"version": 2, "phase": "prefer-jwt", "clients": map[string]any{"web\x1b[0m": map[string]any{"phase": "jwt-only"}}},
	}}})
	var out bytes.Buffer
	if err := printAudit(&out, raw); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, out.String())
	if lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("want a header and one row, got %d lines:\n%s", len(lines), out.String())
	}
	for _, want := range []string{`ops\x1b[8m@example.com`, `fine\r\n2026-01-02 admin rollback`, `web\x1b[0m`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// hostile holds what a terminal would act on: an OSC title change, BEL, a
// screen clear, a forged line, a tab, DEL, a C1 CSI and a bidi override
// (bytes that are not UTF-8 become U+FFFD when the CLI decodes the answer;
// printJSON, which does not decode, is tested with them below).
const hostile = "x\x1b]0;owned\a\x1b[2J\r\nuser u-bob: active\t\x7f\u009b\u202eZ"

// TestAccountEscapesServerText: `tokenshift user account` prints the stored
// reason, operator and user id of a suspension; whatever the server holds
// (stored before the server refused such text, or sent by another server),
// the terminal gets escapes, and the answer stays on its line.
func TestAccountEscapesServerText(t *testing.T) {
	raw, _ := json.Marshal(map[string]any{
		"user_id": "u-alice" + hostile, "suspended": true, "suspended_at": "2026-01-01T00:00:00Z",
		"suspended_by": "ops@example.com" + hostile, "reason": "fraud" + hostile, "password_changed_at": "2026-01-02T00:00:00Z",
	})
	var out bytes.Buffer
	if err := printAccount(&out, raw); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, out.String())
	if lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("want the suspension line and the password line, got %d lines:\n%s", len(lines), out.String())
	}
	if want := `fraudx\x1b]0;owned\a\x1b[2J\r\nuser u-bob: active\t\x7f\u009b\u202eZ`; !strings.Contains(out.String(), want) {
		t.Fatalf("the reason is not shown escaped:\n%s", out.String())
	}
}

// TestJSONOutputEscapesServerText: --json prints the answer as JSON that a
// program decodes to the same values, with nothing a terminal acts on.
func TestJSONOutputEscapesServerText(t *testing.T) {
	raw := []byte(`{"reason": "a\u001b[2J\u0007 ` + "\x7f\u009b\u202e\U000E0001\xff" + `", "n": 1}` + "\r\n")
	var out bytes.Buffer
	if err := printJSON(&out, raw); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, out.String())
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if want := "a\x1b[2J\a \x7f\u009b\u202e\U000E0001\uFFFD"; got["reason"] != want || got["n"] != 1.0 {
		t.Fatalf("decoded %q, want %q", got["reason"], want)
	}
	out.Reset()
	if err := printJSON(&out, []byte("not json\x1b[2J\r\n")); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, strings.TrimSuffix(out.String(), "\n"))
}

// TestServerErrorsEscaped: a problem's code and detail reach the terminal
// through main's error line; they are escaped like any other server text.
func TestServerErrorsEscaped(t *testing.T) {
	e := &apiError{Status: 400, Code: "invalid_request\x1b[2J", Detail: "reason: bad\r\nforged line\u202e"}
	got := e.Error()
	noTerminalControl(t, got)
	if strings.Contains(got, "\n") {
		t.Fatalf("a detail forged a line: %q", got)
	}
}

// TestOutputGoesThroughEscaping: every print of the CLI goes through outf,
// outln, the table or printJSON, which make server values printable; a new
// fmt.Printf of a server value cannot slip in.
func TestOutputGoesThroughEscaping(t *testing.T) {
	allowed := map[string]bool{ // functions that are the escaping itself
		"outf": true, "outln": true, "newTable": true, "printableJSON": true, "main": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || allowed[fd.Name.Name] {
				continue
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if ok && pkg.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Print") || ok && pkg.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Fprint") {
					t.Errorf("%s: %s calls fmt.%s: print through outf/outln (or the table), which escape server values", fset.Position(sel.Pos()), fd.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
