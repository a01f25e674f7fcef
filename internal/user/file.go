package user

import (
	"context"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// FileStore is a read-only user store loaded from YAML:
//
//	users:
//	  - {id: u-alice, email: alice@example.com, password_hash: "$2a$10$...", roles: [user]}
type FileStore struct {
	byLogin map[string]*User
	byID    map[string]*User
	first   string
}

type fileDoc struct {
	Users []struct {
		ID           string   `yaml:"id"`
		Email        string   `yaml:"email"`
		PasswordHash string   `yaml:"password_hash"`
		Roles        []string `yaml:"roles"`
		Disabled     bool     `yaml:"disabled"`
	} `yaml:"users"`
}

// LoadFile reads a YAML user file.
func LoadFile(path string) (*FileStore, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	fs, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return fs, nil
}

// ParseFile parses YAML user data (used for the embedded dev users).
func ParseFile(data []byte) (*FileStore, error) {
	var doc fileDoc
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	fs := &FileStore{byLogin: make(map[string]*User, len(doc.Users)), byID: make(map[string]*User, len(doc.Users))}
	seenID := map[string]bool{}
	for _, d := range doc.Users {
		u := &User{ID: d.ID, Email: d.Email, PasswordHash: d.PasswordHash, Roles: d.Roles, Disabled: d.Disabled}
		if err := validateUser(u); err != nil {
			return nil, err
		}
		login := NormalizeLogin(u.Email)
		if fs.byLogin[login] != nil || seenID[u.ID] {
			return nil, fmt.Errorf("user %q listed twice", u.Email)
		}
		seenID[u.ID] = true
		fs.byLogin[login] = u
		fs.byID[u.ID] = u
		if fs.first == "" {
			fs.first = u.PasswordHash
		}
	}
	return fs, nil
}

// Lookup implements Store.
func (f *FileStore) Lookup(_ context.Context, login string) (*User, error) {
	u, ok := f.byLogin[NormalizeLogin(login)]
	if !ok {
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	cp := *u
	return &cp, nil
}

// Len is the number of users loaded.
func (f *FileStore) Len() int { return len(f.byLogin) }

// FirstHash is the password hash of the file's first user: the Verifier makes
// unknown logins cost what it costs.
func (f *FileStore) FirstHash() string { return f.first }
