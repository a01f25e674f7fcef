package featureflags

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// Caps on the kept history and audit log, shared by both back ends.
const (
	defaultHistoryLimit = 50
	defaultAuditLimit   = 1000
)

// memoryBackend keeps the state in this process. It stores JSON, exactly as
// Redis does, so that both back ends return equal values (times lose their
// monotonic reading, nil and empty collections normalise the same way).
type memoryBackend struct {
	mu      sync.Mutex
	state   []byte   // nil: nothing stored yet
	history [][]byte // newest first
	audit   [][]byte // newest first
	watch   map[chan struct{}]struct{}
}

// NewMemoryBackend returns a Backend held in this process: for a single
// instance, for tests, and as the static source (see Manager.ReloadStatic).
func NewMemoryBackend() Backend {
	return &memoryBackend{watch: make(map[chan struct{}]struct{})}
}

func (b *memoryBackend) Load(_ context.Context) (State, bool, error) {
	b.mu.Lock()
	raw := b.state
	b.mu.Unlock()
	if raw == nil {
		return State{}, false, nil
	}
	s, err := decodeState(raw)
	return s, err == nil, err
}

func (b *memoryBackend) CompareAndSwap(_ context.Context, expect int64, next State, entry AuditEntry) error {
	nextRaw, entryRaw, err := encodeChange(next, entry)
	if err != nil {
		return err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	var cur int64
	if b.state != nil {
		s, err := decodeState(b.state)
		if err != nil {
			return err
		}
		cur = s.Version
	}
	if cur != expect {
		return &VersionConflictError{Expected: expect, Current: cur}
	}
	switch {
	case entry.Action == ActionRollback:
		if len(b.history) == 0 {
			return ErrNoHistory
		}
		b.history = b.history[1:]
	case b.state != nil:
		b.history = capList(append([][]byte{b.state}, b.history...), defaultHistoryLimit)
	}
	b.state = nextRaw
	b.audit = capList(append([][]byte{entryRaw}, b.audit...), defaultAuditLimit)
	for ch := range b.watch {
		select {
		case ch <- struct{}{}:
		default: // a notification is already pending; one is enough
		}
	}
	return nil
}

func (b *memoryBackend) AppendAudit(_ context.Context, entry AuditEntry) error {
	raw, err := json.Marshal(entry)
	if err != nil {
		return fmt.Errorf("featureflags: encode audit entry: %w", err)
	}
	b.mu.Lock()
	b.audit = capList(append([][]byte{raw}, b.audit...), defaultAuditLimit)
	b.mu.Unlock()
	return nil
}

func (b *memoryBackend) History(_ context.Context, n int) ([]State, error) {
	b.mu.Lock()
	raws := headOf(b.history, n)
	b.mu.Unlock()
	out := make([]State, 0, len(raws))
	for _, raw := range raws {
		s, err := decodeState(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (b *memoryBackend) Audit(_ context.Context, n int) ([]AuditEntry, error) {
	b.mu.Lock()
	raws := headOf(b.audit, n)
	b.mu.Unlock()
	out := make([]AuditEntry, 0, len(raws))
	for _, raw := range raws {
		e, err := decodeAudit(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (b *memoryBackend) Watch(ctx context.Context, onChange func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	b.watch[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.watch, ch)
		b.mu.Unlock()
	}()
	onChange() // catch up with anything written before we registered
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			onChange()
		}
	}
}

func capList(l [][]byte, n int) [][]byte {
	if len(l) > n {
		return l[:n]
	}
	return l
}

// headOf copies the first n items (all when n <= 0) so callers can decode
// them without holding the lock.
func headOf(l [][]byte, n int) [][]byte {
	if n <= 0 || n > len(l) {
		n = len(l)
	}
	return append([][]byte(nil), l[:n]...)
}

// encodeChange is the JSON both back ends store for a compare-and-swap: the
// next state and its audit entry.
func encodeChange(next State, entry AuditEntry) (nextRaw, entryRaw []byte, err error) {
	if nextRaw, err = json.Marshal(next); err != nil {
		return nil, nil, fmt.Errorf("featureflags: encode state: %w", err)
	}
	if entryRaw, err = json.Marshal(entry); err != nil {
		return nil, nil, fmt.Errorf("featureflags: encode audit entry: %w", err)
	}
	return nextRaw, entryRaw, nil
}

func decodeState(raw []byte) (State, error) {
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return State{}, fmt.Errorf("featureflags: decode stored state: %w", err)
	}
	return s, nil
}

func decodeAudit(raw []byte) (AuditEntry, error) {
	var e AuditEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return AuditEntry{}, fmt.Errorf("featureflags: decode audit entry: %w", err)
	}
	return e, nil
}
