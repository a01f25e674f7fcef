package featureflags

import (
	"context"
	"fmt"
)

// ReloadStatic replaces the state with s, read again from the configuration
// file, when the Manager's source is static (Options.Backend nil or a memory
// backend). Nothing happens when s has the same settings as the last file
// read, so unrelated config edits do not undo operators' runtime changes.
// A reload is audited as "reload" by "config" and is not guarded: the file is
// a reviewed deployment artifact, and the guard protects runtime changes.
// With a shared backend (Redis) it returns ErrNotStatic: there the stored
// state is the truth and the file only seeds it.
func (m *Manager) ReloadStatic(s State) error {
	if !m.static {
		return ErrNotStatic
	}
	if err := s.Validate(m.known); err != nil {
		return fmt.Errorf("featureflags: reloaded configuration: %w", err)
	}
	if err := s.checkHorizon(m.now()); err != nil {
		return fmt.Errorf("featureflags: reloaded configuration: %w", err)
	}
	defer m.hooks.deliver() // after the unlock below
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lastStatic != nil && m.lastStatic.EqualSettings(&s) {
		return nil
	}
	// The memory backend never blocks or fails on I/O.
	ctx := context.Background()
	cur, _, err := m.backend.Load(ctx)
	if err != nil {
		return err
	}
	now := m.now()
	next := s.Clone()
	next.Version = cur.Version + 1
	next.UpdatedAt = now
	next.UpdatedBy = "config"
	stampDeprecation(&cur, &next, now, m.known)
	entry := AuditEntry{At: now, Actor: "config", Action: ActionReload, From: cur, To: next, Reason: "configuration file changed"}
	if err := m.backend.CompareAndSwap(ctx, cur.Version, next, entry); err != nil {
		return err
	}
	m.install(next)
	last := s.Clone()
	m.lastStatic = &last
	m.log.Info("featureflags: flag state reloaded from configuration", "version", next.Version)
	return nil
}
