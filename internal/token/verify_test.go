package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestIssueVerifyRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			sub := alice
			sub.SID = "sid-42"
			p := e.issue(t, sub)
			now := e.clock.Now()
			if want := now.Add(DefaultAccessTTL).Truncate(time.Second); !p.AccessExpiresAt.Equal(want) {
				t.Errorf("AccessExpiresAt = %v; want %v", p.AccessExpiresAt, want)
			}
			if want := now.Add(DefaultRefreshTTL); !p.RefreshExpiresAt.Equal(want) {
				t.Errorf("RefreshExpiresAt = %v; want %v", p.RefreshExpiresAt, want)
			}
			h := decodeSeg(t, segments(p.AccessToken)[0])
			if h["typ"] != "at+jwt" || h["alg"] != alg || h["kid"] != kidOfAlg[alg] {
				t.Fatalf("header = %v; want typ at+jwt, alg %s, kid %s", h, alg, kidOfAlg[alg])
			}
			body := decodeSeg(t, segments(p.AccessToken)[1])
			for _, claim := range []string{"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "sid", "email", "roles"} {
				if _, ok := body[claim]; !ok {
					t.Errorf("claim %s missing from %v", claim, body)
				}
			}
			jti, _ := base64.RawURLEncoding.DecodeString(body["jti"].(string))
			if len(jti) != 16 {
				t.Errorf("jti has %d bytes; want 16 (128 bits)", len(jti))
			}

			for _, pass := range []string{"miss", "hit"} {
				c, err := e.svc.VerifyAccess(p.AccessToken)
				if err != nil {
					t.Fatalf("%s: VerifyAccess: %v", pass, err)
				}
				if c.Subject != sub.UserID || c.ClientID != sub.ClientID || c.SID != "sid-42" || c.Email != sub.Email ||
					!slices.Equal(c.Roles, sub.Roles) || c.Issuer != DefaultIssuer || !slices.Equal(c.Audience, []string{DefaultAudience}) {
					t.Fatalf("%s: claims = %+v", pass, c)
				}
				pr := c.Principal(auth.SchemeBearer)
				if pr.UserID != sub.UserID || pr.TokenID != c.ID || pr.SID != "sid-42" || !pr.ExpiresAt.Equal(p.AccessExpiresAt) || pr.Scheme != auth.SchemeBearer {
					t.Fatalf("%s: principal = %+v", pass, pr)
				}
				c.Subject = "tampered" // the caller's copy: must not reach the cache
			}
		})
	}
}

func TestIssueGeneratesSIDAndChecksSubject(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	p := e.issue(t, alice)
	c, err := e.svc.VerifyAccess(p.AccessToken)
	if err != nil || len(c.SID) < 20 {
		t.Fatalf("VerifyAccess = %+v, %v; want a generated sid", c, err)
	}
	for _, sub := range []Subject{{ClientID: "web"}, {UserID: "u"}} {
		if _, err := e.svc.Issue(context.Background(), sub); err == nil {
			t.Errorf("Issue(%+v) succeeded; want an error", sub)
		}
	}
	if err := e.svc.RevokeFamily(context.Background(), "dead"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Issue(context.Background(), Subject{UserID: "u", ClientID: "web", SID: "dead"}); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("Issue for a revoked sid = %v; want ErrRevoked", err)
	}
}

func TestIssueAccessAudience(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	sub := alice
	sub.SID = "s"
	tok, exp, err := e.svc.IssueAccess(sub, time.Minute, "upstream-api")
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Minute).Truncate(time.Second); !exp.Equal(want) {
		t.Fatalf("exp = %v; want %v", exp, want)
	}
	if aud := decodeSeg(t, segments(tok)[1])["aud"].([]any); len(aud) != 1 || aud[0] != "upstream-api" {
		t.Fatalf("aud = %v", aud)
	}
	if _, err := e.svc.VerifyAccess(tok); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("a token for another audience verified here: %v", err)
	}
	if _, _, err := e.svc.IssueAccess(sub, 1000*time.Hour, ""); err == nil {
		t.Fatal("IssueAccess accepted a ttl longer than any revocation lasts")
	}
	tok, _, err = e.svc.IssueAccess(sub, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyAccess(tok); err != nil {
		t.Fatalf("IssueAccess with defaults: %v", err)
	}
}

func TestNewServiceConfig(t *testing.T) {
	ring := loadTestRing(t, AlgEdDSA)
	e := newEnv(t, AlgEdDSA)
	tests := []struct {
		name string
		cfg  Options
		ok   bool
	}{
		{name: "zero", cfg: Options{}, ok: true},
		{name: "default", cfg: DefaultOptions, ok: true},
		{name: "leeway too large", cfg: Options{Leeway: 2 * time.Minute}},
		{name: "negative leeway", cfg: Options{Leeway: -time.Second}},
		{name: "negative ttl", cfg: Options{AccessTTL: -time.Second}},
		{name: "negative max bytes", cfg: Options{MaxTokenBytes: -1}},
		{name: "negative cache", cfg: Options{CacheBytes: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewService(tc.cfg, ring, e.st, e.rev)
			if tc.ok != (err == nil) {
				t.Fatalf("NewService = %v, %v; want ok=%v", s, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			if tc.ok {
				c := s.Options()
				if c.Issuer != DefaultIssuer || c.Audience != DefaultAudience || c.AccessTTL != DefaultAccessTTL ||
					c.RefreshTTL != DefaultRefreshTTL || c.Leeway != DefaultLeeway || c.MaxTokenBytes != DefaultMaxTokenBytes {
					t.Fatalf("defaults not applied: %+v", c)
				}
			}
		})
	}
	if _, err := NewService(Options{}, nil, e.st, e.rev); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil ring: %v", err)
	}
}

// attacker is a key pair nobody trusts, served over HTTP to catch any fetch.
type attacker struct {
	key  ed25519.PrivateKey
	jwk  map[string]any
	srv  *httptest.Server
	hits atomic.Int64
}

func newAttacker(t *testing.T) *attacker {
	pub, priv, _ := ed25519.GenerateKey(nil)
	a := &attacker{key: priv}
	a.jwk = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": "evil", "alg": "EdDSA"}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(pub) + `","kid":"evil"}]}`))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func publicDER(t *testing.T, pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVerifyAccessAttacks(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	ring := e.ring
	edPriv := ring.Key("ed-1").signer
	ecPriv := ring.Key("ec-1").signer
	ecPub := ring.Key("ec-1").Public().(*ecdsa.PublicKey)
	edPub := ring.Key("ed-1").Public().(ed25519.PublicKey)
	rsaPub := ring.Key("rsa-1").Public().(*rsa.PublicKey)
	atk := newAttacker(t)
	stranger, err := NewEphemeralKeyRing(AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}

	with := func(mut func(c map[string]any)) map[string]any {
		c := e.claimsMap()
		mut(c)
		return c
	}
	valid := forge(t, hdr("EdDSA", "ed-1"), e.claimsMap(), jwt.SigningMethodEdDSA, edPriv)
	if _, err := e.svc.VerifyAccess(valid); err != nil {
		t.Fatalf("the baseline forged token must verify: %v", err)
	}
	now := e.clock.Now().Unix()
	vs := segments(valid)

	// Signature with its unused trailing bits set: same bytes to a lax decoder.
	sig := []byte(vs[2])
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	sig[len(sig)-1] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last^0b0011]
	nonCanonical := vs[0] + "." + vs[1] + "." + string(sig)

	revoked := forge(t, hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["jti"] = "revoked-jti" }), jwt.SigningMethodEdDSA, edPriv)
	if err := e.rev.RevokeJTI(ctx, "revoked-jti", e.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	refresh := e.issue(t, alice).RefreshToken

	hs := func(kid string, secret []byte) string {
		return forge(t, hdr("HS256", kid), e.claimsMap(), jwt.SigningMethodHS256, secret)
	}
	pemPub := func(pub any) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER(t, pub)})
	}
	ecPoint, _ := ecPub.Bytes()
	withHeader := func(extra map[string]any) map[string]any {
		h := hdr("EdDSA", "ed-1")
		for k, v := range extra {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}
	signEd := func(h map[string]any, c map[string]any) string {
		return forge(t, h, c, jwt.SigningMethodEdDSA, edPriv)
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{name: "alg none", token: forge(t, hdr("none", "ed-1"), e.claimsMap(), nil, nil), want: auth.ErrInvalid},
		{name: "alg None", token: forge(t, hdr("None", "ed-1"), e.claimsMap(), nil, nil), want: auth.ErrInvalid},
		{name: "alg NONE", token: forge(t, hdr("NONE", "ed-1"), e.claimsMap(), nil, nil), want: auth.ErrInvalid},
		{name: "alg nOnE", token: forge(t, hdr("nOnE", "ed-1"), e.claimsMap(), nil, nil), want: auth.ErrInvalid},
		{name: "alg none signed with jwt's none key", token: forge(t, hdr("none", "ed-1"), e.claimsMap(), jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), want: auth.ErrInvalid},
		{name: "stripped signature", token: vs[0] + "." + vs[1] + ".", want: auth.ErrInvalid},
		{name: "two segments", token: vs[0] + "." + vs[1], want: auth.ErrInvalid},
		{name: "HS256 keyed with Ed25519 public key bytes", token: hs("ed-1", edPub), want: auth.ErrInvalid},
		{name: "HS256 keyed with Ed25519 public PEM", token: hs("ed-1", pemPub(edPub)), want: auth.ErrInvalid},
		{name: "HS256 keyed with EC public point", token: hs("ec-1", ecPoint), want: auth.ErrInvalid},
		{name: "HS256 keyed with EC public PEM", token: hs("ec-1", pemPub(ecPub)), want: auth.ErrInvalid},
		{name: "HS256 keyed with RSA public DER", token: hs("rsa-1", publicDER(t, rsaPub)), want: auth.ErrInvalid},
		{name: "HS256 keyed with RSA public PEM", token: hs("rsa-1", pemPub(rsaPub)), want: auth.ErrInvalid},
		{name: "ES256 signature under the Ed25519 kid", token: forge(t, hdr("ES256", "ed-1"), e.claimsMap(), jwt.SigningMethodES256, ecPriv), want: auth.ErrInvalid},
		{name: "kid path traversal", token: signEd(hdr("EdDSA", "../../etc/passwd"), e.claimsMap()), want: auth.ErrInvalid},
		{name: "kid injection", token: signEd(hdr("EdDSA", "' OR 1=1"), e.claimsMap()), want: auth.ErrInvalid},
		{name: "kid empty", token: signEd(hdr("EdDSA", ""), e.claimsMap()), want: auth.ErrInvalid},
		{name: "kid missing", token: signEd(withHeader(map[string]any{"kid": nil}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "kid not a string", token: signEd(withHeader(map[string]any{"kid": 1}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "jku to attacker, attacker kid", token: forge(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jku": atk.srv.URL}, e.claimsMap(), jwt.SigningMethodEdDSA, atk.key), want: auth.ErrInvalid},
		{name: "jku to attacker, our kid", token: forge(t, withHeader(map[string]any{"jku": atk.srv.URL}), e.claimsMap(), jwt.SigningMethodEdDSA, atk.key), want: auth.ErrInvalid},
		{name: "x5u to attacker", token: forge(t, withHeader(map[string]any{"x5u": atk.srv.URL + "/cert.pem"}), e.claimsMap(), jwt.SigningMethodEdDSA, atk.key), want: auth.ErrInvalid},
		{name: "embedded jwk, attacker kid", token: forge(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "evil", "jwk": atk.jwk}, e.claimsMap(), jwt.SigningMethodEdDSA, atk.key), want: auth.ErrInvalid},
		{name: "embedded jwk, our kid", token: forge(t, withHeader(map[string]any{"jwk": atk.jwk}), e.claimsMap(), jwt.SigningMethodEdDSA, atk.key), want: auth.ErrInvalid},
		{name: "ES256 zero signature", token: forge(t, hdr("ES256", "ec-1"), e.claimsMap(), nil, nil) + b64(make([]byte, 64)), want: auth.ErrInvalid},
		{name: "ES256 short signature", token: forge(t, hdr("ES256", "ec-1"), e.claimsMap(), nil, nil) + b64(make([]byte, 2)), want: auth.ErrInvalid},
		{name: "expired", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["iat"] = now - 3600; c["exp"] = now - 60 })), want: auth.ErrExpired},
		{name: "expired and wrong audience", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["exp"] = now - 60; c["aud"] = "other" })), want: auth.ErrInvalid},
		{name: "nbf in the future", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["nbf"] = now + 300 })), want: auth.ErrInvalid},
		{name: "iat in the future", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["iat"] = now + 300 })), want: auth.ErrInvalid},
		{name: "missing exp", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "exp") })), want: auth.ErrInvalid},
		{name: "exp null", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["exp"] = nil })), want: auth.ErrInvalid},
		{name: "exp as a string", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["exp"] = "9999999999" })), want: auth.ErrInvalid},
		{name: "iat as a string", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["iat"] = "1" })), want: auth.ErrInvalid},
		{name: "exp as an object", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["exp"] = map[string]any{} })), want: auth.ErrInvalid},
		{name: "wrong aud", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["aud"] = "someone-else" })), want: auth.ErrInvalid},
		{name: "missing aud", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "aud") })), want: auth.ErrInvalid},
		{name: "wrong iss", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { c["iss"] = "https://evil.example" })), want: auth.ErrInvalid},
		{name: "missing iss", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "iss") })), want: auth.ErrInvalid},
		{name: "missing sub", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "sub") })), want: auth.ErrInvalid},
		{name: "missing client_id", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "client_id") })), want: auth.ErrInvalid},
		{name: "missing sid", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "sid") })), want: auth.ErrInvalid},
		{name: "missing jti", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "jti") })), want: auth.ErrInvalid},
		{name: "missing iat", token: signEd(hdr("EdDSA", "ed-1"), with(func(c map[string]any) { delete(c, "iat") })), want: auth.ErrInvalid},
		{name: "typ JWT", token: signEd(withHeader(map[string]any{"typ": "JWT"}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "typ missing", token: signEd(withHeader(map[string]any{"typ": nil}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "unknown crit", token: signEd(withHeader(map[string]any{"crit": []string{"exp"}, "exp": 1}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "empty crit", token: signEd(withHeader(map[string]any{"crit": []string{}}), e.claimsMap()), want: auth.ErrInvalid},
		{name: "non-canonical base64 signature", token: nonCanonical, want: auth.ErrInvalid},
		{name: "1 MB token", token: valid + strings.Repeat("A", 1<<20), want: auth.ErrInvalid},
		{name: "empty", token: "", want: auth.ErrInvalid},
		{name: "garbage", token: "not a token", want: auth.ErrInvalid},
		{name: "dots only", token: "..", want: auth.ErrInvalid},
		{name: "four segments", token: valid + ".x", want: auth.ErrInvalid},
		{name: "non-JSON header", token: b64([]byte("not json")) + "." + vs[1] + "." + vs[2], want: auth.ErrInvalid},
		{name: "non-JSON claims", token: vs[0] + "." + b64([]byte("[1,2")) + "." + vs[2], want: auth.ErrInvalid},
		{name: "claims are an array", token: signEd(hdr("EdDSA", "ed-1"), nil), want: auth.ErrInvalid},
		{name: "padded base64", token: vs[0] + "==." + vs[1] + "." + vs[2], want: auth.ErrInvalid},
		{name: "whitespace around", token: " " + valid + " ", want: auth.ErrInvalid},
		{name: "revoked jti", token: revoked, want: auth.ErrRevoked},
		{name: "signed by a key not in the ring, same kid", token: forge(t, hdr("EdDSA", "ed-1"), e.claimsMap(), jwt.SigningMethodEdDSA, stranger.SigningKey().signer), want: auth.ErrInvalid},
		{name: "signed by a key not in the ring, its kid", token: forge(t, hdr("EdDSA", stranger.SigningKID()), e.claimsMap(), jwt.SigningMethodEdDSA, stranger.SigningKey().signer), want: auth.ErrInvalid},
		{name: "claims swapped from another token", token: vs[0] + "." + segments(revoked)[1] + "." + vs[2], want: auth.ErrInvalid},
		{name: "refresh token as access token", token: refresh, want: auth.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, pass := range []string{"first", "again"} { // a second pass must not hit a cache
				c, err := e.svc.VerifyAccess(tc.token)
				if c != nil || !errors.Is(err, tc.want) || !oneSentinel(err) {
					t.Fatalf("%s: VerifyAccess = %+v, %v; want only %v", pass, c, err, tc.want)
				}
			}
		})
	}
	if n := atk.hits.Load(); n != 0 {
		t.Fatalf("the attacker's server received %d requests; a verifier must never fetch keys", n)
	}
}

func TestVerifyAccessLeewayAndAlgCase(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	edPriv := e.ring.Key("ed-1").signer
	now := e.clock.Now().Unix()
	tests := []struct {
		name   string
		header map[string]any
		mut    func(c map[string]any)
		want   error
	}{
		{name: "exp within leeway", header: hdr("EdDSA", "ed-1"), mut: func(c map[string]any) { c["exp"] = now - 2 }},
		{name: "iat within leeway", header: hdr("EdDSA", "ed-1"), mut: func(c map[string]any) { c["iat"] = now + 2 }},
		{name: "aud as a string", header: hdr("EdDSA", "ed-1"), mut: func(c map[string]any) { c["aud"] = DefaultAudience }},
		{name: "typ application/at+jwt", header: map[string]any{"alg": "EdDSA", "kid": "ed-1", "typ": "application/AT+JWT"}},
		{name: "typ AT+JWT", header: map[string]any{"alg": "EdDSA", "kid": "ed-1", "typ": "AT+JWT"}},
		{name: "alg eddsa lower case", header: hdr("eddsa", "ed-1"), want: auth.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.claimsMap()
			if tc.mut != nil {
				tc.mut(c)
			}
			_, err := e.svc.VerifyAccess(forge(t, tc.header, c, jwt.SigningMethodEdDSA, edPriv))
			wantSentinel(t, err, tc.want)
		})
	}
}

func TestVerifyAccessMaxTokenBytes(t *testing.T) {
	e := newEnv(t, AlgEdDSA, func(c *Options) { c.MaxTokenBytes = 100 })
	p := e.issue(t, alice)
	if _, err := e.svc.VerifyAccess(p.AccessToken); !errors.Is(err, errTooLong) {
		t.Fatalf("a %d-byte token with MaxTokenBytes 100: %v; want errTooLong", len(p.AccessToken), err)
	}
}

func TestVerifyAccessCache(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	ctx := context.Background()
	p := e.issue(t, alice)
	if _, err := e.svc.VerifyAccess(p.AccessToken); err != nil {
		t.Fatal(err)
	}
	if e.svc.cache.len() != 1 {
		t.Fatalf("cache holds %d entries after one verification; want 1", e.svc.cache.len())
	}
	// A hit must still see revocations.
	c, err := e.svc.VerifyAccess(p.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.rev.RevokeJTI(ctx, c.ID, c.ExpiresAt.Time); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VerifyAccess(p.AccessToken); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("cached then revoked token: %v; want ErrRevoked", err)
	}

	// A hit must not outlive exp.
	p2 := e.issue(t, alice)
	if _, err := e.svc.VerifyAccess(p2.AccessToken); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(DefaultAccessTTL + DefaultLeeway + time.Second)
	if _, err := e.svc.VerifyAccess(p2.AccessToken); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("cached token past exp: %v; want ErrExpired", err)
	}

	// A new ring forgets what the old one verified.
	e3 := newEnv(t, AlgEdDSA)
	p3 := e3.issue(t, alice)
	if _, err := e3.svc.VerifyAccess(p3.AccessToken); err != nil {
		t.Fatal(err)
	}
	other, _ := NewEphemeralKeyRing(AlgEdDSA)
	e3.svc.SetRing(other)
	if _, err := e3.svc.VerifyAccess(p3.AccessToken); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("token of a key no longer in the ring: %v; want ErrInvalid", err)
	}
}

// putAt and getAt are the cache's put and get with a time.Time and the
// claims as VerifyAccess answers them, no leeway.
func putAt(c *verifiedCache, raw string, cl *Claims, now time.Time) {
	c.put(raw, cl, auth.SchemeBearer, 0, c.generation(), now.UnixNano())
}

func getAt(c *verifiedCache, raw string, now time.Time) (*Claims, bool) {
	e, ok := c.get(raw, now.UnixNano())
	if !ok {
		return nil, false
	}
	return e.claims(DefaultIssuer), true
}

// cacheClaims is a claim set shaped like the ones we issue, issued early
// enough to be valid at the tests' now whatever exp they choose.
func cacheClaims(i int, exp time.Time) *Claims {
	return &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: DefaultIssuer, Subject: fmt.Sprintf("u-%07d", i), Audience: jwt.ClaimStrings{DefaultAudience},
			ExpiresAt: &jwt.NumericDate{Time: exp}, IssuedAt: &jwt.NumericDate{Time: exp.Add(-2 * time.Hour)}, ID: fmt.Sprintf("jti-%018d", i),
		},
		ClientID: "mobile", SID: fmt.Sprintf("sid-%018d", i), Email: fmt.Sprintf("user%07d@example.com", i), Roles: []string{"user"},
	}
}

// cacheToken is a token-shaped string of about the size we issue. Its
// signature differs with i, as a real one does (the index hashes it).
func cacheToken(i int) string {
	return "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEiLCJ0eXAiOiJhdCtqd3QifQ." + fmt.Sprintf("%0340d", i) + "." + strings.Repeat("s", 66) + fmt.Sprintf("%020d", i)
}

// The cache is bounded by bytes, whatever the number of tokens (issue 13:
// a count bound fell off a cliff beyond 10,000 live tokens).
func TestVerifiedCacheBounded(t *testing.T) {
	tests := []struct {
		name    string
		budget  int64
		puts    int
		wantAll bool // every token fits
	}{
		{name: "tiny budget, one shard", budget: 4 << 10, puts: 500},
		{name: "all fit", budget: 4 << 20, puts: 1000, wantAll: true},
		{name: "overflow", budget: 256 << 10, puts: 5000},
		{name: "many shards", budget: 4 << 20, puts: 20000},
	}
	now := time.Now()
	exp := now.Add(time.Hour)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newVerifiedCache(tc.budget)
			for i := range tc.puts {
				putAt(c, cacheToken(i), cacheClaims(i, exp), now)
			}
			if b := c.bytes(); b > tc.budget || b <= 0 {
				t.Fatalf("cache accounts %d bytes; want 1..%d", b, tc.budget)
			}
			if n := c.len(); tc.wantAll && n != tc.puts {
				t.Fatalf("cache holds %d of %d tokens that fit its budget", n, tc.puts)
			}
			last := tc.puts - 1
			got, ok := getAt(c, cacheToken(last), now)
			if !ok {
				t.Fatal("the newest entry was evicted")
			}
			if want := cacheClaims(last, exp); got.Subject != want.Subject || got.Email != want.Email || got.SID != want.SID ||
				got.ID != want.ID || !got.ExpiresAt.Equal(exp) || got.Audience[0] != DefaultAudience || got.Roles[0] != "user" {
				t.Fatalf("cached claims %+v; want %+v", got, want)
			}
			c.purge()
			if c.len() != 0 || c.bytes() != 0 {
				t.Fatal("purge left entries")
			}
		})
	}
}

// A hit is the exact token that was verified: a token that differs in one
// byte, is a prefix, or is longer, misses, even in the header segment,
// which entries share.
func TestVerifiedCacheExactToken(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(1 << 20)
	tok := cacheToken(1)
	putAt(c, tok, cacheClaims(1, now.Add(time.Hour)), now)
	flip := func(i int) string { b := []byte(tok); b[i] ^= 1; return string(b) }
	for name, other := range map[string]string{
		"header byte": flip(3), "payload byte": flip(70), "last signature byte": flip(len(tok) - 1),
		"prefix": tok[:len(tok)-1], "longer": tok + "s", "other token": cacheToken(2),
	} {
		if _, ok := getAt(c, other, now); ok {
			t.Errorf("%s: hit for a token that was never verified", name)
		}
	}
	if _, ok := getAt(c, tok, now); !ok {
		t.Fatal("the verified token missed")
	}
}

// put copies what it keeps: the token may alias a request buffer that is
// reused for the next request.
func TestVerifiedCacheCopiesToken(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(1 << 20)
	buf := []byte(cacheToken(7))
	want := string(buf)
	putAt(c, unsafeString(buf), cacheClaims(7, now.Add(time.Hour)), now)
	for i := range buf {
		buf[i] = 'x'
	}
	if _, ok := getAt(c, want, now); !ok {
		t.Fatal("the cache lost the token when the caller's buffer changed")
	}
}

// CLOCK eviction keeps tokens in use: with more tokens than fit, the ones
// hit between insertions survive a stream of one-off tokens, which FIFO
// would have evicted.
func TestVerifiedCacheKeepsHotTokens(t *testing.T) {
	now := time.Now()
	exp := now.Add(time.Hour)
	c := newVerifiedCache(64 << 10) // one shard, about 80 tokens
	const hot = 20
	for i := range hot {
		putAt(c, cacheToken(i), cacheClaims(i, exp), now)
	}
	for i := hot; i < hot+2000; i++ {
		putAt(c, cacheToken(i), cacheClaims(i, exp), now)
		for h := range hot {
			if _, ok := getAt(c, cacheToken(h), now); !ok {
				t.Fatalf("hot token %d evicted after %d one-off tokens", h, i-hot+1)
			}
		}
	}
}

// Expired entries go before live ones, referenced or not.
func TestVerifiedCacheEvictsExpiredFirst(t *testing.T) {
	now := time.Now()
	c := newVerifiedCache(64 << 10)
	putAt(c, cacheToken(0), cacheClaims(0, now.Add(time.Hour)), now)
	n := 1
	for c.bytes()+entryOverhead+600 < 64<<10 {
		putAt(c, cacheToken(n), cacheClaims(n, now.Add(time.Second)), now)
		n++
	}
	later := now.Add(time.Minute)
	if _, ok := getAt(c, cacheToken(1), later); ok {
		t.Fatal("an expired entry was a hit")
	}
	getAt(c, cacheToken(0), later) // referenced, live
	for i := n; i < n+10; i++ {
		putAt(c, cacheToken(i), cacheClaims(i, later.Add(time.Hour)), later)
	}
	if _, ok := getAt(c, cacheToken(0), later); !ok {
		t.Fatal("a live entry was evicted while expired ones remained")
	}
}

func TestEqualConstantTime(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "empty", want: true},
		{name: "short equal", a: "abc", b: "abc", want: true},
		{name: "short differ", a: "abc", b: "abd"},
		{name: "long equal", a: strings.Repeat("ab", 50), b: strings.Repeat("ab", 50), want: true},
		{name: "long differ in a word", a: strings.Repeat("a", 40), b: strings.Repeat("a", 20) + "b" + strings.Repeat("a", 19)},
		{name: "long differ in the tail", a: strings.Repeat("a", 43), b: strings.Repeat("a", 42) + "b"},
		{name: "lengths", a: "abc", b: "abcd"},
	}
	// Every length through the 32-, 8- and 1-byte loops, every position.
	for n := 0; n <= 100; n++ {
		a := strings.Repeat("x", n)
		if !equalConstantTime(a, strings.Clone(a)) {
			t.Fatalf("length %d: equal strings differ", n)
		}
		for i := range n {
			b := []byte(a)
			b[i] ^= 0x80
			if equalConstantTime(a, string(b)) {
				t.Fatalf("length %d: a difference at %d is not seen", n, i)
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := equalConstantTime(tc.a, tc.b); got != tc.want {
				t.Fatalf("equalConstantTime(%q, %q) = %v; want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestVerifyAccessConcurrent(t *testing.T) {
	e := newEnv(t, AlgEdDSA, withCache(4<<10))
	toks := make([]string, 16)
	for i := range toks {
		toks[i] = e.issue(t, alice).AccessToken
	}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, err := e.svc.VerifyAccess(toks[(g+i)%len(toks)]); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d concurrent verifications failed", n)
	}
}

// The key lookup is the second line behind WithValidMethods: it holds every
// token to the algorithm of the key its kid names, even where the first line
// (the ring's algorithms) would let it through.
func TestLookupKey(t *testing.T) {
	e := newEnv(t, AlgEdDSA)
	rs := e.svc.state.Load()
	tests := []struct {
		name   string
		method jwt.SigningMethod
		header map[string]any
		want   error
	}{
		{name: "match", method: jwt.SigningMethodEdDSA, header: hdr("EdDSA", "ed-1")},
		{name: "HS256 on the Ed25519 key", method: jwt.SigningMethodHS256, header: hdr("HS256", "ed-1"), want: errAlgMismatch},
		{name: "ES256 on the RSA key", method: jwt.SigningMethodES256, header: hdr("ES256", "rsa-1"), want: errAlgMismatch},
		{name: "RS256 on the HMAC key", method: jwt.SigningMethodRS256, header: hdr("RS256", "hs-1"), want: errAlgMismatch},
		{name: "no kid", method: jwt.SigningMethodEdDSA, header: map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, want: errNoKID},
		{name: "unknown kid", method: jwt.SigningMethodEdDSA, header: hdr("EdDSA", "nope"), want: errUnknownKID},
		{name: "typ", method: jwt.SigningMethodEdDSA, header: map[string]any{"alg": "EdDSA", "kid": "ed-1", "typ": "jwt"}, want: errBadTyp},
		{name: "crit", method: jwt.SigningMethodEdDSA, header: map[string]any{"alg": "EdDSA", "kid": "ed-1", "typ": "at+jwt", "crit": nil}, want: errCrit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := rs.lookupKey(&jwt.Token{Method: tc.method, Header: tc.header})
			if !errors.Is(err, tc.want) || (tc.want == nil) != (key != nil) {
				t.Fatalf("lookupKey = %v, %v; want %v", key, err, tc.want)
			}
		})
	}
}
