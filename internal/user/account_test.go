package user

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// overlayBackends are the shared stores the overlay runs on: the in-memory
// one and a real Redis started for the test.
func overlayBackends(t *testing.T) map[string]store.Store {
	t.Helper()
	mem := store.NewMemory(time.Now)
	t.Cleanup(func() { mem.Close() })
	srv := redistest.Start(t)
	rd, err := store.Open(store.RedisOptions{URL: srv.URL(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, PoolTimeout: time.Second}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	return map[string]store.Store{"memory": mem, "redis": rd}
}

func TestStoreOverlay(t *testing.T) {
	for name, st := range overlayBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := NewStoreOverlay(st)
			if a, err := o.Get(ctx, "u1"); err != nil || a != (AccountState{}) {
				t.Fatalf("unknown user: %+v, %v", a, err)
			}
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			if err := o.SetPassword(ctx, "u1", "bcrypt_sha256$x", at); err != nil {
				t.Fatal(err)
			}
			if err := o.SetSuspended(ctx, "u1", at.Add(time.Hour), "ops@example.com", "fraud"); err != nil {
				t.Fatal(err)
			}
			a, err := o.Get(ctx, "u1")
			want := AccountState{PasswordHash: "bcrypt_sha256$x", PasswordChangedAt: at, Suspended: true,
				SuspendedAt: at.Add(time.Hour), SuspendedBy: "ops@example.com", SuspendReason: "fraud"}
			if err != nil || a != want {
				t.Fatalf("Get = %+v, %v; want %+v", a, err, want)
			}
			// Lifting the suspension keeps the password, and the other way
			// round: the two never overwrite each other.
			if err := o.ClearSuspended(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
			if a, _ := o.Get(ctx, "u1"); a.Suspended || a.PasswordHash != "bcrypt_sha256$x" {
				t.Fatalf("after unsuspend: %+v", a)
			}
			if a, _ := o.Get(ctx, "u2"); a != (AccountState{}) {
				t.Fatalf("another user sees u1's state: %+v", a)
			}
			// A record nobody can read still suspends.
			if err := st.HSet(ctx, overlayPrefix+"u3", 0, fieldSuspension, []byte("{not json")); err != nil {
				t.Fatal(err)
			}
			if a, err := o.Get(ctx, "u3"); err != nil || !a.Suspended {
				t.Fatalf("unreadable suspension: %+v, %v; want suspended", a, err)
			}
		})
	}
}

func newAccountVerifier(t *testing.T, st store.Store, allow bool) (*Verifier, *FileStore) {
	t.Helper()
	fs, err := ParseFile([]byte(`users:
  - {id: u-alice, email: alice@example.com, password_hash: "` + mustBcrypt(t, "alice-old-pw") + `"}
  - {id: u-bob, email: bob@example.com, password_hash: "` + mustBcrypt(t, "bob-pw-1234") + `"}
`))
	if err != nil {
		t.Fatal(err)
	}
	return NewVerifier(fs, &VerifierOptions{Overlay: NewStoreOverlay(st), AllowPasswordChange: allow, PasswordCost: 4}), fs
}

func TestChangePassword(t *testing.T) {
	for name, st := range overlayBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			v, _ := newAccountVerifier(t, st, true)
			long := strings.Repeat("é", 300) // 600 bytes: beyond bcrypt's 72, within 1 KiB
			tests := []struct {
				name                   string
				userID, login, current string
				next                   string
				wantErr                error
			}{
				{name: "too short", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: "short7!", wantErr: ErrPasswordPolicy},
				{name: "eight characters of two bytes each are eight", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: "ééééééé", wantErr: ErrPasswordPolicy},
				{name: "too long", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: strings.Repeat("x", 1025), wantErr: ErrPasswordPolicy},
				{name: "not UTF-8", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: "abcdefgh\xff", wantErr: ErrPasswordPolicy},
				{name: "same as current", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: "alice-old-pw", wantErr: ErrPasswordPolicy},
				{name: "wrong current", userID: "u-alice", login: "alice@example.com", current: "alice-old-PW", next: "alice-new-pw", wantErr: ErrInvalidCredentials},
				{name: "someone else's login and password", userID: "u-alice", login: "bob@example.com", current: "bob-pw-1234", next: "alice-new-pw", wantErr: ErrInvalidCredentials},
				{name: "changed", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: long},
				{name: "old password no longer counts as current", userID: "u-alice", login: "alice@example.com", current: "alice-old-pw", next: "another-pw-1", wantErr: ErrInvalidCredentials},
				{name: "changed again from the new one", userID: "u-alice", login: "alice@example.com", current: long, next: "ééééééééé"},
			}
			for _, tc := range tests {
				if err := v.ChangePassword(ctx, tc.userID, tc.login, tc.current, tc.next); !errors.Is(err, tc.wantErr) {
					t.Fatalf("%s: ChangePassword = %v, want %v", tc.name, err, tc.wantErr)
				}
			}
			if _, err := v.Verify(ctx, "alice@example.com", "alice-old-pw"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("old password after change: %v", err)
			}
			if _, err := v.Verify(ctx, "alice@example.com", long); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("intermediate password after second change: %v", err)
			}
			if u, err := v.Verify(ctx, "alice@example.com", "ééééééééé"); err != nil || u.ID != "u-alice" {
				t.Fatalf("new password: %v, %v", u, err)
			}
			a, _ := v.Account(ctx, "u-alice")
			if !strings.HasPrefix(a.PasswordHash, "bcrypt_sha256$$2a$04$") || a.PasswordChangedAt.IsZero() {
				t.Fatalf("stored override %+v", a)
			}
			// Every instance reads the shared store: a second Verifier over the
			// same store sees the change.
			other, _ := newAccountVerifier(t, st, true)
			if _, err := other.Verify(ctx, "alice@example.com", "ééééééééé"); err != nil {
				t.Fatalf("another instance: %v", err)
			}
			if _, err := other.Verify(ctx, "bob@example.com", "bob-pw-1234"); err != nil {
				t.Fatalf("bob is untouched: %v", err)
			}
		})
	}
}

func TestChangePasswordDisabled(t *testing.T) {
	st := store.NewMemory(time.Now)
	defer st.Close()
	v, _ := newAccountVerifier(t, st, false)
	if v.PasswordChangeAllowed() {
		t.Fatal("allowed while switched off")
	}
	if err := v.ChangePassword(context.Background(), "u-alice", "alice@example.com", "alice-old-pw", "alice-new-pw"); !errors.Is(err, ErrPasswordChangeDisabled) {
		t.Fatalf("ChangePassword = %v, want ErrPasswordChangeDisabled", err)
	}
	noOverlay := NewVerifier(newMapStore(), &VerifierOptions{AllowPasswordChange: true})
	if noOverlay.PasswordChangeAllowed() {
		t.Fatal("allowed without an overlay to write to")
	}
	if _, err := noOverlay.Suspend(context.Background(), "u", "ops", "r"); !errors.Is(err, ErrNoOverlay) {
		t.Fatalf("Suspend without overlay = %v", err)
	}
}

func TestSuspension(t *testing.T) {
	for name, st := range overlayBackends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			v, _ := newAccountVerifier(t, st, true)
			a, err := v.Suspend(ctx, "u-alice", "ops@example.com", "chargeback")
			if err != nil || !a.Suspended || a.SuspendedBy != "ops@example.com" || a.SuspendReason != "chargeback" || a.SuspendedAt.IsZero() {
				t.Fatalf("Suspend = %+v, %v", a, err)
			}
			// Only the right password learns of the suspension.
			if _, err := v.Verify(ctx, "alice@example.com", "alice-old-pw"); !errors.Is(err, ErrSuspended) {
				t.Fatalf("right password while suspended: %v, want ErrSuspended", err)
			}
			if _, err := v.Verify(ctx, "alice@example.com", "guess"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("wrong password while suspended: %v, want ErrInvalidCredentials", err)
			}
			if err := v.ChangePassword(ctx, "u-alice", "alice@example.com", "alice-old-pw", "alice-new-pw"); !errors.Is(err, ErrSuspended) {
				t.Fatalf("password change while suspended: %v", err)
			}
			if _, err := v.Verify(ctx, "bob@example.com", "bob-pw-1234"); err != nil {
				t.Fatalf("bob: %v", err)
			}
			if a, err := v.Unsuspend(ctx, "u-alice"); err != nil || a.Suspended {
				t.Fatalf("Unsuspend = %+v, %v", a, err)
			}
			if _, err := v.Verify(ctx, "alice@example.com", "alice-old-pw"); err != nil {
				t.Fatalf("after unsuspend: %v", err)
			}
		})
	}
}

func TestOverlayUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	rd, err := store.Open(store.RedisOptions{URL: srv.URL(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, PoolTimeout: 200 * time.Millisecond}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	v, _ := newAccountVerifier(t, rd, true)
	srv.Stop()
	_, err = v.Verify(context.Background(), "alice@example.com", "alice-old-pw")
	if err == nil || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("Verify with the overlay down = %v; want a store error, never a verdict on the password", err)
	}
}
