package main

import (
	"bytes"
	"encoding/json"
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
		"from": map[string]any{"version": 1, "phase": "dual"}, "to": map[string]any{"version": 2, "phase": "prefer-jwt\x1b[0m"},
	}}})
	var out bytes.Buffer
	if err := printAudit(&out, raw); err != nil {
		t.Fatal(err)
	}
	noTerminalControl(t, out.String())
	if lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("want a header and one row, got %d lines:\n%s", len(lines), out.String())
	}
	for _, want := range []string{`ops\x1b[8m@example.com`, `fine\r\n2026-01-02 admin rollback`, `prefer-jwt\x1b[0m`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
