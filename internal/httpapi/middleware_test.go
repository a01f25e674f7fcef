package httpapi

import (
	"regexp"
	"testing"
)

// Request ids are unique per request and per instance, and 32 hex digits.
func TestRequestIDsAreUnique(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[[32]byte]bool{}
	for _, r := range []*requestIDs{newRequestIDs(), newRequestIDs()} {
		for range 10_000 {
			var id [32]byte
			r.next(&id)
			if !hex32.Match(id[:]) {
				t.Fatalf("id %q, want 32 hex digits", id)
			}
			if seen[id] {
				t.Fatalf("id %s handed out twice", id)
			}
			seen[id] = true
		}
	}
}
