package logbuf

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestLoggers(t *testing.T) {
	tests := []struct {
		name string
		log  func(b *Buffer)
		want string
	}{
		{name: "text", log: func(b *Buffer) { b.TextLogger().Info("started", "by", "ops") }, want: `msg=started by=ops`},
		{name: "json", log: func(b *Buffer) { b.JSONLogger().Info("started", "by", "ops") }, want: `"msg":"started","by":"ops"`},
		{name: "plain write", log: func(b *Buffer) { fmt.Fprint(b, "a line\n") }, want: "a line\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer
			if b.Contains(tc.want) || b.String() != "" {
				t.Fatalf("a new buffer holds %q", b.String())
			}
			tc.log(&b)
			if !b.Contains(tc.want) || !strings.Contains(b.String(), tc.want) {
				t.Fatalf("buffer %q lacks %q", b.String(), tc.want)
			}
		})
	}
}

// Writers and readers at once: run with -race. Each line stays whole.
func TestConcurrentWriters(t *testing.T) {
	var b Buffer
	log := b.JSONLogger()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := range 50 {
				log.Info("line", "writer", i, "n", j)
			}
		}()
		go func() {
			defer wg.Done()
			for range 50 {
				_ = b.Contains("writer")
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is torn: %v", l, err)
		}
	}
}
