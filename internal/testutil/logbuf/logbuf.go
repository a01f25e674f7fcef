// Package logbuf is the log sink of tests: a buffer the code under test writes
// from its own goroutines (slog handlers, go-redis, a child process's output)
// while the test reads it.
package logbuf

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer behind a mutex. The zero value is ready; use it
// by pointer (it is an io.Writer).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Contains reports whether s has been written.
func (l *Buffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// TextLogger logs into the buffer in slog's text format (key=value).
func (l *Buffer) TextLogger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// JSONLogger logs into the buffer one JSON object per line.
func (l *Buffer) JSONLogger() *slog.Logger { return slog.New(slog.NewJSONHandler(l, nil)) }
