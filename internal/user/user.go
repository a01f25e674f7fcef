// Package user finds users by login name and verifies their passwords. Stores
// (a YAML file, later the legacy app's SQL table) sit behind Store; Verifier adds
// the timing-safe comparison every store needs.
package user

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// User is an account as the stores hold it.
type User struct {
	ID           string
	Email        string
	PasswordHash string
	Roles        []string
	Disabled     bool
}

// Store looks users up by login name (their email, case-insensitive).
type Store interface {
	// Lookup returns an error wrapping auth.ErrNotFound for an unknown login and
	// auth.ErrUnavailable when the store cannot answer.
	Lookup(ctx context.Context, login string) (*User, error)
}

// ErrInvalidCredentials is the one answer for unknown user, wrong password and
// disabled account, so a caller cannot tell which.
var ErrInvalidCredentials = errors.New("invalid credentials")

// NormalizeLogin lower-cases and trims a login so lookups are case-insensitive.
func NormalizeLogin(login string) string { return strings.ToLower(strings.TrimSpace(login)) }

func validateUser(u *User) error {
	if u.ID == "" || u.Email == "" || u.PasswordHash == "" {
		return fmt.Errorf("user %q: id, email and password_hash are required", u.Email)
	}
	if slices.Contains(u.Roles, "") {
		return fmt.Errorf("user %q: empty role", u.Email)
	}
	return nil
}
