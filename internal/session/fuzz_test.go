package session

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// FuzzAuthenticate: a cookie is client input. Whatever the string, Authenticate
// must not panic, must fail with ErrInvalid or ErrExpired, and may only
// succeed for the one real cookie.
func FuzzAuthenticate(f *testing.F) {
	clk := newClock()
	st := store.NewMemory(clk.Now)
	f.Cleanup(func() { _ = st.Close() })
	m, err := New(st, Options{Clock: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	s, cookie, err := m.Create(ctx, NewSession{UserID: "u-fuzz", Cookie: true, Tokens: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		cookie,
		s.SID,
		s.SID + ".",
		s.SID + "." + strings.Repeat("A", secretLen),
		cookie[:len(cookie)-1] + "B",
		"." + cookie,
		strings.Repeat(".", cookieLen),
		strings.Repeat("\xff", cookieLen),
		"",
		"session=" + cookie,
		cookie + "; Path=/",
		"%2e%2e%2f",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		got, err := m.Authenticate(ctx, value)
		if err == nil {
			if value != cookie || got.SID != s.SID {
				t.Fatalf("Authenticate(%q) accepted a cookie that is not the real one", value)
			}
			return
		}
		if !errors.Is(err, auth.ErrInvalid) && !errors.Is(err, auth.ErrExpired) {
			t.Fatalf("Authenticate(%q) = %v; want ErrInvalid or ErrExpired", value, err)
		}
		if _, ok := SplitCookie(value); !ok && !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("malformed %q gave %v", value, err)
		}
	})
}
