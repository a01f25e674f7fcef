package legacy

import (
	"fmt"
	"math"
	"strconv"
)

// phpOpaque stands for a value tokenshift never reads (an object, an enum
// case, a reference): parsed, so the input stays well-formed, then dropped.
// A user id path that ends on one is malformed; one that goes through one
// finds nothing.
type phpOpaque struct{ kind string }

// phpParser is a strict reader of PHP's serialize() format, bounded by
// MaxDataBytes of input and MaxDepth of nesting. Values decode to nil,
// bool, int64, float64, string (PHP strings are bytes; Go strings hold any
// bytes), map[string]any (arrays; integer keys in decimal) and phpOpaque.
// It never allocates more than the input can justify: a declared count is
// only trusted as far as the remaining bytes can hold elements.
type phpParser struct {
	b   []byte
	pos int
}

func errPHP(p *phpParser, what string) error {
	return fmt.Errorf("%w: PHP serialize: %s at byte %d", ErrMalformed, what, p.pos)
}

// unserializePHP parses exactly one value filling all of b.
func unserializePHP(b []byte) (any, error) {
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxDataBytes)
	}
	p := &phpParser{b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.pos != len(b) {
		return nil, errPHP(p, "text after the value")
	}
	return v, nil
}

// decodePHPSession reads session data of the php serialize handler
// ("name|<serialized>" repeated) or php_serialize (one serialized array)
// into the map of session variables.
func decodePHPSession(b []byte, handler string) (map[string]any, error) {
	if len(b) > MaxDataBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(b), MaxDataBytes)
	}
	if handler == "php_serialize" {
		v, err := unserializePHP(b)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: php_serialize data is not an array", ErrMalformed)
		}
		return m, nil
	}
	out := map[string]any{}
	p := &phpParser{b: b}
	for p.pos < len(b) {
		start := p.pos
		for p.pos < len(b) && b[p.pos] != '|' {
			p.pos++
		}
		if p.pos == len(b) || p.pos == start {
			return nil, errPHP(p, "session variable without name or '|'")
		}
		name := string(b[start:p.pos])
		p.pos++
		v, err := p.value(0)
		if err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

func (p *phpParser) expect(c byte) error {
	if p.pos >= len(p.b) || p.b[p.pos] != c {
		return errPHP(p, fmt.Sprintf("want %q", c))
	}
	p.pos++
	return nil
}

// until returns the bytes up to the terminator c (not included) and skips c.
func (p *phpParser) until(c byte, max int) (string, error) {
	start := p.pos
	for p.pos < len(p.b) && p.pos-start <= max {
		if p.b[p.pos] == c {
			s := string(p.b[start:p.pos])
			p.pos++
			return s, nil
		}
		p.pos++
	}
	return "", errPHP(p, fmt.Sprintf("unterminated token (want %q)", c))
}

func (p *phpParser) length() (int, error) {
	s, err := p.until(':', 10)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s[0] == '+' || s[0] == '-' {
		return 0, errPHP(p, "bad length")
	}
	return n, nil
}

// str reads `<len>:"<bytes>"` (after the type letter's ':').
func (p *phpParser) str() (string, error) {
	n, err := p.length()
	if err != nil {
		return "", err
	}
	if err := p.expect('"'); err != nil {
		return "", err
	}
	if n > len(p.b)-p.pos {
		return "", errPHP(p, "string longer than the data")
	}
	s := string(p.b[p.pos : p.pos+n])
	p.pos += n
	return s, p.expect('"')
}

func (p *phpParser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, errPHP(p, fmt.Sprintf("nested deeper than %d", MaxDepth))
	}
	if p.pos+1 >= len(p.b) {
		return nil, errPHP(p, "truncated")
	}
	t := p.b[p.pos]
	p.pos++
	if t == 'N' {
		return nil, p.expect(';')
	}
	if err := p.expect(':'); err != nil {
		return nil, err
	}
	switch t {
	case 'b':
		s, err := p.until(';', 1)
		if err != nil || (s != "0" && s != "1") {
			return nil, errPHP(p, "bad boolean")
		}
		return s == "1", nil
	case 'i':
		return p.integer()
	case 'd':
		return p.float()
	case 's':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return s, p.expect(';')
	case 'a':
		return p.arrayBody(depth)
	case 'O':
		return p.object(depth)
	case 'C':
		return p.custom()
	case 'E':
		if _, err := p.str(); err != nil {
			return nil, err
		}
		return phpOpaque{kind: "enum"}, p.expect(';')
	case 'r', 'R':
		s, err := p.until(';', 20)
		if err != nil {
			return nil, err
		}
		if n, err := strconv.Atoi(s); err != nil || n < 1 {
			return nil, errPHP(p, "bad reference")
		}
		return phpOpaque{kind: "reference"}, nil
	}
	return nil, errPHP(p, fmt.Sprintf("unknown type %q", t))
}

// integer reads the body of i:<n>;.
func (p *phpParser) integer() (any, error) {
	s, err := p.until(';', 20)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s[0] == '+' {
		return nil, errPHP(p, "bad integer")
	}
	return n, nil
}

// float reads the body of d:<f>; (PHP writes INF, -INF and NAN by name).
func (p *phpParser) float() (any, error) {
	s, err := p.until(';', 64)
	if err != nil {
		return nil, err
	}
	switch s {
	case "INF":
		return math.Inf(1), nil
	case "-INF":
		return math.Inf(-1), nil
	case "NAN":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" || !(s[0] == '-' || s[0] == '.' || s[0] >= '0' && s[0] <= '9') {
		return nil, errPHP(p, "bad float")
	}
	return f, nil
}

// object reads O:<len>:"<class>":<n>:{<props>}: parsed like an array, dropped.
func (p *phpParser) object(depth int) (any, error) {
	if _, err := p.str(); err != nil {
		return nil, err
	}
	if err := p.expect(':'); err != nil {
		return nil, err
	}
	if _, err := p.arrayBody(depth); err != nil {
		return nil, err
	}
	return phpOpaque{kind: "object"}, nil
}

// custom reads C:<len>:"<class>":<len>:{<raw>}: a Serializable's own bytes,
// skipped.
func (p *phpParser) custom() (any, error) {
	if _, err := p.str(); err != nil {
		return nil, err
	}
	if err := p.expect(':'); err != nil {
		return nil, err
	}
	n, err := p.length()
	if err != nil {
		return nil, err
	}
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	if n > len(p.b)-p.pos {
		return nil, errPHP(p, "object data longer than the data")
	}
	p.pos += n
	return phpOpaque{kind: "object"}, p.expect('}')
}

// arrayBody reads `<n>:{<key><value>...}` of an array or an object's
// properties.
func (p *phpParser) arrayBody(depth int) (map[string]any, error) {
	n, err := p.length()
	if err != nil {
		return nil, err
	}
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	// Each element takes at least 6 bytes ("i:0;N;"), so a count the
	// remaining input cannot hold is refused before any allocation.
	if n > (len(p.b)-p.pos)/6 {
		return nil, errPHP(p, "array count larger than the data")
	}
	m := make(map[string]any, n)
	for range n {
		if p.pos >= len(p.b) || (p.b[p.pos] != 'i' && p.b[p.pos] != 's') {
			return nil, errPHP(p, "array key is not an integer or a string")
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var key string
		switch k := k.(type) {
		case int64:
			key = strconv.FormatInt(k, 10)
		case string:
			key = k
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, p.expect('}')
}
