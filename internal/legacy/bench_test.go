package legacy

import (
	"context"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/user"
)

// The per-request costs a legacy cookie adds: verifying it (no I/O) and
// one Load from a local Redis.

func BenchmarkExpressParse(b *testing.B) {
	secrets := [][]byte{[]byte("s1"), []byte("s0")}
	c := SignExpressCookie("wSs6ZIbqXzWvG7mDcL5pA2kR9tYbN3eH", "s0")
	for b.Loop() {
		if _, err := verifyExpressCookie(c, secrets); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExpressLoad(b *testing.B) {
	h := startRedisB(b)
	src, err := New(Options{Name: "shop", Kind: KindExpress, Client: "web", UserID: "passport.user",
		Secrets: []string{"s1"}, Redis: h.opts()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	h.admin.Set(ctx, "sess:bench", `{"cookie":{"originalMaxAge":86400000,"expires":"2099-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"passport":{"user":"42"}}`, time.Hour)
	for b.Loop() {
		if _, err := src.Load(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDjangoDecode(b *testing.B) {
	fx := loadDjangoFixtures(b)
	for b.Loop() {
		if _, err := decodeDjangoSessionData(fx.SessionData, []string{fx.SecretKey}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPHPDecode(b *testing.B) {
	fx := loadPHPFixtures(b)
	data := b64(b, fx.SessionPHP)
	for b.Loop() {
		if _, err := decodePHPSession(data, "php"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyLegacyCached is a legacy cookie's verification once the
// near cache holds it (no Redis command, one allocation: the principal).
func BenchmarkVerifyLegacyCached(b *testing.B) {
	h := startRedisB(b)
	o := Options{Name: "shop", Kind: KindExpress, Client: "web", UserID: "passport.user", Secrets: []string{"s1"}, Redis: h.opts()}
	set, err := Open([]Options{o})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	ctx := context.Background()
	h.admin.Set(ctx, "sess:bench", `{"cookie":{"originalMaxAge":86400000,"expires":"2099-01-01T00:00:00.000Z"},"passport":{"user":"42"}}`, time.Hour)
	v := NewVerifier(set, []Options{o}, fakeUsers{"42": &user.User{ID: "42", Email: "b@example.com", Roles: []string{"user"}}}, func(string) time.Time { return time.Time{} })
	cookie := SignExpressCookie("bench", "s1")
	jar := authn.CookieFunc(func(n string) string {
		if n == "connect.sid" {
			return cookie
		}
		return ""
	})
	b.ReportAllocs()
	for b.Loop() {
		cred, _, err := v.ParseLegacy(jar)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.VerifyLegacy(ctx, cred); err != nil {
			b.Fatal(err)
		}
	}
}
