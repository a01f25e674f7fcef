package user

import (
	"errors"
	"fmt"
	"strconv"
)

// The lookup query must take the login through exactly one bind parameter.
// Counting "$1" or "?" in the raw text is wrong both ways: a literal
// '$2 off' or 'who?' is not a parameter, and "$10" contains "$1". These
// scanners skip what the servers' own lexers skip (string literals, quoted
// identifiers, comments) and report the parameters that remain.

var errUnterminated = errors.New("unterminated literal, identifier or comment")

// pgParams returns the numbers of the $N parameters of a PostgreSQL query.
func pgParams(q string) ([]int, error) {
	var params []int
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			// E'...' strings take backslash escapes; standard ones do not.
			escapes := i > 0 && (q[i-1] == 'E' || q[i-1] == 'e') && (i < 2 || !isPgIdentChar(q[i-2]))
			end, ok := skipQuoted(q, i, '\'', escapes)
			if !ok {
				return nil, errUnterminated
			}
			i = end
		case c == '"':
			end, ok := skipQuoted(q, i, '"', false)
			if !ok {
				return nil, errUnterminated
			}
			i = end
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			i = skipLine(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end, ok := skipPgComment(q, i)
			if !ok {
				return nil, errUnterminated
			}
			i = end
		case c == '$' && i+1 < len(q) && isDigit(q[i+1]):
			j := i + 1
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			n, err := strconv.Atoi(q[i+1 : j])
			if err != nil || (j < len(q) && isPgIdentStart(q[j])) {
				return nil, fmt.Errorf("malformed parameter %q", q[i:min(j+1, len(q))])
			}
			params = append(params, n)
			i = j
		case c == '$':
			// A dollar-quoted string: $$...$$ or $tag$...$tag$.
			end, ok := skipDollarQuoted(q, i)
			if !ok {
				return nil, errUnterminated
			}
			i = end
		case isPgIdentStart(c):
			// Identifiers may hold '$' after their first character: a$1 is
			// one identifier, not "a" and $1.
			for i < len(q) && isPgIdentChar(q[i]) {
				i++
			}
		default:
			i++
		}
	}
	return params, nil
}

// checkPgQuery accepts a query whose only parameter is $1, used at least once.
func checkPgQuery(q string) error {
	params, err := pgParams(q)
	if err != nil {
		return err
	}
	if len(params) == 0 {
		return errors.New("no $1 parameter: the login must be passed as $1")
	}
	for _, n := range params {
		if n != 1 {
			return fmt.Errorf("parameter $%d: only $1 (the login) is passed", n)
		}
	}
	return nil
}

// mysqlParams counts the ? parameters of a MySQL/MariaDB query, assuming the
// default SQL mode (backslash escapes in strings; " quotes strings, not
// identifiers).
func mysqlParams(q string) (int, error) {
	n := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			end, ok := skipQuoted(q, i, c, true)
			if !ok {
				return 0, errUnterminated
			}
			i = end
		case c == '`':
			end, ok := skipQuoted(q, i, '`', false)
			if !ok {
				return 0, errUnterminated
			}
			i = end
		case c == '#':
			i = skipLine(q, i)
		case c == '-' && i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t' || q[i+2] == '\n' || q[i+2] == '\r'):
			i = skipLine(q, i)
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			// /*! ... */ and /*M! ... */ are executed by the server: their
			// content is code, so only the opener is skipped.
			if i+2 < len(q) && (q[i+2] == '!' || (q[i+2] == 'M' && i+3 < len(q) && q[i+3] == '!')) {
				i += 2
				continue
			}
			end := indexFrom(q, "*/", i+2)
			if end < 0 {
				return 0, errUnterminated
			}
			i = end + 2
		case c == '?':
			n++
			i++
		default:
			i++
		}
	}
	return n, nil
}

func checkMySQLQuery(q string) error {
	n, err := mysqlParams(q)
	switch {
	case err != nil:
		return err
	case n == 0:
		return errors.New("no ? parameter: the login must be passed as ?")
	case n > 1:
		return fmt.Errorf("%d ? parameters: exactly one (the login) is passed", n)
	}
	return nil
}

// skipQuoted returns the index after the literal opened at q[i], where a
// doubled quote is a quote and, with escapes, a backslash escapes any byte.
func skipQuoted(q string, i int, quote byte, escapes bool) (int, bool) {
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if escapes {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

func skipLine(q string, i int) int {
	for i < len(q) && q[i] != '\n' {
		i++
	}
	return i
}

// skipPgComment skips a block comment; PostgreSQL's nest.
func skipPgComment(q string, i int) (int, bool) {
	depth := 0
	for i < len(q)-1 {
		switch {
		case q[i] == '/' && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return 0, false
}

// skipDollarQuoted skips $tag$...$tag$ starting at q[i]. A lone '$' that does
// not open one is left for the server to reject.
func skipDollarQuoted(q string, i int) (int, bool) {
	j := i + 1
	for j < len(q) && q[j] != '$' {
		if !isPgIdentChar(q[j]) || q[j] == '$' || (j == i+1 && isDigit(q[j])) {
			return i + 1, true
		}
		j++
	}
	if j >= len(q) {
		return i + 1, true
	}
	tag := q[i : j+1]
	end := indexFrom(q, tag, j+1)
	if end < 0 {
		return 0, false
	}
	return end + len(tag), true
}

func indexFrom(s, sub string, from int) int {
	for k := from; k+len(sub) <= len(s); k++ {
		if s[k:k+len(sub)] == sub {
			return k
		}
	}
	return -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isPgIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isPgIdentChar(c byte) bool { return isPgIdentStart(c) || isDigit(c) || c == '$' }
