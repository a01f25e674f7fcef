package token

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestLoadKeyRingTestdata(t *testing.T) {
	r, err := LoadKeyRing(testKeysDir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.KIDs(), []string{"ec-1", "ed-1", "hs-1", "rsa-1"}; !slices.Equal(got, want) {
		t.Fatalf("KIDs = %v; want %v", got, want)
	}
	if r.SigningKID() != "rsa-1" {
		t.Fatalf("SigningKID = %q; want the last in sort order, rsa-1", r.SigningKID())
	}
	if got, want := r.Algorithms(), []string{AlgES256, AlgEdDSA, AlgHS256, AlgRS256}; !slices.Equal(got, want) {
		t.Fatalf("Algorithms = %v; want %v", got, want)
	}
	for kid, alg := range map[string]string{"ed-1": AlgEdDSA, "ec-1": AlgES256, "rsa-1": AlgRS256, "hs-1": AlgHS256} {
		if k := r.Key(kid); k == nil || k.Alg() != alg || k.Symmetric() != (alg == AlgHS256) {
			t.Errorf("key %s = %+v; want alg %s", kid, k, alg)
		}
	}
	r2, err := LoadKeyRing(testKeysDir, "ed-1")
	if err != nil || r2.SigningKID() != "ed-1" {
		t.Fatalf("LoadKeyRing(signing ed-1) = %v, %v", r2, err)
	}
}

// keyFile is one file to write into a keys directory for a test case.
type keyFile struct {
	name string
	data []byte
}

func pemOf(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, PEMTypePrivateKey, der)
}

func TestLoadKeyRingErrors(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(nil)
	good := pkcs8(t, edKey)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ecSEC1, _ := x509.MarshalECPrivateKey(p256)

	tests := []struct {
		name       string
		files      []keyFile
		symlink    string // a dangling <symlink>.pem
		noDir      bool
		signingKID string
		want       error
		wantInMsg  string
	}{
		{name: "missing dir", noDir: true, want: ErrKeyUnreadable, wantInMsg: "nope"},
		{name: "empty dir", want: ErrNoKeys},
		{name: "no pem files", files: []keyFile{{"README", []byte("keys go here")}}, want: ErrNoKeys},
		{name: "not PEM", files: []keyFile{{"a.pem", []byte("hello")}}, want: ErrKeyNotPEM, wantInMsg: "a.pem"},
		{name: "two PEM blocks", files: []keyFile{{"a.pem", append(slices.Clone(good), good...)}}, want: ErrKeyNotPEM, wantInMsg: "a.pem"},
		{name: "PKCS#1 RSA", files: []keyFile{{"r.pem", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa1024))}}, want: ErrKeyNotPKCS8, wantInMsg: "r.pem"},
		{name: "SEC 1 EC", files: []keyFile{{"e.pem", pemOf(t, "EC PRIVATE KEY", ecSEC1)}}, want: ErrKeyNotPKCS8, wantInMsg: "e.pem"},
		{name: "public key", files: []keyFile{{"p.pem", pemOf(t, "PUBLIC KEY", []byte{1, 2})}}, want: ErrKeyNotPKCS8, wantInMsg: "p.pem"},
		{name: "encrypted", files: []keyFile{{"x.pem", pemOf(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2})}}, want: ErrKeyNotPKCS8, wantInMsg: "x.pem"},
		{name: "PKCS#8 garbage", files: []keyFile{{"g.pem", pemOf(t, PEMTypePrivateKey, []byte("garbage"))}}, want: ErrKeyNotPKCS8, wantInMsg: "g.pem"},
		{name: "X25519", files: []keyFile{{"x.pem", pkcs8(t, x25519)}}, want: ErrKeyUnsupported, wantInMsg: "x.pem"},
		{name: "P-384", files: []keyFile{{"p384.pem", pkcs8(t, p384)}}, want: ErrKeyUnsupported, wantInMsg: "p384.pem"},
		{name: "RSA 1024", files: []keyFile{{"small.pem", pkcs8(t, rsa1024)}}, want: ErrKeyTooSmall, wantInMsg: "small.pem"},
		{name: "HMAC 16 bytes", files: []keyFile{{"h.pem", pemOf(t, PEMTypeHMAC, make([]byte, 16))}}, want: ErrKeyTooSmall, wantInMsg: "h.pem"},
		{name: "bad kid", files: []keyFile{{"bad kid.pem", good}}, want: ErrBadKID, wantInMsg: "bad kid.pem"},
		{name: "kid too long", files: []keyFile{{strings.Repeat("k", 65) + ".pem", good}}, want: ErrBadKID},
		{name: "unreadable", symlink: "dangling", want: ErrKeyUnreadable, wantInMsg: "dangling.pem"},
		{name: "unknown signing kid", files: []keyFile{{"a.pem", good}}, signingKID: "b", want: ErrUnknownKID, wantInMsg: `"b"`},
		{name: "invalid signing kid", files: []keyFile{{"a.pem", good}}, signingKID: "../a", want: ErrUnknownKID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.symlink != "" {
				if err := os.Symlink(filepath.Join(dir, "missing"), filepath.Join(dir, tc.symlink+".pem")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.noDir {
				dir = filepath.Join(dir, "nope")
			}
			r, err := LoadKeyRing(dir, tc.signingKID)
			if r != nil || !errors.Is(err, ErrKeyRing) || !errors.Is(err, tc.want) {
				t.Fatalf("LoadKeyRing = %v, %v; want an error wrapping ErrKeyRing and %v", r, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Fatalf("error %q does not name %q", err, tc.wantInMsg)
			}
		})
	}
}

func TestGenerateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			kid := "k-" + strings.ToLower(alg)
			path, err := GenerateKeyFile(dir, kid, alg)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("stat %s = %v, %v; want mode 0600", path, fi, err)
			}
			before, _ := os.ReadFile(path)
			if _, err := GenerateKeyFile(dir, kid, alg); !errors.Is(err, ErrKeyExists) {
				t.Fatalf("second GenerateKeyFile = %v; want ErrKeyExists", err)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Fatal("the existing key file was overwritten")
			}
			r, err := LoadKeyRing(dir, kid)
			if err != nil {
				t.Fatal(err)
			}
			if k := r.SigningKey(); k.Alg() != alg {
				t.Fatalf("generated %s key loads as %s", alg, k.Alg())
			}
		})
	}
	if _, err := GenerateKeyFile(dir, "../escape", AlgEdDSA); !errors.Is(err, ErrBadKID) {
		t.Fatalf("kid ../escape: %v; want ErrBadKID", err)
	}
	if _, err := GenerateKeyFile(dir, "ok", "PS256"); !errors.Is(err, ErrKeyUnsupported) {
		t.Fatalf("alg PS256: %v; want ErrKeyUnsupported", err)
	}
	if path, err := GenerateKeyFile(dir, "default", ""); err != nil || !strings.HasSuffix(path, "default.pem") {
		t.Fatalf("default alg: %q, %v", path, err)
	}
}

func TestNewEphemeralKeyRing(t *testing.T) {
	for _, alg := range append([]string{""}, allAlgs...) {
		r, err := NewEphemeralKeyRing(alg)
		if err != nil {
			t.Fatalf("%q: %v", alg, err)
		}
		want := alg
		if want == "" {
			want = DefaultAlgorithm
		}
		if got := r.SigningKey().Alg(); got != want {
			t.Fatalf("NewEphemeralKeyRing(%q) signs with %s", alg, got)
		}
	}
	if _, err := NewEphemeralKeyRing("none"); !errors.Is(err, ErrKeyUnsupported) {
		t.Fatalf(`NewEphemeralKeyRing("none") = %v; want ErrKeyUnsupported`, err)
	}
}

func TestKeyRingWith(t *testing.T) {
	base := loadTestRing(t, AlgEdDSA)
	next, err := NewEphemeralKeyRing(AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	nextKey := next.SigningKey()
	r, err := base.With(nextKey)
	if err != nil {
		t.Fatal(err)
	}
	if r.SigningKID() != "ed-1" || r.Key(nextKey.KID()) == nil {
		t.Fatalf("With: signing %s, keys %v; want ed-1 still signing and the new key present", r.SigningKID(), r.KIDs())
	}
	if !strings.Contains(string(r.JWKS()), nextKey.KID()) || strings.Contains(string(base.JWKS()), nextKey.KID()) {
		t.Fatal("the added key must be published by the new ring only")
	}
	if _, err := r.With(nextKey); !errors.Is(err, ErrBadKID) {
		t.Fatalf("adding a duplicate kid: %v; want ErrBadKID", err)
	}
	r2, err := r.WithSigning(nextKey.KID())
	if err != nil || r2.SigningKID() != nextKey.KID() {
		t.Fatalf("WithSigning = %v, %v", r2, err)
	}
	if _, err := r.WithSigning("nope"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("WithSigning(nope) = %v; want ErrUnknownKID", err)
	}
	if _, err := NewKeyRing(""); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("NewKeyRing() = %v; want ErrNoKeys", err)
	}
	if _, err := NewKey("x", "not a key"); !errors.Is(err, ErrKeyUnsupported) {
		t.Fatalf("NewKey(string) = %v; want ErrKeyUnsupported", err)
	}
}

func TestValidKID(t *testing.T) {
	tests := []struct {
		kid  string
		want bool
	}{
		{"ed-1", true}, {"2030-01.key_A", true}, {strings.Repeat("a", 64), true},
		{"", false}, {".", false}, {"..", false}, {"../../etc/passwd", false}, {"a/b", false},
		{"' OR 1=1", false}, {"é", false}, {strings.Repeat("a", 65), false}, {"a\x00", false},
	}
	for _, tc := range tests {
		if got := ValidKID(tc.kid); got != tc.want {
			t.Errorf("ValidKID(%q) = %v; want %v", tc.kid, got, tc.want)
		}
	}
}

type jwkJSON struct {
	Keys []map[string]string `json:"keys"`
}

func TestJWKS(t *testing.T) {
	r := loadTestRing(t, AlgEdDSA)
	var set jwkJSON
	if err := json.Unmarshal(r.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 3 {
		t.Fatalf("JWKS has %d keys; want 3 (the HMAC key is never published): %s", len(set.Keys), r.JWKS())
	}
	byKID := map[string]map[string]string{}
	for _, k := range set.Keys {
		byKID[k["kid"]] = k
		if k["use"] != "sig" {
			t.Errorf("%s: use = %q; want sig", k["kid"], k["use"])
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("%s publishes private member %q", k["kid"], private)
			}
		}
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			t.Fatalf("JWK member %q is not base64url: %v", s, err)
		}
		return b
	}

	ed := byKID["ed-1"]
	if ed["kty"] != "OKP" || ed["crv"] != "Ed25519" || ed["alg"] != AlgEdDSA {
		t.Errorf("ed-1 = %v", ed)
	}
	if !ed25519.PublicKey(dec(ed["x"])).Equal(r.Key("ed-1").Public()) {
		t.Error("ed-1 x is not the public key")
	}

	ec := byKID["ec-1"]
	if ec["kty"] != "EC" || ec["crv"] != "P-256" || ec["alg"] != AlgES256 {
		t.Errorf("ec-1 = %v", ec)
	}
	ecPub := r.Key("ec-1").Public().(*ecdsa.PublicKey)
	point, _ := ecPub.Bytes()
	if x, y := dec(ec["x"]), dec(ec["y"]); len(x) != 32 || len(y) != 32 || string(point[1:33]) != string(x) || string(point[33:]) != string(y) {
		t.Error("ec-1 x/y are not the 32-byte public coordinates")
	}

	rs := byKID["rsa-1"]
	if rs["kty"] != "RSA" || rs["alg"] != AlgRS256 || rs["e"] != "AQAB" {
		t.Errorf("rsa-1 = %v", rs)
	}
	rsaPub := r.Key("rsa-1").Public().(*rsa.PublicKey)
	if new(big.Int).SetBytes(dec(rs["n"])).Cmp(rsaPub.N) != 0 {
		t.Error("rsa-1 n is not the modulus")
	}
}

// A verifier that knows only the published JWKS accepts our tokens: what an
// app or a resource server does.
func TestJWKSVerifiesIssuedTokens(t *testing.T) {
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, alg)
			p := e.issue(t, alice)
			keyfunc := jwksKeyfunc(t, e.svc.Ring().JWKS())
			_, err := jwt.Parse(p.AccessToken, keyfunc, jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(e.clock.Now))
			if err != nil {
				t.Fatalf("verifying with the JWKS: %v", err)
			}
		})
	}
}

// jwksKeyfunc is what a verifier that knows only our published JWKS does.
func jwksKeyfunc(t testing.TB, jwks []byte) jwt.Keyfunc {
	t.Helper()
	var set jwkJSON
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	return func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k["kid"] != tok.Header["kid"] {
				continue
			}
			raw := func(s string) []byte { b, _ := base64.RawURLEncoding.DecodeString(s); return b }
			switch k["kty"] {
			case "OKP":
				return ed25519.PublicKey(raw(k["x"])), nil
			case "EC":
				return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, raw(k["x"])...), raw(k["y"])...))
			case "RSA":
				return &rsa.PublicKey{N: new(big.Int).SetBytes(raw(k["n"])), E: int(new(big.Int).SetBytes(raw(k["e"])).Int64())}, nil
			}
		}
		return nil, errors.New("kid not in JWKS")
	}
}
