package user

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
)

// AccountState is what tokenshift itself knows about a user on top of the
// user store: a password changed through tokenshift (the legacy table is
// read-only to us) and a suspension by an operator.
type AccountState struct {
	// PasswordHash replaces the store's hash when set.
	PasswordHash      string
	PasswordChangedAt time.Time

	Suspended     bool
	SuspendedAt   time.Time
	SuspendedBy   string
	SuspendReason string
}

// Overlay keeps AccountStates where every instance sees them.
type Overlay interface {
	// Get returns the zero AccountState for a user it knows nothing of.
	Get(ctx context.Context, userID string) (AccountState, error)
	SetPassword(ctx context.Context, userID, hash string, at time.Time) error
	SetSuspended(ctx context.Context, userID string, at time.Time, by, reason string) error
	ClearSuspended(ctx context.Context, userID string) error
}

// StoreOverlay keeps AccountStates in the shared store, one hash per user with
// one field per concern, so a password change and a suspension never
// overwrite each other. Entries do not expire: a suspension holds until lifted.
type StoreOverlay struct{ st store.Store }

var _ Overlay = StoreOverlay{}

// NewStoreOverlay builds the overlay over st.
func NewStoreOverlay(st store.Store) StoreOverlay { return StoreOverlay{st: st} }

const (
	overlayPrefix     = "ts:acct:"
	fieldPassword     = "password"
	fieldSuspension   = "suspension"
	maxOverlayFieldSz = 8 << 10
)

type passwordRecord struct {
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
}

type suspensionRecord struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Get implements Overlay.
func (o StoreOverlay) Get(ctx context.Context, userID string) (AccountState, error) {
	var a AccountState
	fields, err := o.st.HGetAll(ctx, overlayPrefix+userID)
	if err != nil {
		return a, err
	}
	if raw, ok := fields[fieldPassword]; ok {
		var r passwordRecord
		if len(raw) > maxOverlayFieldSz || json.Unmarshal(raw, &r) != nil {
			return a, fmt.Errorf("account overlay of user %q: unreadable password record", userID)
		}
		a.PasswordHash, a.PasswordChangedAt = r.Hash, r.At
	}
	if raw, ok := fields[fieldSuspension]; ok {
		var r suspensionRecord
		if len(raw) > maxOverlayFieldSz || json.Unmarshal(raw, &r) != nil {
			// Unreadable must not mean "not suspended".
			a.Suspended = true
			return a, nil
		}
		a.Suspended, a.SuspendedAt, a.SuspendedBy, a.SuspendReason = true, r.At, r.By, r.Reason
	}
	return a, nil
}

// SetPassword implements Overlay.
func (o StoreOverlay) SetPassword(ctx context.Context, userID, hash string, at time.Time) error {
	b, _ := json.Marshal(passwordRecord{Hash: hash, At: at.UTC()})
	return o.st.HSet(ctx, overlayPrefix+userID, 0, fieldPassword, b)
}

// SetSuspended implements Overlay.
func (o StoreOverlay) SetSuspended(ctx context.Context, userID string, at time.Time, by, reason string) error {
	b, _ := json.Marshal(suspensionRecord{At: at.UTC(), By: by, Reason: reason})
	return o.st.HSet(ctx, overlayPrefix+userID, 0, fieldSuspension, b)
}

// ClearSuspended implements Overlay.
func (o StoreOverlay) ClearSuspended(ctx context.Context, userID string) error {
	return o.st.HDel(ctx, overlayPrefix+userID, fieldSuspension)
}
