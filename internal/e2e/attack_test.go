package e2e

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// attackKeys makes a key directory with an Ed25519 signing key (k1) and an
// ES256 key (a-ec) and returns the directory and the Ed25519 private key, so
// the test can sign tokens whose only flaw is the one under test.
func attackKeys(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range [][2]string{{"a-ec", "ES256"}, {"k1", "EdDSA"}} {
		if out, err := exec.Command(binary, "keys", "generate", "--dir", dir, "--kid", k[0], "--alg", k[1]).CombinedOutput(); err != nil {
			t.Fatalf("keys generate: %v\n%s", err, out)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "k1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return dir, k.(ed25519.PrivateKey)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// sign signs header.claims with key under method (nil method: no signature).
func sign(t *testing.T, header, claims map[string]any, method jwt.SigningMethod, key any) string {
	t.Helper()
	unsigned := segment(t, header) + "." + segment(t, claims)
	if method == nil {
		return unsigned + "."
	}
	sig, err := method.Sign(unsigned, key)
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + b64(sig)
}

func TestAttackSuite(t *testing.T) {
	t.Parallel()
	dir, priv := attackKeys(t)
	in := start(t, "TOKENSHIFT_JWT_KEYS_DIR="+dir, "TOKENSHIFT_RATELIMIT_PER_ACCOUNT=3")
	issuer := "http://localhost:8080"

	lr := in.login(t, aliceEmail, alicePass, "mobile").json(t)
	valid := lr["access_token"].(string)
	refresh := lr["refresh_token"].(string)
	var me map[string]any
	if r := in.do(t, req{path: "/auth/me", bearer: valid}); r.status != 200 {
		t.Fatalf("valid token refused: %s", r.body)
	} else {
		me = r.json(t)
	}

	now := time.Now().Unix()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{"iss": issuer, "aud": "tokenshift", "sub": me["user_id"], "client_id": "mobile",
			"sid": me["sid"], "jti": "attack-" + b64([]byte(time.Now().String())), "iat": now, "exp": now + 600,
			"email": aliceEmail, "roles": []string{"admin"}}
		if mut != nil {
			mut(c)
		}
		return c
	}
	hdr := func(mut func(map[string]any)) map[string]any {
		h := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}
		if mut != nil {
			mut(h)
		}
		return h
	}
	good := func(h, c map[string]any) string { return sign(t, h, c, jwt.SigningMethodEdDSA, priv) }
	// Sanity: the forging helper makes tokens the server accepts, so every
	// refusal below is caused by the one flaw each case introduces.
	if r := in.do(t, req{path: "/auth/me", bearer: good(hdr(nil), claims(nil))}); r.status != 200 {
		t.Fatalf("a correctly forged token must pass, got %d %s", r.status, r.body)
	}

	// An attacker's server: any request to it means we fetched a key we must not.
	var fetched atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fetched.Add(1) }))
	defer evil.Close()
	_, atkPriv, _ := ed25519.GenerateKey(nil)
	atkPub := atkPriv.Public().(ed25519.PublicKey)
	atkJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(atkPub), "kid": "k1"}

	jwks := in.do(t, req{path: "/.well-known/jwks.json"})
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.Unmarshal(jwks.body, &set)
	var ourPub []byte
	for _, k := range set.Keys {
		if k["kid"] == "k1" {
			ourPub, _ = base64.RawURLEncoding.DecodeString(k["x"].(string))
		}
	}
	if len(ourPub) != ed25519.PublicKeySize {
		t.Fatalf("JWKS lacks k1: %s", jwks.body)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(ed25519.PublicKey(ourPub))
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	parts := strings.Split(valid, ".")
	// Ed25519 signatures are 64 bytes: the last base64url char carries 4 unused
	// bits; setting one gives another spelling of the same bytes.
	last := parts[2][len(parts[2])-1]
	alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last) ^ 1
	nonCanonical := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[alt])

	cases := []struct {
		name  string
		token string
	}{
		{"alg none", sign(t, hdr(func(h map[string]any) { h["alg"] = "none" }), claims(nil), nil, nil)},
		{"alg None", sign(t, hdr(func(h map[string]any) { h["alg"] = "None" }), claims(nil), nil, nil)},
		{"alg NONE", sign(t, hdr(func(h map[string]any) { h["alg"] = "NONE" }), claims(nil), nil, nil)},
		{"alg nOnE", sign(t, hdr(func(h map[string]any) { h["alg"] = "nOnE" }), claims(nil), nil, nil)},
		{"stripped signature", parts[0] + "." + parts[1] + "."},
		{"HS256 keyed with our public key bytes", sign(t, hdr(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), jwt.SigningMethodHS256, ourPub)},
		{"HS256 keyed with our public key PEM", sign(t, hdr(func(h map[string]any) { h["alg"] = "HS256" }), claims(nil), jwt.SigningMethodHS256, pubPEM)},
		{"kid path traversal", good(hdr(func(h map[string]any) { h["kid"] = "../../../../etc/passwd" }), claims(nil))},
		{"kid path traversal to our key file", good(hdr(func(h map[string]any) { h["kid"] = "../" + filepath.Base(dir) + "/k1" }), claims(nil))},
		{"kid injection", good(hdr(func(h map[string]any) { h["kid"] = "k1' OR '1'='1" }), claims(nil))},
		{"jku to attacker", sign(t, hdr(func(h map[string]any) { h["jku"] = evil.URL + "/jwks.json"; h["kid"] = "evil" }), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
		{"jku to attacker with our kid", sign(t, hdr(func(h map[string]any) { h["jku"] = evil.URL + "/jwks.json" }), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
		{"x5u to attacker with an unknown kid", sign(t, hdr(func(h map[string]any) { h["x5u"] = evil.URL + "/cert.pem"; h["kid"] = "evil" }), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
		{"x5u to attacker", sign(t, hdr(func(h map[string]any) { h["x5u"] = evil.URL + "/cert.pem" }), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
		{"embedded jwk", sign(t, hdr(func(h map[string]any) { h["jwk"] = atkJWK }), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
		{"ECDSA zero signature", sign(t, map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": "a-ec"}, claims(nil), nil, nil) + b64(make([]byte, 64))},
		{"expired", good(hdr(nil), claims(func(c map[string]any) { c["iat"] = now - 7200; c["exp"] = now - 3600 }))},
		{"nbf in the future", good(hdr(nil), claims(func(c map[string]any) { c["nbf"] = now + 3600 }))},
		{"missing exp", good(hdr(nil), claims(func(c map[string]any) { delete(c, "exp") }))},
		{"exp as string", good(hdr(nil), claims(func(c map[string]any) { c["exp"] = "9999999999" }))},
		{"wrong aud", good(hdr(nil), claims(func(c map[string]any) { c["aud"] = "another-api" }))},
		{"missing aud", good(hdr(nil), claims(func(c map[string]any) { delete(c, "aud") }))},
		{"wrong iss", good(hdr(nil), claims(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{"missing iss", good(hdr(nil), claims(func(c map[string]any) { delete(c, "iss") }))},
		{"wrong typ (plain JWT)", good(hdr(func(h map[string]any) { h["typ"] = "JWT" }), claims(nil))},
		{"unknown crit", good(hdr(func(h map[string]any) { h["crit"] = []string{"x-custom"}; h["x-custom"] = true }), claims(nil))},
		{"non-canonical base64 signature", nonCanonical},
		{"garbage", "garbage"},
		{"non-JSON header", b64([]byte("{not json")) + "." + parts[1] + "." + parts[2]},
		{"non-JSON claims", parts[0] + "." + b64([]byte("not json")) + "." + parts[2]},
		{"refresh token as access token", refresh},
		// A valid signature (a stolen key, a bug) still cannot mint tokens
		// that outlive access_ttl, or name a client nobody registered.
		{"lifetime of ten years", good(hdr(nil), claims(func(c map[string]any) { c["exp"] = now + 10*365*24*3600 }))},
		{"lifetime beyond access_ttl plus leeway", good(hdr(nil), claims(func(c map[string]any) { c["iat"] = now - 1000; c["exp"] = now + 600 }))},
		{"unregistered client_id", good(hdr(nil), claims(func(c map[string]any) { c["client_id"] = "evil-client" }))},
		{"token signed by an unknown key", sign(t, hdr(nil), claims(nil), jwt.SigningMethodEdDSA, atkPriv)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := in.do(t, req{path: "/auth/me", bearer: tc.token})
			expectProblem(t, r, 401, "invalid_token")
			if !strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no WWW-Authenticate: %v", r.header)
			}
			// The same token in the JWT cookie must fail the same way.
			c := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_access", Value: tc.token}}})
			if c.status != 401 {
				t.Errorf("as a cookie: status %d %s", c.status, c.body)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the server fetched the attacker's URL %d times", n)
	}

	t.Run("oversized token", func(t *testing.T) {
		// The header buffer refuses it before any handler (docs/security.md);
		// TestOversizedCredentials covers the sizes between.
		expectProblem(t, in.hugeHeader(t, "Authorization: Bearer "+valid+strings.Repeat("A", 1<<20)), 431, "invalid_request")
	})
	t.Run("access token as refresh token", func(t *testing.T) {
		expectProblem(t, in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": valid}}), 401, "invalid_token")
	})
	t.Run("revoked jti", func(t *testing.T) {
		// Two access tokens of one login (sid): revoking one jti (RFC 7009)
		// kills that token only.
		lr := in.login(t, aliceEmail, alicePass, "mobile").json(t)
		tok := lr["access_token"].(string)
		rr := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": lr["refresh_token"].(string)}}).json(t)
		sibling := rr["access_token"].(string)
		if rr["sid"] != lr["sid"] {
			t.Fatalf("refresh changed the sid: %v vs %v", rr["sid"], lr["sid"])
		}
		if r := in.do(t, req{method: "POST", path: "/auth/revoke", form: url.Values{"token": {tok}, "token_type_hint": {"access_token"}}}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		expectProblem(t, in.do(t, req{path: "/auth/me", bearer: tok}), 401, "invalid_token")
		if r := in.do(t, req{path: "/auth/me", bearer: sibling}); r.status != 200 {
			t.Fatalf("another token of the same sid was revoked too: %d %s", r.status, r.body)
		}
		if r := in.do(t, req{method: "POST", path: "/auth/refresh", json: map[string]string{"refresh_token": rr["refresh_token"].(string)}}); r.status != 200 {
			t.Fatalf("the login's refresh token died with one jti: %d %s", r.status, r.body)
		}
	})
	t.Run("revoked sid after logout", func(t *testing.T) {
		tok := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
		if r := in.do(t, req{method: "POST", path: "/auth/logout", bearer: tok}); r.status != 204 {
			t.Fatal(r.status)
		}
		expectProblem(t, in.do(t, req{path: "/auth/me", bearer: tok}), 401, "invalid_token")
	})
	t.Run("brute force beyond the limit", func(t *testing.T) {
		var last *resp
		for i := 0; i < 5; i++ {
			last = in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": opsEmail, "password": "guess"}})
		}
		expectProblem(t, last, 429, "rate_limited")
		if last.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// The right password does not get through while limited.
		expectProblem(t, in.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": opsEmail, "password": opsPass}}), 429, "rate_limited")
	})
	t.Run("brute force beyond the per-IP limit", func(t *testing.T) {
		ipIn := start(t, "TOKENSHIFT_RATELIMIT_PER_IP=3", "TOKENSHIFT_RATELIMIT_PER_ACCOUNT=100")
		for i := range 3 {
			expectProblem(t, ipIn.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": fmt.Sprintf("spray%d@example.com", i), "password": "guess"}}), 401, "invalid_credentials")
		}
		last := ipIn.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"email": aliceEmail, "password": alicePass}})
		expectProblem(t, last, 429, "rate_limited")
		if last.header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	})
	// Nothing above may have been a 500 or a panic.
	for _, bad := range []string{"panic", "request failed"} {
		if strings.Contains(in.logs.String(), bad) {
			t.Fatalf("server log contains %q:\n%s", bad, in.logs.String())
		}
	}
}

func TestKeyRemovedFromRing(t *testing.T) {
	t.Parallel()
	dir, _ := attackKeys(t)
	in := start(t, "TOKENSHIFT_JWT_KEYS_DIR="+dir)
	tok := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	// Rotate k1 out: a new signing key, the old file gone, restart.
	if out, err := exec.Command(binary, "keys", "generate", "--dir", dir, "--kid", "k2").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "k1.pem")); err != nil {
		t.Fatal(err)
	}
	in.restart()
	expectProblem(t, in.do(t, req{path: "/auth/me", bearer: tok}), 401, "invalid_token")
}

func TestSessionAttacks(t *testing.T) {
	t.Parallel()
	in := start(t, "TOKENSHIFT_SESSION_IDLE_TIMEOUT=1s", "TOKENSHIFT_SESSION_ABSOLUTE_TIMEOUT=3s")

	t.Run("forged id with a real sid", func(t *testing.T) {
		c := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
		sid := strings.SplitN(c.Value, ".", 2)[0]
		expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{{Name: "ts_session", Value: sid + "." + b64(make([]byte, 32))}}}), 401, "invalid_session")
		// The genuine cookie still works: a forgery does not destroy it.
		if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{c}}); r.status != 200 {
			t.Fatalf("genuine cookie after forgery: %d", r.status)
		}
	})
	t.Run("replay after idle timeout", func(t *testing.T) {
		c := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
		time.Sleep(1500 * time.Millisecond)
		expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{c}}), 401, "invalid_session")
	})
	t.Run("replay after absolute timeout while active", func(t *testing.T) {
		c := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
		deadline := time.Now().Add(4 * time.Second)
		for time.Now().Before(deadline) {
			r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{c}})
			if r.status == 401 {
				expectProblem(t, r, 401, "invalid_session")
				return
			}
			time.Sleep(400 * time.Millisecond)
		}
		t.Fatal("a constantly used session outlived its absolute timeout")
	})
	t.Run("session id never read from the URL", func(t *testing.T) {
		c := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
		expectProblem(t, in.do(t, req{path: "/auth/me?ts_session=" + c.Value}), 401, "unauthenticated")
	})
}

// CSRF on cookie-authenticated unsafe requests, for both cookie schemes:
// the session cookie (web) and the JWT access cookie (spa).
func TestCSRFAttacks(t *testing.T) {
	t.Parallel()
	in := start(t)
	for _, scheme := range []struct {
		name, client, cookie string
		unsafe               []string // unsafe endpoints this cookie authenticates
	}{
		{name: "session", client: "web", cookie: "ts_session", unsafe: []string{"/auth/logout", "/auth/logout?all=true", "/auth/exchange"}},
		{name: "jwt_cookie", client: "spa", cookie: "ts_access", unsafe: []string{"/auth/logout", "/auth/logout?all=true", "/auth/revoke"}},
	} {
		t.Run(scheme.name, func(t *testing.T) {
			victim := in.login(t, aliceEmail, alicePass, scheme.client)
			vc := victim.cookie(scheme.cookie)
			if vc == nil {
				t.Fatalf("no %s cookie: %+v", scheme.cookie, victim.cookies)
			}
			vtoken := victim.json(t)["csrf_token"].(string)
			attacker := in.login(t, opsEmail, opsPass, scheme.client).json(t)["csrf_token"].(string)
			if me := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{vc}}).json(t); me["scheme"] != scheme.name {
				t.Fatalf("the victim's cookie authenticates as %v, want %s", me["scheme"], scheme.name)
			}
			cases := []struct {
				name    string
				header  map[string]string
				cookies []*http.Cookie
			}{
				{name: "no token", cookies: []*http.Cookie{vc}},
				{name: "another session's token", cookies: []*http.Cookie{vc}, header: map[string]string{"X-CSRF-Token": attacker}},
				{name: "cookie injection (double submit)", cookies: []*http.Cookie{vc, {Name: "csrf_token", Value: "injected"}, {Name: "_csrf", Value: "injected"}}, header: map[string]string{"X-CSRF-Token": "injected"}},
				{name: "foreign origin with the right token", cookies: []*http.Cookie{vc}, header: map[string]string{"X-CSRF-Token": vtoken, "Origin": "https://evil.example"}},
				{name: "null origin", cookies: []*http.Cookie{vc}, header: map[string]string{"X-CSRF-Token": vtoken, "Origin": "null"}},
				{name: "cross-site fetch metadata", cookies: []*http.Cookie{vc}, header: map[string]string{"X-CSRF-Token": vtoken, "Sec-Fetch-Site": "cross-site"}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					for _, path := range scheme.unsafe {
						expectProblem(t, in.do(t, req{method: "POST", path: path, cookies: tc.cookies, header: tc.header}), 403, "csrf_failed")
					}
				})
			}
			// After all that the victim is still logged in, and the right token works.
			if r := in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{vc}}); r.status != 200 {
				t.Fatalf("victim logged out by a CSRF attempt: %d", r.status)
			}
			if r := in.do(t, req{method: "POST", path: "/auth/logout", cookies: []*http.Cookie{vc}, header: map[string]string{"X-CSRF-Token": vtoken, "Origin": in.URL}}); r.status != 204 {
				t.Fatalf("same-origin logout with the token: %d %s", r.status, r.body)
			}
			expectProblem(t, in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{vc}}), 401, map[string]string{"session": "invalid_session", "jwt_cookie": "invalid_token"}[scheme.name])
		})
	}
}
