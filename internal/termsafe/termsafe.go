// Package termsafe holds the one rule for text that people read in
// terminals and pages: which characters may be stored (Check) and how the
// rest is shown when it must be printed anyway (Escape).
//
// Operators read audit reasons, suspension reasons, user agents and user ids
// in terminals (the tokenshift CLI) and on the dashboard. A control
// character there is not text but a command: ESC starts a sequence that can
// clear the screen or retitle the window, CR rewrites the line, LF forges a
// new entry, a bidirectional override (U+202E) shows the rest backwards.
// Invalid UTF-8 is refused too: what it decodes to depends on the reader.
//
// The package imports nothing of tokenshift, so the public featureflags
// package and the internal ones share it (featureflags lives in this
// module, so Go lets it import internal/ packages; its users never see them).
package termsafe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrNotPrintable is matched (errors.Is) by every *Error.
var ErrNotPrintable = errors.New("not printable text")

// Error says where a text breaks the rule: the byte offset of the first
// offending character, and the character (utf8.RuneError with InvalidUTF8
// for a byte that is not UTF-8).
type Error struct {
	Offset      int
	Rune        rune
	InvalidUTF8 bool
}

func (e *Error) Error() string {
	if e.InvalidUTF8 {
		return fmt.Sprintf("not valid UTF-8 (byte %d)", e.Offset)
	}
	return fmt.Sprintf("must be a single line of printable text; it contains the control character %U at byte %d", e.Rune, e.Offset)
}

// Is makes errors.Is(err, ErrNotPrintable) true.
func (e *Error) Is(target error) bool { return target == ErrNotPrintable }

// Check refuses text holding a control character (C0 including TAB, CR and
// LF, DEL, C1), a Unicode format character (Cf: bidirectional overrides and
// isolates, zero-width characters) or invalid UTF-8, with an *Error naming
// the first one. Any other Unicode (letters of every script, symbols, emoji,
// spaces) is fine.
func Check(s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return &Error{Offset: i, Rune: r, InvalidUTF8: true}
			}
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return &Error{Offset: i, Rune: r}
		}
	}
	return nil
}

// Escape returns s with every character a terminal would not simply print
// (everything Check refuses, and also separators other than the ASCII space,
// such as U+2028) replaced by a visible Go-style escape: \x1b, \n, \u202e,
// \xff for a byte that is not UTF-8. Text that passes is returned unchanged,
// and Escape(Escape(s)) == Escape(s).
func Escape(s string) string {
	return escape(s, false)
}

// EscapeLines is Escape that keeps line feeds, for multi-line text whose
// lines are the caller's (an error made of several lines, a YAML dump).
// Every other character Escape replaces is still replaced, CR included, so a
// line can be added but never overwritten.
func EscapeLines(s string) string {
	return escape(s, true)
}

func escape(s string, keepLF bool) string {
	if clean(s, keepLF) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || (keepLF && r == '\n'):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\n', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

func clean(s string, keepLF bool) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return false
			}
			continue // a real U+FFFD is printable
		}
		if !unicode.IsPrint(r) && !(keepLF && r == '\n') {
			return false
		}
	}
	return true
}
