package legacy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// decodeJSONObject decodes session data that must be one JSON object,
// bounded in size and depth before encoding/json sees it (its own depth
// limit is 10000, far more than a session needs). Numbers stay json.Number
// so a numeric user id keeps its digits.
func decodeJSONObject(data []byte) (map[string]any, error) {
	if len(data) > MaxDataBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(data), MaxDataBytes)
	}
	if err := checkJSONDepth(data, MaxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: text after the JSON value", ErrMalformed)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	return m, nil
}

// checkJSONDepth counts brackets outside strings; it does not validate
// (encoding/json does that next).
func checkJSONDepth(data []byte, limit int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > limit {
				return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, limit)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// lookup walks a dotted path through JSON objects (or decoded PHP arrays);
// found is false when a step is missing or null.
func lookup(root map[string]any, path string) (v any, found bool) {
	var cur any = root
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok || cur == nil {
			return nil, false
		}
	}
	return cur, true
}

var integerRE = regexp.MustCompile(`^-?[0-9]{1,40}$`)

// maxIDLen bounds a user id taken from session data.
const maxIDLen = 256

// idString reads a user id: a non-empty string or an integer. A missing id
// is ErrNotFound (an anonymous session); any other type is ErrMalformed.
func idString(root map[string]any, path string) (string, error) {
	v, ok := lookup(root, path)
	if !ok {
		return "", fmt.Errorf("%w: no user id at the configured path", ErrNotFound)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
		if !integerRE.MatchString(s) {
			return "", fmt.Errorf("%w: user id is a number but not an integer", ErrMalformed)
		}
	case int64:
		s = fmt.Sprint(x)
	default:
		return "", fmt.Errorf("%w: user id is a %s, want a string or an integer", ErrMalformed, typeName(v))
	}
	if s == "" {
		return "", fmt.Errorf("%w: empty user id", ErrNotFound)
	}
	if len(s) > maxIDLen || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%w: user id too long or with control characters", ErrMalformed)
	}
	return s, nil
}

// optString reads an optional string ("" when missing).
func optString(root map[string]any, path, what string) (string, error) {
	if path == "" {
		return "", nil
	}
	v, ok := lookup(root, path)
	if !ok {
		return "", nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("%w: %s is a %s, want a string", ErrMalformed, what, typeName(v))
	}
	return s, nil
}

// optStrings reads an optional list of strings (a JSON array of strings, or
// one string holding a comma-separated list).
func optStrings(root map[string]any, path, what string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	v, ok := lookup(root, path)
	if !ok {
		return nil, nil
	}
	switch x := v.(type) {
	case string:
		var out []string
		for r := range strings.SplitSeq(x, ",") {
			if r = strings.TrimSpace(r); r != "" {
				out = append(out, r)
			}
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s holds a %s, want strings", ErrMalformed, what, typeName(e))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s is a %s, want a list of strings", ErrMalformed, what, typeName(v))
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, int64, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return "value of another kind"
}

func idHash(source, id string) string {
	h := sha256.Sum256([]byte(source + "\x00" + id))
	return hex.EncodeToString(h[:16])
}
