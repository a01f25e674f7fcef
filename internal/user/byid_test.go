package user

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

func TestVerifierLookupID(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(time.Now)
	v, _ := newAccountVerifier(t, st, true)
	ov := NewStoreOverlay(st)
	if err := ov.SetSuspended(ctx, "u-bob", time.Now(), "ops", "test"); err != nil {
		t.Fatal(err)
	}
	if err := ov.SetPassword(ctx, "u-alice", "$2a$04$new", time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		id       string
		wantErr  error
		wantHash string
	}{
		{name: "known, password changed through tokenshift", id: "u-alice", wantHash: "$2a$04$new"},
		{name: "suspended", id: "u-bob", wantErr: auth.ErrNotFound},
		{name: "unknown", id: "u-carol", wantErr: auth.ErrNotFound},
		{name: "a login is not an id", id: "alice@example.com", wantErr: auth.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := v.LookupID(ctx, tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("LookupID = %v, %v; want %v", u, err, tc.wantErr)
				}
				return
			}
			if err != nil || u.ID != tc.id || u.PasswordHash != tc.wantHash || u.Email == "" {
				t.Fatalf("LookupID = %+v, %v", u, err)
			}
		})
	}
	// A store without ids.
	nv := NewVerifier(newMapStore(), nil)
	if _, err := nv.LookupID(ctx, "u-alice"); !errors.Is(err, ErrNoIDLookup) {
		t.Fatalf("map store LookupID = %v, want ErrNoIDLookup", err)
	}
	// SQL store without query_by_id.
	s, err := NewSQL(SQLOptions{Driver: "pgx", DSN: "postgres://u:p@127.0.0.1:1/db", Query: "SELECT id, email, pw, roles FROM users WHERE email = $1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.LookupID(ctx, "1"); !errors.Is(err, ErrNoIDLookup) {
		t.Fatalf("sql LookupID = %v, want ErrNoIDLookup", err)
	}
	if err := CheckSQLOptions(SQLOptions{Driver: "pgx", DSN: "postgres://u:p@h/db", Query: "SELECT 1,2,3,4 WHERE $1 = ''", QueryByID: "SELECT 1 WHERE $2 = ''"}); err == nil {
		t.Fatal("query_by_id with $2 accepted")
	} else if oe := (*SQLOptionError)(nil); !errors.As(err, &oe) || oe.Field != "query_by_id" {
		t.Fatalf("err = %v, want field query_by_id", err)
	}
}
