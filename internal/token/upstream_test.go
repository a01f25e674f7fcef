package token

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestIssueUpstream(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			sub := alice
			sub.SID = "sid-1"
			tok, exp, err := e.svc.IssueUpstream(sub, "session", time.Minute, "legacy-app")
			if err != nil {
				t.Fatal(err)
			}
			if want := e.clock.Now().Add(time.Minute).Truncate(time.Second); !exp.Equal(want) {
				t.Errorf("exp = %v, want %v", exp, want)
			}
			// An upstream that knows only the JWKS verifies it with its own audience.
			var cl UpstreamClaims
			parsed, err := jwt.ParseWithClaims(tok, &cl, jwksKeyfunc(t, e.svc.Ring().JWKS()),
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(e.clock.Now),
				jwt.WithAudience("legacy-app"), jwt.WithIssuer(e.svc.Options().Issuer), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("verifying with the JWKS: %v", err)
			}
			if parsed.Header["typ"] != UpstreamTyp {
				t.Errorf("typ = %v, want %s", parsed.Header["typ"], UpstreamTyp)
			}
			if cl.Subject != "u-alice" || cl.ClientID != "mobile" || cl.SID != "sid-1" || cl.Email != "alice@example.com" || cl.Scheme != "session" || len(cl.Roles) != 1 || cl.ID == "" {
				t.Errorf("claims = %+v", cl)
			}
			// It never passes as an access token.
			if _, err := e.svc.VerifyAccess(tok); !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("VerifyAccess accepted an upstream token: %v", err)
			}
		})
	}
}

// Even signed for the access-token audience, the upstream typ alone makes
// VerifyAccess refuse it; IssueUpstream refuses that audience anyway.
func TestUpstreamTokenNeverAnAccessToken(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	sub := alice
	sub.SID = "sid-1"
	for _, aud := range []string{"", e.svc.Options().Audience, "TOKENSHIFT"} {
		if _, _, err := e.svc.IssueUpstream(sub, "bearer", time.Minute, aud); !errors.Is(err, ErrUpstreamAudience) {
			t.Errorf("audience %q: err = %v, want ErrUpstreamAudience", aud, err)
		}
	}
	// Forge what a careless signer could produce: upstream typ, access audience.
	key := e.ring.SigningKey()
	claims := UpstreamClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: e.svc.Options().Issuer, Subject: "u-alice", Audience: jwt.ClaimStrings{e.svc.Options().Audience},
		ExpiresAt: jwt.NewNumericDate(e.clock.Now().Add(time.Minute)), IssuedAt: jwt.NewNumericDate(e.clock.Now()), ID: "j",
	}, ClientID: "mobile", SID: "sid-1"}
	tok := jwt.NewWithClaims(key.method, claims)
	tok.Header["typ"] = UpstreamTyp
	tok.Header["kid"] = key.kid
	raw, err := tok.SignedString(key.signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyAccess(raw); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("VerifyAccess accepted typ %s: %v", UpstreamTyp, err)
	}
}

func TestIssueUpstreamLimits(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	sub := alice
	sub.SID = "sid-1"
	for _, tc := range []struct {
		name string
		sub  Subject
		ttl  time.Duration
	}{
		{name: "zero ttl", sub: sub, ttl: 0},
		{name: "ttl above the maximum", sub: sub, ttl: MaxUpstreamTTL + time.Second},
		{name: "no user", sub: Subject{ClientID: "web"}, ttl: time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := e.svc.IssueUpstream(tc.sub, "session", tc.ttl, "app"); err == nil {
				t.Fatal("issued")
			}
		})
	}
	if err := e.rev.RevokeSID(t.Context(), "sid-1", e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.IssueUpstream(sub, "session", time.Minute, "app"); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("issued for a revoked login: %v", err)
	}
}
