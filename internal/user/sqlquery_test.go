package user

import (
	"strings"
	"testing"
)

func TestCheckPgQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		ok    bool
	}{
		{name: "plain", query: "SELECT id, email, pw, roles FROM users WHERE lower(email) = $1", ok: true},
		{name: "twice", query: "SELECT id, email, pw, roles FROM users WHERE email = $1 OR username = $1", ok: true},
		{name: "cast", query: "SELECT id, email, pw, roles FROM users WHERE email = $1::text", ok: true},
		{name: "$2 in a string literal", query: "SELECT id, email, pw, 'costs $2' FROM users WHERE email = $1", ok: true},
		{name: "$2 in an escaped E-string", query: `SELECT id, email, pw, E'it\'s $2' FROM users WHERE email = $1`, ok: true},
		{name: "doubled quote", query: "SELECT id, email, pw, 'it''s $2' FROM users WHERE email = $1", ok: true},
		{name: "$2 in a quoted identifier", query: `SELECT id, email, pw, "col$2" FROM users WHERE email = $1`, ok: true},
		{name: "$2 in a line comment", query: "SELECT id, email, pw, roles -- not $2\nFROM users WHERE email = $1", ok: true},
		{name: "$2 in a nested block comment", query: "SELECT /* a /* $2 */ $3 */ id, email, pw, roles FROM users WHERE email = $1", ok: true},
		{name: "$2 in a dollar-quoted string", query: "SELECT id, email, pw, $tag$ $2 $tag$ FROM users WHERE email = $1", ok: true},
		{name: "$2 in an anonymous dollar quote", query: "SELECT id, email, pw, $$ $2 $$ FROM users WHERE email = $1", ok: true},
		{name: "identifier with a dollar", query: "SELECT id, email, pw, a$2 FROM users WHERE email = $1", ok: true},
		{name: "$01 is $1", query: "SELECT id, email, pw, roles FROM users WHERE email = $01", ok: true},

		{name: "no parameter", query: "SELECT id, email, pw, roles FROM users WHERE email = 'x'"},
		{name: "$1 only in a string", query: "SELECT id, email, pw, roles FROM users WHERE email = '$1'"},
		{name: "$1 only in a comment", query: "SELECT id, email, pw, roles FROM users -- $1"},
		{name: "$2", query: "SELECT id, email, pw, roles FROM users WHERE email = $1 OR name = $2"},
		{name: "$10 is not $1", query: "SELECT id, email, pw, roles FROM users WHERE email = $10"},
		{name: "$1 and $10", query: "SELECT id, email, pw, roles FROM users WHERE email = $1 OR name = $10"},
		{name: "$0", query: "SELECT id, email, pw, roles FROM users WHERE email = $0"},
		{name: "question mark", query: "SELECT id, email, pw, roles FROM users WHERE email = ?"},
		{name: "unterminated string", query: "SELECT id, email, pw, roles FROM users WHERE email = $1 AND x = 'abc"},
		{name: "unterminated comment", query: "SELECT id, email, pw, roles FROM users WHERE email = $1 /* x"},
		{name: "unterminated dollar quote", query: "SELECT $q$ abc FROM users WHERE email = $1"},
		{name: "parameter glued to a word", query: "SELECT id, email, pw, roles FROM users WHERE email = $1abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPgQuery(tc.query)
			if (err == nil) != tc.ok {
				t.Fatalf("checkPgQuery = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestCheckMySQLQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		ok    bool
	}{
		{name: "plain", query: "SELECT id, email, pw, roles FROM users WHERE lower(email) = ?", ok: true},
		{name: "? in a string", query: "SELECT id, email, pw, 'who?' FROM users WHERE email = ?", ok: true},
		{name: "? in a double-quoted string", query: `SELECT id, email, pw, "who?" FROM users WHERE email = ?`, ok: true},
		{name: "escaped quote before ?", query: `SELECT id, email, pw, 'it\'s ?' FROM users WHERE email = ?`, ok: true},
		{name: "doubled quote", query: "SELECT id, email, pw, 'it''s ?' FROM users WHERE email = ?", ok: true},
		{name: "? in a backtick identifier", query: "SELECT id, email, pw, `why?` FROM users WHERE email = ?", ok: true},
		{name: "? in a # comment", query: "SELECT id, email, pw, roles # ?\nFROM users WHERE email = ?", ok: true},
		{name: "? in a -- comment", query: "SELECT id, email, pw, roles -- ?\nFROM users WHERE email = ?", ok: true},
		{name: "? in a block comment", query: "SELECT /* ? */ id, email, pw, roles FROM users WHERE email = ?", ok: true},
		{name: "--? is not a comment", query: "SELECT id, email, pw, roles FROM users WHERE email = ? AND 1=1--?"},

		{name: "none", query: "SELECT id, email, pw, roles FROM users WHERE email = 'x'"},
		{name: "two", query: "SELECT id, email, pw, roles FROM users WHERE email = ? OR name = ?"},
		{name: "? only in a string", query: "SELECT id, email, pw, roles FROM users WHERE email = '?'"},
		{name: "executable comment counts", query: "SELECT id, email, pw, roles FROM users WHERE email = ? /*! AND name = ? */"},
		{name: "pgx style", query: "SELECT id, email, pw, roles FROM users WHERE email = $1"},
		{name: "unterminated string", query: "SELECT id, email, pw, roles FROM users WHERE email = ? AND 'x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMySQLQuery(tc.query)
			if (err == nil) != tc.ok {
				t.Fatalf("checkMySQLQuery = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func FuzzSQLPlaceholders(f *testing.F) {
	for _, s := range []string{
		"SELECT a FROM t WHERE e = $1", "$tag$ $2 $tag$ $1", "E'\\'' $1", "/* /* */ */ $1", "\"a\"\"$2\" $1",
		"SELECT ? FROM t", "'\\'' ?", "`a``?` ?", "/*! ? */", "# ?\n?", "$", "$$", "$a", "'", "/*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		params, err := pgParams(q)
		if err == nil {
			for _, n := range params {
				if n < 0 {
					t.Fatalf("negative parameter in %q", q)
				}
			}
			// A query accepted as using only $1 still does when a comment
			// holding $2 is appended.
			if checkPgQuery(q) == nil && !strings.Contains(q, "--") && !strings.ContainsAny(q, "'\"$/") {
				if err := checkPgQuery(q + " /* $2 */"); err != nil {
					t.Fatalf("comment changed the verdict on %q: %v", q, err)
				}
			}
		}
		if n, err := mysqlParams(q); err == nil && n < 0 {
			t.Fatalf("negative count for %q", q)
		}
	})
}
