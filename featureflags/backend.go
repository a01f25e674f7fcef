package featureflags

import (
	"context"
	"encoding/json"
	"time"
)

// Audit actions.
const (
	ActionInit     = "init"     // first state, seeded from configuration
	ActionSet      = "set"      // an operator's change through Apply
	ActionRollback = "rollback" // back to the previous state
	ActionReload   = "reload"   // the configuration file changed (static source)
	ActionRefused  = "refused"  // the guard refused a change; nothing changed
)

// AuditEntry records one change of state: who, when, from what, to what, why.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // set|rollback|init|reload|refused
	From   State     `json:"from"`   // zero (null in JSON) for init
	// To is the state written; for a refused change, the state that was
	// asked for, at the unchanged version.
	To     State  `json:"to"`
	Reason string `json:"reason"`
	Forced bool   `json:"forced"`
	// Figures are the usage figures the guard read, when it was consulted;
	// on a forced change they show what the operator overrode.
	Figures *GuardFigures `json:"figures,omitempty"`
}

// MarshalJSON writes "from": null for an init entry, whose From is the zero
// State (phase 0 has no name, so it cannot be encoded as a State).
func (e AuditEntry) MarshalJSON() ([]byte, error) {
	type plain AuditEntry // no methods: avoids recursing into MarshalJSON
	var from *State
	if e.From.Phase != 0 {
		from = &e.From
	}
	return json.Marshal(struct {
		plain
		From *State `json:"from"`
	}{plain(e), from})
}

// Backend is where the flag state lives. Every change goes through
// CompareAndSwap, so two writers can never silently overwrite each other.
type Backend interface {
	// Load returns the current state; false when none is stored yet.
	Load(ctx context.Context) (State, bool, error)
	// CompareAndSwap stores next if the stored version is expectVersion (0 when
	// nothing is stored), else fails with ErrVersionConflict. In the same
	// atomic step it appends entry to the audit log and updates the history:
	// the replaced state is pushed, except for a rollback, which pops the state
	// it returns to (ErrNoHistory when there is none). Stale rollbacks thus
	// walk further back instead of undoing the rollback.
	CompareAndSwap(ctx context.Context, expectVersion int64, next State, entry AuditEntry) error
	// AppendAudit adds an entry that goes with no change of state (a change
	// the guard refused), capped like the entries CompareAndSwap writes.
	AppendAudit(ctx context.Context, entry AuditEntry) error
	// History returns up to n earlier states a rollback can return to, newest
	// first (n <= 0: all that are kept).
	History(ctx context.Context, n int) ([]State, error)
	// Audit returns up to n audit entries, newest first (n <= 0: all kept).
	Audit(ctx context.Context, n int) ([]AuditEntry, error)
	// Watch calls onChange whenever the state may have changed (announcement
	// or periodic re-read), until ctx is done. onChange must be cheap to call
	// spuriously: it should reload and compare versions.
	Watch(ctx context.Context, onChange func())
}
