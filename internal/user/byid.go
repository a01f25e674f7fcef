package user

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// IDStore is implemented by the stores that can find a user by id: the
// users file, the dev users and the SQL store with users.sql.query_by_id.
// The legacy session bridge needs it: a legacy session names its user by
// id, not by login.
type IDStore interface {
	// LookupID returns an error wrapping auth.ErrNotFound for an unknown id
	// and auth.ErrUnavailable when the store cannot answer.
	LookupID(ctx context.Context, id string) (*User, error)
}

// ErrNoIDLookup: the user store cannot look users up by id (a SQL store
// without users.sql.query_by_id).
var ErrNoIDLookup = errors.New("user store cannot look users up by id")

// ErrUserGone: the id names no usable account (unknown, disabled, or
// suspended in the account overlay). It wraps auth.ErrNotFound so a
// credential of such a user is refused like any unknown one.
var ErrUserGone = fmt.Errorf("user %w", auth.ErrNotFound)

var (
	_ IDStore = (*FileStore)(nil)
	_ IDStore = (*SQLStore)(nil)
)

// maxIDBytes bounds an id sent to a store (legacy ids are at most 256).
const maxIDBytes = 256

// LookupID implements IDStore.
func (f *FileStore) LookupID(_ context.Context, id string) (*User, error) {
	u, ok := f.byID[id]
	if !ok {
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	cp := *u
	return &cp, nil
}

// LookupID implements IDStore with users.sql.query_by_id. As for Lookup, an
// account whose password_hash is NULL or empty is not found.
func (s *SQLStore) LookupID(ctx context.Context, id string) (*User, error) {
	id = strings.TrimSpace(id)
	if s.queryID == "" {
		return nil, ErrNoIDLookup
	}
	if id == "" || len(id) > maxIDBytes {
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	u, err := s.lookupRow(ctx, s.queryID, id)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// LookupID finds the account of a user id as a login would see it: the
// store's row with the account overlay applied (a password changed through
// tokenshift replaces the store's hash; a suspension or a disabled account
// is ErrUserGone). ErrNoIDLookup when the store cannot look ids up;
// auth.ErrUnavailable (wrapped) when the store or the overlay cannot answer.
func (v *Verifier) LookupID(ctx context.Context, id string) (*User, error) {
	is, ok := v.store.(IDStore)
	if !ok {
		return nil, ErrNoIDLookup
	}
	u, err := is.LookupID(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, ErrUserGone
	}
	if v.overlay != nil {
		acct, err := v.overlay.Get(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrOverlay, err)
		}
		if acct.Suspended {
			return nil, ErrUserGone
		}
		if acct.PasswordHash != "" {
			u.PasswordHash = acct.PasswordHash
		}
	}
	return u, nil
}
