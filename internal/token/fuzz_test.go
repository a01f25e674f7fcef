package token

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// FuzzVerifyAccess: whatever the bearer string, VerifyAccess never panics and
// fails with exactly one of the three sentinels; what it accepts carries the
// claims RFC 9068 requires.
func FuzzVerifyAccess(f *testing.F) {
	e := newEnv(f, AlgEdDSA, withFixedRand())
	p := e.issue(f, alice)
	valid := p.AccessToken
	vs := segments(valid)
	edPriv := e.ring.Key("ed-1").signer
	ecPub, _ := e.ring.Key("ec-1").Public().(interface{ Bytes() ([]byte, error) }).Bytes()
	claims := e.claimsMap()
	_, stranger, _ := ed25519.GenerateKey(nil)
	expClaims := e.claimsMap()
	expClaims["exp"] = "9999999999"

	seeds := []string{
		valid,
		vs[0] + "." + vs[1] + ".",
		forge(f, hdr("none", "ed-1"), claims, nil, nil),
		forge(f, hdr("nOnE", "ed-1"), claims, nil, nil),
		forge(f, hdr("HS256", "ec-1"), claims, jwt.SigningMethodHS256, ecPub),
		forge(f, hdr("EdDSA", "../../etc/passwd"), claims, jwt.SigningMethodEdDSA, edPriv),
		forge(f, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1", "jku": "http://127.0.0.1:1/jwks"}, claims, jwt.SigningMethodEdDSA, stranger),
		forge(f, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "ed-1", "crit": []string{"x"}}, claims, jwt.SigningMethodEdDSA, edPriv),
		forge(f, hdr("EdDSA", "ed-1"), expClaims, jwt.SigningMethodEdDSA, edPriv),
		forge(f, hdr("ES256", "ec-1"), claims, nil, nil) + b64(make([]byte, 64)),
		p.RefreshToken,
		"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 9000),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := e.svc.VerifyAccess(raw)
		if err != nil {
			if c != nil || !oneSentinel(err) {
				t.Fatalf("VerifyAccess(%q) = %v, %v; want nil claims and one sentinel", raw, c, err)
			}
			return
		}
		if c.Subject == "" || c.ClientID == "" || c.SID == "" || c.ID == "" || c.IssuedAt == nil || c.ExpiresAt == nil {
			t.Fatalf("VerifyAccess(%q) accepted incomplete claims %+v", raw, c)
		}
		if raw != valid {
			// Only our own signature can produce an accepted token, and the
			// only one we signed is valid (strict base64 leaves no twin).
			t.Fatalf("VerifyAccess accepted a token we never issued: %q", raw)
		}
	})
}

// FuzzParseRefresh: a refresh token is exactly rt_<sid>.<canonical base64url
// of 32 bytes>, or of the old kind rt_ + the same, anything else fails as invalid before the store is asked; the service
// entry points never panic and never fail otherwise on client input.
func FuzzParseRefresh(f *testing.F) {
	e := newEnv(f, AlgEdDSA)
	p := e.issue(f, alice)
	for _, s := range []string{
		p.RefreshToken, p.AccessToken, "", "rt_", "rt_" + strings.Repeat("A", 43), "rt_" + strings.Repeat("_", 43),
		"rt_." + strings.Repeat("A", 43), "rt_a.b." + strings.Repeat("A", 43), "rt_" + strings.Repeat("s", 65) + "." + strings.Repeat("A", 43),
		"RT_" + p.RefreshToken[3:], p.RefreshToken + "=", p.RefreshToken[:45] + nonCanonicalTail(p.RefreshToken),
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		pr, err := parseRefresh(raw)
		if err != nil {
			if !errors.Is(err, auth.ErrInvalid) || pr.hash != "" {
				t.Fatalf("parseRefresh(%q) = %+v, %v; want only ErrInvalid", raw, pr, err)
			}
		} else {
			secret := raw[len(raw)-refreshSecretLen:]
			want := "rt_" + secret
			if pr.sid != "" {
				want = "rt_" + pr.sid + "." + secret
			}
			if want != raw || len(pr.hash) != 64 || (pr.sid == "") != (len(raw) == refreshLegacyLen) {
				t.Fatalf("parseRefresh accepted %q (%+v)", raw, pr)
			}
			// Canonical: re-encoding the decoded bytes gives the same string.
			if again := base64.RawURLEncoding.EncodeToString(mustDecode(t, secret)); again != secret {
				t.Fatalf("parseRefresh accepted a non-canonical %q", raw)
			}
		}
		if raw == p.RefreshToken {
			return // the genuine one is consumed by nobody here
		}
		if _, err := e.svc.LookupRefresh(ctx, raw); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("LookupRefresh(%q) = %v; want ErrInvalid", raw, err)
		}
		if _, _, err := e.svc.Refresh(ctx, raw); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("Refresh(%q) = %v; want ErrInvalid", raw, err)
		}
	})
}

var base64Strict = base64.RawURLEncoding.Strict()

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64Strict.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
