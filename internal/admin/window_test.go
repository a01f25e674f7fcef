package admin

import (
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// FuzzParseWindow: whatever a client sends, the window is either refused
// with invalid_request or lies within [1m, limit]; no day count can wrap
// around into an accepted window.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"", "24h", "90m", "7d", "35d", "36d", "0d", "-1d", "281474976710657d", "106751d",
		"9223372036854775807d", "18446744073709551617d", "2562047h", "1e3d", "d", "7 d"} {
		f.Add(s)
	}
	const limit = 840 * time.Hour
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s, limit)
		if err != nil {
			if auth.ErrorCode(err) != auth.CodeInvalidRequest {
				t.Fatalf("ParseWindow(%q) = %v, want invalid_request", s, err)
			}
			return
		}
		if w < time.Minute || w > limit {
			t.Fatalf("ParseWindow(%q) = %v, outside [1m, %v]", s, w, limit)
		}
	})
}
