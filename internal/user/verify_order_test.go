package user

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// changeDuringHash is the shared overlay of the test, on which an account
// change (another instance's password change or suspension) lands right after
// a login read the account state, i.e. while the login waits for a hashing
// slot and hashes.
type changeDuringHash struct {
	Overlay
	once   sync.Once
	change func(context.Context, Overlay) error
	err    error
	reads  int
}

func (o *changeDuringHash) Get(ctx context.Context, userID string) (AccountState, error) {
	a, err := o.Overlay.Get(ctx, userID)
	o.reads++
	if o.change != nil {
		o.once.Do(func() { o.err = o.change(ctx, o.Overlay) })
	}
	return a, err
}

// TestVerifyRereadsTheAccountAfterTheHash: the account state a login was
// checked against is read again once the hash verified, so a password change
// or a suspension that landed meanwhile refuses the login (issue 10, item 1).
func TestVerifyRereadsTheAccountAfterTheHash(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	newHash, err := hashOverride("alice-new-pw", 4)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// before is applied before the login starts; change lands during it.
		before, change func(context.Context, Overlay) error
		wantErr        error
		// wantReads: before and after the hash, unless the first read
		// already refuses.
		wantReads int
	}{
		{name: "nothing changes", wantErr: nil, wantReads: 2},
		{
			name: "suspended during the hash",
			change: func(ctx context.Context, o Overlay) error {
				return o.SetSuspended(ctx, "u-alice", at, "ops@example.com", "fraud")
			},
			wantErr: ErrSuspended, wantReads: 2,
		},
		{
			name: "password changed during the hash",
			change: func(ctx context.Context, o Overlay) error {
				return o.SetPassword(ctx, "u-alice", newHash, at)
			},
			wantErr: ErrAccountChanged, wantReads: 2,
		},
		{
			name: "password changed again during the hash",
			before: func(ctx context.Context, o Overlay) error {
				h, err := hashOverride("alice-old-pw", 4)
				if err != nil {
					return err
				}
				return o.SetPassword(ctx, "u-alice", h, at)
			},
			change: func(ctx context.Context, o Overlay) error {
				return o.SetPassword(ctx, "u-alice", newHash, at.Add(time.Minute))
			},
			wantErr: ErrAccountChanged, wantReads: 2,
		},
		{
			name: "suspension lifted during the hash is still refused",
			before: func(ctx context.Context, o Overlay) error {
				return o.SetSuspended(ctx, "u-alice", at, "ops@example.com", "fraud")
			},
			change: func(ctx context.Context, o Overlay) error {
				return o.ClearSuspended(ctx, "u-alice")
			},
			wantErr: ErrSuspended, wantReads: 1,
		},
	}
	for name, st := range overlayBackends(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					ctx := context.Background()
					if err := st.DeleteCtx(ctx, overlayPrefix+"u-alice"); err != nil {
						t.Fatal(err)
					}
					base := NewStoreOverlay(st)
					if tc.before != nil {
						if err := tc.before(ctx, base); err != nil {
							t.Fatal(err)
						}
					}
					o := &changeDuringHash{Overlay: base, change: tc.change}
					_, fs := newAccountVerifier(t, st, true)
					v := NewVerifier(fs, &VerifierOptions{Overlay: o, PasswordCost: 4})
					u, err := v.Verify(ctx, "alice@example.com", "alice-old-pw")
					if o.err != nil {
						t.Fatal(o.err)
					}
					if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (u != nil) {
						t.Fatalf("Verify = %v, %v; want error %v", u, err, tc.wantErr)
					}
					if o.reads != tc.wantReads {
						t.Fatalf("account state read %d times, want %d", o.reads, tc.wantReads)
					}
					if errors.Is(err, ErrAccountChanged) && !errors.Is(err, ErrInvalidCredentials) {
						t.Fatalf("a change during the login must read as invalid credentials to the client: %v", err)
					}
				})
			}
		})
	}
}
