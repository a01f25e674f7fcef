package featureflags

import (
	"slices"
	"sync"
)

// OnChange registers fn to be called once for every change of state the
// Manager installs in Flags, whatever its source: Apply, Rollback,
// ReloadStatic, or Run seeing a state written elsewhere (another instance's
// change announced over pub/sub or found by the periodic re-read, or this
// instance's snapshot restored into a backend that lost it). old is the state
// replaced, new the one now in Flags; both are fn's own copies. A change that
// fails or is refused calls nothing, and neither does a re-read that finds
// the version already installed, so a change made here and then announced
// back is reported once. The state NewManager loaded is not a change: read
// Flags().Current() after registering to start from it.
//
// Calls come one at a time, in the order the changes were installed, after
// the Manager has released its lock: fn may call the Manager, Apply
// included (that change is reported once fn returns). They run on the
// goroutine that installed the change, or on another one already reporting
// an earlier change, so a slow fn delays whoever changed the state: keep it
// short (a metrics gauge, a cache purge, a log line).
//
// The returned func unregisters fn; a call already under way may still
// finish after it returns.
func (m *Manager) OnChange(fn func(old, new State)) (remove func()) {
	return m.hooks.add(fn)
}

// changeHooks queues installed changes and reports them to the OnChange
// funcs outside the Manager's lock.
type changeHooks struct {
	mu         sync.Mutex
	next       int
	fns        []changeHook
	pending    []stateChange
	delivering bool // a goroutine is draining pending
}

type changeHook struct {
	id int
	fn func(old, new State)
}

type stateChange struct{ old, new State }

func (h *changeHooks) add(fn func(old, new State)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	id := h.next
	h.fns = append(h.fns, changeHook{id: id, fn: fn})
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.fns = slices.DeleteFunc(h.fns, func(e changeHook) bool { return e.id == id })
	}
}

// queue records that next replaced old. The Manager calls it with m.mu held,
// so the queue is in installation order; deliver runs it once m.mu is free.
func (h *changeHooks) queue(old *State, next State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.fns) == 0 {
		return
	}
	c := stateChange{new: next.Clone()}
	if old != nil {
		c.old = old.Clone()
	}
	h.pending = append(h.pending, c)
}

// deliver reports the queued changes unless another goroutine (or this one,
// further up the stack: a hook that called Apply) is doing so already; that
// one picks up whatever is queued before it stops.
func (h *changeHooks) deliver() {
	h.mu.Lock()
	if h.delivering {
		h.mu.Unlock()
		return
	}
	h.delivering = true
	h.mu.Unlock()
	finished := false
	defer func() {
		if !finished { // a hook panicked: let the next change deliver again
			h.mu.Lock()
			h.delivering = false
			h.mu.Unlock()
		}
	}()
	for {
		h.mu.Lock()
		if len(h.pending) == 0 {
			// Checked and released under one lock, so a change queued
			// meanwhile is seen here or delivered by its own goroutine.
			h.pending, h.delivering = nil, false
			h.mu.Unlock()
			finished = true
			return
		}
		c := h.pending[0]
		h.pending = h.pending[1:]
		fns := slices.Clone(h.fns)
		h.mu.Unlock()
		for _, e := range fns {
			e.fn(c.old.Clone(), c.new.Clone())
		}
	}
}

// install makes s the snapshot requests decide from and queues the change
// for the OnChange funcs. m.mu must be held; the caller runs m.hooks.deliver
// once it is released.
func (m *Manager) install(s State) {
	old := m.flags.Current()
	m.flags.store(s)
	m.hooks.queue(old, s)
}
