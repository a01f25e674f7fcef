package config

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultWatchQuiet is how long Watch waits after the last event of a burst
// before calling back.
const DefaultWatchQuiet = 100 * time.Millisecond

// Watch calls onChange after the file at path changes: written in place,
// replaced by a rename (how most editors and config tools save), removed and
// created again, or swapped through a symbolic link (how Kubernetes updates a
// mounted ConfigMap). It watches the file's directory, because a watch on the
// file itself ends with the first rename.
//
// Events come in bursts (truncate, write, write, chmod), and a file read
// between them can be half written; a half-written YAML file may even parse.
// So onChange runs once per burst, after quiet has passed without an event.
// onChange runs on the watching goroutine, never concurrently with itself.
//
// Setting up the watch fails with an error (no inotify instance left, the
// directory is gone); after that, watch errors go to onError and watching
// goes on. Watch returns at once; the watch ends when ctx is done.
//
// Viper's WatchConfig is not used: it exits the process when the watcher
// cannot be created, stops for good after the file is removed, cannot be
// stopped, and re-reads the file into the Viper instance from its own
// goroutine, which races with a reload that merges the embedded defaults
// again.
func Watch(ctx context.Context, path string, quiet time.Duration, onChange func(), onError func(error)) error {
	if quiet <= 0 {
		quiet = DefaultWatchQuiet
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", path, err)
	}
	// Resolved after the watch is in place and before Watch returns, so a
	// link swapped from now on is always seen as a change.
	target, _ := filepath.EvalSymlinks(abs)
	go watchLoop(ctx, w, abs, target, quiet, onChange, onError)
	return nil
}

func watchLoop(ctx context.Context, w *fsnotify.Watcher, path, target string, quiet time.Duration, onChange func(), onError func(error)) {
	defer w.Close()
	timer := time.NewTimer(quiet)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// Other files of the directory matter only when they move the
			// link the path resolves through.
			now, _ := filepath.EvalSymlinks(path)
			relevant := filepath.Clean(ev.Name) == path && ev.Op != fsnotify.Chmod
			if now != target {
				target, relevant = now, true
			}
			if relevant {
				timer.Reset(quiet)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if onError != nil {
				onError(err)
			}
		case <-timer.C:
			onChange()
		}
	}
}
