package legacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/user"
)

// fakeSource answers Load from a map and counts the loads.
type fakeSource struct {
	name, kind string
	sessions   map[string]*Session
	err        error
	loads      int
}

func (f *fakeSource) Name() string      { return f.name }
func (f *fakeSource) Kind() string      { return f.kind }
func (f *fakeSource) Client() string    { return "web" }
func (f *fakeSource) Cookies() []string { return []string{f.name + ".sid"} }
func (f *fakeSource) Parse(cookie func(string) string) (string, error) {
	v := cookie(f.name + ".sid")
	switch v {
	case "":
		return "", ErrNoCookie
	case "forged":
		return "", ErrForged
	}
	return v, nil
}
func (f *fakeSource) Load(_ context.Context, id string) (*Session, error) {
	f.loads++
	if f.err != nil {
		return nil, f.err
	}
	s, ok := f.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	cp := *s
	return &cp, nil
}
func (f *fakeSource) End(context.Context, string) error { return nil }
func (f *fakeSource) Forget(string)                     {}
func (f *fakeSource) ForgetUser(string)                 {}
func (f *fakeSource) Ping(context.Context) error        { return f.err }
func (f *fakeSource) Close() error                      { return nil }

type fakeUsers map[string]any

func (f fakeUsers) LookupID(_ context.Context, id string) (*user.User, error) {
	switch v := f[id].(type) {
	case *user.User:
		cp := *v
		return &cp, nil
	case error:
		return nil, v
	}
	return nil, user.ErrUserGone
}

func TestVerifier(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const djKey = "dj-secret"
	pwHash := "pbkdf2_sha256$600000$salt$hash"
	authHash := djangoAuthHashForTest(djKey, pwHash)
	express := &fakeSource{name: "shop", kind: KindExpress, sessions: map[string]*Session{
		"alice":      {Source: "shop", Client: "web", ID: "alice", UserID: "u-alice", ExpiresAt: now.Add(time.Hour), IssuedAt: now.Add(-time.Minute)},
		"old":        {Source: "shop", Client: "web", ID: "old", UserID: "u-alice", ExpiresAt: now.Add(time.Hour), IssuedAt: now.Add(-2 * time.Hour)},
		"undated":    {Source: "shop", Client: "web", ID: "undated", UserID: "u-alice", ExpiresAt: now.Add(time.Hour)},
		"suspended":  {Source: "shop", Client: "web", ID: "suspended", UserID: "u-bob", ExpiresAt: now.Add(time.Hour)},
		"userdown":   {Source: "shop", Client: "web", ID: "userdown", UserID: "u-down", ExpiresAt: now.Add(time.Hour)},
		"overlaybad": {Source: "shop", Client: "web", ID: "overlaybad", UserID: "u-overlay", ExpiresAt: now.Add(time.Hour)},
	}}
	django := &fakeSource{name: "admin", kind: KindDjango, sessions: map[string]*Session{
		"good":  {Source: "admin", Client: "web", ID: "good", UserID: "7", AuthHash: authHash, ExpiresAt: now.Add(time.Hour)},
		"stale": {Source: "admin", Client: "web", ID: "stale", UserID: "7", AuthHash: "0000", ExpiresAt: now.Add(time.Hour)},
	}}
	down := &fakeSource{name: "forum", kind: KindPHP, err: fmt.Errorf("redis: %w", auth.ErrUnavailable)}
	set := &Set{sources: []Source{express, django, down}, byName: map[string]Source{"shop": express, "admin": django, "forum": down}}
	users := fakeUsers{
		"u-alice":   &user.User{ID: "u-alice", Email: "alice@example.com", Roles: []string{"user"}},
		"u-bob":     user.ErrUserGone,
		"u-down":    fmt.Errorf("sql: %w", auth.ErrUnavailable),
		"u-overlay": fmt.Errorf("%w: boom", user.ErrOverlay),
		"7":         &user.User{ID: "7", Email: "dj@example.com", PasswordHash: pwHash},
	}
	notBefore := func(id string) time.Time {
		if id == "u-alice" {
			return now.Add(-time.Hour) // revoked an hour ago
		}
		return time.Time{}
	}
	v := NewVerifier(set, []Options{{Name: "admin", Kind: KindDjango, SecretKey: "other-key", SecretKeyFallbacks: []string{djKey}}}, users, notBefore)
	if got := v.CookieNames(); len(got) != 3 || got[0] != "shop.sid" {
		t.Fatalf("CookieNames = %v", got)
	}
	tests := []struct {
		name     string
		cookie   string
		value    string
		wantErr  error
		wantUser string
	}{
		{name: "express session", cookie: "shop.sid", value: "alice", wantUser: "u-alice"},
		{name: "saved before the revocation", cookie: "shop.sid", value: "old", wantErr: auth.ErrRevoked},
		{name: "no save time proves nothing", cookie: "shop.sid", value: "undated", wantUser: "u-alice"},
		{name: "gone from the store", cookie: "shop.sid", value: "nope", wantErr: auth.ErrNotFound},
		{name: "suspended user", cookie: "shop.sid", value: "suspended", wantErr: auth.ErrInvalid},
		{name: "user store down", cookie: "shop.sid", value: "userdown", wantErr: auth.ErrUnavailable},
		{name: "overlay down", cookie: "shop.sid", value: "overlaybad", wantErr: auth.ErrUnavailable},
		{name: "django hash by a fallback key", cookie: "admin.sid", value: "good", wantUser: "7"},
		{name: "django password changed", cookie: "admin.sid", value: "stale", wantErr: auth.ErrInvalid},
		{name: "legacy store down", cookie: "forum.sid", value: "x", wantErr: auth.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred, ok, err := v.ParseLegacy(authn.CookieFunc(func(n string) string {
				if n == tc.cookie {
					return tc.value
				}
				return ""
			}))
			if !ok || err != nil {
				t.Fatalf("ParseLegacy = %v, %v, %v", cred, ok, err)
			}
			p, err := v.VerifyLegacy(context.Background(), cred)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("VerifyLegacy = %+v, %v; want %v", p, err, tc.wantErr)
				}
				return
			}
			if err != nil || p.UserID != tc.wantUser || p.ClientID != "web" || p.Source != cred.Source || p.SID != Handle(cred.Source, cred.ID) || p.SID == cred.ID || p.LegacyID != cred.ID {
				t.Fatalf("VerifyLegacy = %+v, %v", p, err)
			}
		})
	}
	// No cookie: not present, no load. Forged: present, refused, no load.
	loads := express.loads
	if _, ok, err := v.ParseLegacy(authn.CookieFunc(func(string) string { return "" })); ok || err != nil {
		t.Fatalf("no cookie: ok %v err %v", ok, err)
	}
	if _, ok, err := v.ParseLegacy(authn.CookieFunc(func(n string) string { return map[string]string{"shop.sid": "forged"}[n] })); !ok || !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("forged: ok %v err %v", ok, err)
	}
	if express.loads != loads {
		t.Fatal("parsing loaded")
	}
	var _ authn.LegacyVerifier = v
}

func djangoAuthHashForTest(key, passwordHash string) string {
	return hex.EncodeToString(saltedHMAC(sha256.New, djangoAuthHashSalt, key, passwordHash))
}
