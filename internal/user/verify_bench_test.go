package user

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
)

// BenchmarkVerify compares, per stored format, a wrong password for a real
// user with an unknown login: the calibrated dummy should make them cost the
// same. Run with a small fixed count, e.g. -benchtime 10x.
func BenchmarkVerify(b *testing.B) {
	bc10, err := bcryptAtCost("bench-password", 10)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct{ name, hash string }{
		{"bcrypt-10", bc10},
		{"spring-argon2-v5.8", "{argon2@SpringSecurity_v5_8}" + cliSpringArgon2},
		{"spring-pbkdf2-v5.8", "{pbkdf2@SpringSecurity_v5_8}" + pySpringV58},
		{"django-pbkdf2-390k", djangoTestPBKDF2},
	} {
		fs, err := ParseFile(fmt.Appendf(nil, "users:\n  - {id: u1, email: a@x, password_hash: %q}\n", f.hash))
		if err != nil {
			b.Fatal(err)
		}
		v := NewVerifier(fs, &VerifierOptions{Logger: slog.New(slog.DiscardHandler)})
		for _, who := range []struct{ name, login string }{{"known-wrong-password", "a@x"}, {"unknown-user", "nobody@x"}} {
			b.Run(f.name+"/"+who.name, func(b *testing.B) {
				for b.Loop() {
					_, _ = v.Verify(context.Background(), who.login, "wrong password")
				}
			})
		}
	}
}
