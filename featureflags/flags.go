package featureflags

import (
	"fmt"
	"sync/atomic"
)

// Flags is the in-memory snapshot every request decides from: one atomic
// pointer load, no lock, no network. The Manager swaps in new snapshots.
type Flags struct {
	cur atomic.Pointer[State]
}

// NewFlags returns Flags holding s (validated without a client registry). It
// suits tests and embedders that manage the state themselves; services use
// Manager.Flags.
func NewFlags(s State) (*Flags, error) {
	if err := s.Validate(nil); err != nil {
		return nil, fmt.Errorf("featureflags: new flags: %w", err)
	}
	f := &Flags{}
	f.store(s)
	return f, nil
}

// store installs a prepared copy of s.
func (f *Flags) store(s State) *State {
	c := s.Clone()
	c.prepare()
	f.cur.Store(&c)
	return &c
}

// Decide answers for the current snapshot. With no state installed (a zero
// Flags) it returns the zero Decision, which accepts nothing.
func (f *Flags) Decide(clientID, userID string) Decision {
	return f.cur.Load().Decide(clientID, userID)
}

// Current returns the current snapshot, nil if none. It is shared: read it,
// never modify it (Clone it to build a change).
func (f *Flags) Current() *State {
	return f.cur.Load()
}
