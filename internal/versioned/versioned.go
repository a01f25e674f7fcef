// Package versioned is the one definition of a versioned JSON document: the
// kind of value tokenshift changes only by compare-and-set, so that two
// writers can never silently overwrite each other (the migration flags of
// package featureflags, the key-rotation state of the server's store).
//
// A versioned document is a JSON object whose "version" member is its
// version: an integer, 0 when the member is absent or not a number, and 0 for
// a key that holds nothing. The version lives inside the value, so the value
// stays one self-describing JSON string that any client can read, and a
// compare-and-set is one GET and one SET inside a Redis script.
//
// The package holds the rule twice, once per place that must apply it: in Go
// (Version, for in-process back ends and for readers) and in Lua (CheckLua,
// the start of every Redis compare-and-set script). It imports nothing but
// the standard library, so that the public featureflags package and the
// server's internal store can share it.
package versioned

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// ErrNotDocument: the value is not a JSON object, so it has no version.
var ErrNotDocument = errors.New("versioned: not a JSON object")

// CheckLua starts a Redis script that changes KEYS[1] only if the version
// stored there is ARGV[1]. It defines the locals cur (the stored value, false
// when the key is absent) and version (its version), returns {0, version}
// when version is not ARGV[1], and fails with a WRONGTYPE error when the key
// holds something that is not a versioned document. The script goes on with
// the change and must return something other than {0, n} when it is done.
//
// Lua's cjson cannot tell an empty object from an empty array, so the first
// non-blank character is checked to be '{' as Version does.
const CheckLua = `
local cur = redis.call('GET', KEYS[1])
local version = 0
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if not ok or type(doc) ~= 'table' or not string.find(cur, '^%s*{') then
    return redis.error_reply('WRONGTYPE stored value is not a versioned JSON document')
  end
  local v = doc['version']
  if type(v) == 'number' then
    if v ~= math.floor(v) or math.abs(v) > 9007199254740992 then
      return redis.error_reply('WRONGTYPE stored version is not an integer')
    end
    version = v
  end
end
if version ~= tonumber(ARGV[1]) then
  return {0, version}
end
`

// Version is the version of doc by CheckLua's rule: 0 for a nil doc (nothing
// stored), the "version" member of a JSON object (0 when absent or not a
// number), and ErrNotDocument for anything else, a version that is not an
// integer included.
func Version(doc []byte) (int64, error) {
	if doc == nil {
		return 0, nil
	}
	trimmed := bytes.TrimLeft(doc, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return 0, ErrNotDocument
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(doc, &members); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotDocument, err)
	}
	raw, ok := members["version"]
	if !ok {
		return 0, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var member any
	if err := dec.Decode(&member); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotDocument, err)
	}
	n, isNumber := member.(json.Number)
	if !isNumber {
		return 0, nil // null, a string, a bool, an array, an object
	}
	// Lua reads every JSON number as a double: so does this, so that 3.0 and
	// 3e0 are version 3 on both sides.
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%w: version %s is not an integer", ErrNotDocument, n)
	}
	return int64(f), nil
}
