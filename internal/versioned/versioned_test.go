package versioned

import (
	"errors"
	"strings"
	"testing"
)

// The same rule runs in Lua on Redis: internal/store's contract test
// ("the version rule is the same on both back ends") checks both sides on
// these shapes against a real redis-server.
func TestVersion(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		nilDoc  bool
		want    int64
		wantErr bool
	}{
		{name: "nothing stored", nilDoc: true, want: 0},
		{name: "integer", doc: `{"version":42,"phase":"dual"}`, want: 42},
		{name: "negative", doc: `{"version":-1}`, want: -1},
		{name: "integral float", doc: `{"version":4.0}`, want: 4},
		{name: "leading blanks", doc: "\n\t {\"version\":2}", want: 2},
		{name: "absent", doc: `{"phase":"dual"}`, want: 0},
		{name: "string", doc: `{"version":"3"}`, want: 0},
		{name: "null", doc: `{"version":null}`, want: 0},
		{name: "fraction", doc: `{"version":1.5}`, wantErr: true},
		{name: "beyond 2^53", doc: `{"version":1e17}`, wantErr: true},
		{name: "array", doc: `[{"version":1}]`, wantErr: true},
		{name: "empty", doc: ``, wantErr: true},
		{name: "not JSON", doc: `version: 1`, wantErr: true},
		{name: "trailing garbage", doc: `{"version":1} x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc []byte
			if !tt.nilDoc {
				doc = []byte(tt.doc)
			}
			got, err := Version(doc)
			if tt.wantErr {
				if !errors.Is(err, ErrNotDocument) {
					t.Fatalf("Version(%q) = %d, %v; want ErrNotDocument", tt.doc, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Version(%q) = %d, %v; want %d", tt.doc, got, err, tt.want)
			}
		})
	}
}

// CheckLua must leave the script's reply free for the caller: it returns
// only {0, version} and WRONGTYPE errors.
func TestCheckLuaReplies(t *testing.T) {
	for _, line := range strings.Split(CheckLua, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "return ") && line != "return {0, version}" && !strings.Contains(line, "'WRONGTYPE ") {
			t.Errorf("CheckLua returns %q", line)
		}
	}
}
