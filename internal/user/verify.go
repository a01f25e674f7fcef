package user

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// dummyHash is compared against when the login is unknown, so an unknown user
// costs the same bcrypt work as a wrong password and timing reveals nothing.
var dummyHash = func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("tokenshift-dummy-password"), bcrypt.DefaultCost)
	if err != nil {
		panic(err) // only fails on a cost out of range, a programming error
	}
	return h
}()

// PasswordChecker verifies an encoded hash. The default handles bcrypt; stores
// for other formats can supply their own.
type PasswordChecker func(encoded, password string) (bool, error)

// Verifier checks a login and password against a Store.
type Verifier struct {
	store Store
	check PasswordChecker
}

// NewVerifier builds a Verifier; check nil means bcrypt.
func NewVerifier(s Store, check PasswordChecker) *Verifier {
	if check == nil {
		check = CheckBcrypt
	}
	return &Verifier{store: s, check: check}
}

// Verify returns the user for a correct login and password. Unknown user, wrong
// password and disabled account all give ErrInvalidCredentials after the same
// hashing work; a store that cannot answer gives an error wrapping
// auth.ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, login, password string) (*User, error) {
	// bcrypt only reads 72 bytes; refuse longer so two passwords sharing a prefix
	// cannot both work, and so nobody makes us hash megabytes.
	if login == "" || password == "" || len(password) > 72 || len(login) > 320 {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password[:min(len(password), 72)]))
		return nil, ErrInvalidCredentials
	}
	u, err := v.store.Lookup(ctx, login)
	if err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
			return nil, ErrInvalidCredentials
		}
		return nil, fmt.Errorf("user lookup: %w", err)
	}
	ok, err := v.check(u.PasswordHash, password)
	if err != nil || !ok || u.Disabled {
		return nil, ErrInvalidCredentials
	}
	return u, nil
}

// CheckBcrypt is the PasswordChecker for bcrypt hashes.
func CheckBcrypt(encoded, password string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, nil
	}
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false, err
	}
	return true, nil
}

// HashPassword makes a bcrypt hash for a user file.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if len(password) > 72 {
		return "", errors.New("password longer than 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}
