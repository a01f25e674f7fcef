package config

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// watched starts Watch on path and returns a channel fed once per callback.
func watched(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan struct{}, 16)
	if err := Watch(ctx, path, 50*time.Millisecond, func() { ch <- struct{}{} }, func(err error) { t.Errorf("watch error: %v", err) }); err != nil {
		t.Fatal(err)
	}
	return ch
}

func expectCalls(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	for i := range n {
		select {
		case <-ch:
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: callback %d of %d did not come", what, i+1, n)
		}
	}
	select {
	case <-ch:
		t.Fatalf("%s: more callbacks than the %d expected", what, n)
	case <-time.After(200 * time.Millisecond):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFile(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir, path string)
	}{
		{name: "written in place", change: func(t *testing.T, _, path string) { write(t, path, "b: 2\n") }},
		{name: "replaced by a rename", change: func(t *testing.T, dir, path string) {
			tmp := filepath.Join(dir, ".tmp-config")
			write(t, tmp, "c: 3\n")
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "removed and created again", change: func(t *testing.T, _, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			write(t, path, "d: 4\n")
		}},
		{name: "a burst of writes is one change", change: func(t *testing.T, _, path string) {
			for i := range 5 {
				write(t, path, "e: "+string(rune('0'+i))+"\n")
				time.Sleep(5 * time.Millisecond)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tokenshift.yaml")
			write(t, path, "a: 1\n")
			ch := watched(t, path)
			// Another file in the directory is not the config.
			write(t, filepath.Join(dir, "other.yaml"), "x: 1\n")
			expectCalls(t, ch, 0, "unrelated file")
			tt.change(t, dir, path)
			expectCalls(t, ch, 1, tt.name)
		})
	}
}

// Kubernetes mounts a ConfigMap as config.yaml → ..data/config.yaml and
// swaps the ..data link; the file itself never gets an event.
func TestWatchSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "config.yaml"), "version: "+v+"\n")
	}
	if err := os.Symlink("v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	ch := watched(t, path)
	if err := os.Symlink("v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, ch, 1, "symlink swap")
}

func TestWatchStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	write(t, path, "a: 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	if err := Watch(ctx, path, 20*time.Millisecond, func() { calls.Add(1) }, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	write(t, path, "a: 2\n")
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Errorf("%d callbacks after the context ended", n)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	if err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "c.yaml"), 0, func() {}, nil); err == nil {
		t.Error("watching a file in a missing directory succeeded")
	}
}
