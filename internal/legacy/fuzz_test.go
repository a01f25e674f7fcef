package legacy

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Every parser of client- or store-supplied bytes answers a value or one
// of the package's errors, never a panic; the seeds run in go test.

func FuzzExpressCookie(f *testing.F) {
	var fx expressFixtures
	readFixture(f, "express_fixtures.json", &fx)
	for _, c := range fx.Cookies {
		f.Add(c.Cookie)
	}
	for _, s := range []string{"", "s:", "s:.", "s%3A", "%", "s:a.b.c", "s:\x00.x", "s%3Aa%2"} {
		f.Add(s)
	}
	secrets := [][]byte{[]byte("s1"), []byte("s0")}
	f.Fuzz(func(t *testing.T, cookie string) {
		id, err := verifyExpressCookie(cookie, secrets)
		if err != nil {
			if !errors.Is(err, ErrForged) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Whatever verified is exactly what one of the secrets signs.
		raw := cookie
		if strings.Contains(raw, "%") {
			raw, _ = url.PathUnescape(raw)
		}
		if raw != "s:"+signExpress(id, secrets[0]) && raw != "s:"+signExpress(id, secrets[1]) {
			t.Fatalf("accepted %q for id %q without a valid signature", cookie, id)
		}
	})
}

func FuzzExpressData(f *testing.F) {
	for _, s := range []string{
		`{"cookie":{"originalMaxAge":86400000,"expires":"2030-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"userId":42}`,
		`{"cookie":{"expires":null},"passport":{"user":"u"}}`,
		`{"userId":1.5}`, `[]`, `{`, `{"cookie":{"expires":false,"originalMaxAge":-1},"userId":"x"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, path := range []string{"userId", "passport.user"} {
			s, err := decodeExpressData(data, path, now, time.Hour)
			checkOutcome(t, s, err)
		}
	})
}

func FuzzDjangoSessionData(f *testing.F) {
	fx := loadDjangoFixtures(f)
	for _, s := range []string{fx.SessionData, fx.SessionDataCompressed, fx.SessionDataLegacy, fx.SessionDataAnonymous, "", ":", "::", ".:a:b"} {
		f.Add(s)
	}
	keys := []string{fx.SecretKey}
	f.Fuzz(func(t *testing.T, data string) {
		d, err := decodeDjangoSessionData(data, keys)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if d.data == nil {
			t.Fatal("nil data without an error")
		}
	})
}

func FuzzPHPSerialize(f *testing.F) {
	fx := loadPHPFixtures(f)
	for _, s := range append([]string{fx.SessionPHP, fx.SessionPHPSerialize}, fx.Serialize...) {
		b, _ := base64.StdEncoding.DecodeString(s)
		f.Add(b)
	}
	for _, s := range []string{"a:1:{i:0;", `s:3:"ab`, "O:1:\"A\":0:{}", "C:1:\"A\":2:{ab}", "R:1;", "d:NAN;", "user|i:1;x|b:0;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := unserializePHP(data); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		for _, h := range []string{"php", "php_serialize"} {
			vars, err := decodePHPSession(data, h)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				continue
			}
			if _, err := phpUserID(vars, "user"); err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("user id: %v", err)
			}
		}
	})
}

func FuzzCalloutJSON(f *testing.F) {
	for _, s := range []string{
		`{"user":{"id":"u-1","email":"a@b","roles":["x"]}}`, `{"user":{"id":1,"roles":"a, b"}}`,
		`{"user":{"id":null}}`, `{"user":[1]}`, `"x"`, `{"user":{"id":"u","email":5}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := decodeCalloutJSON(body, "user.id", "user.email", "user.roles")
		checkOutcome(t, s, err)
	})
}

func checkOutcome(t *testing.T, s *Session, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		return
	}
	if s == nil || s.UserID == "" {
		t.Fatalf("session without user and without error: %+v", s)
	}
}
