package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Key files.
//
// A keys directory holds one private key per file named <kid>.pem; files with
// other extensions are ignored. Asymmetric keys are unencrypted PKCS#8 PEM
// ("-----BEGIN PRIVATE KEY-----"), as written by `tokenshift keys generate` or
// `openssl genpkey -algorithm ed25519`; the key type gives the algorithm:
// Ed25519 → EdDSA, ECDSA P-256 → ES256, RSA ≥ 2048 bits → RS256.
//
// An HS256 secret is a PEM block of type "HMAC KEY" whose bytes are the raw
// secret, at least 32 bytes from a cryptographic random source, e.g.
//
//	{ echo '-----BEGIN HMAC KEY-----'; head -c 32 /dev/urandom | base64; echo '-----END HMAC KEY-----'; } > hs1.pem
//
// Symmetric keys are never published in the JWKS, so only this service can
// verify the tokens they sign.
const (
	PEMTypePrivateKey = "PRIVATE KEY"
	PEMTypeHMAC       = "HMAC KEY"
)

const keyFileExt = ".pem"

// LoadKeyRing reads every <kid>.pem in dir. signingKID "" picks the last kid in
// sort order, so adding a key named later in order (e.g. a date) makes it sign.
func LoadKeyRing(dir, signingKID string) (*KeyRing, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, ringError(dir, ErrKeyUnreadable, err.Error())
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), keyFileExt) {
			continue
		}
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		return nil, ringError(dir, ErrNoKeys, "no *.pem files")
	}
	sort.Strings(names)
	keys := make([]*Key, 0, len(names))
	for _, name := range names {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, ringError(path, ErrKeyUnreadable, err.Error())
		}
		k, err := parseKeyPEM(path, strings.TrimSuffix(name, keyFileExt), data)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if signingKID != "" && !ValidKID(signingKID) {
		return nil, ringError(fmt.Sprintf("signing kid %q", signingKID), ErrUnknownKID, "not a valid kid")
	}
	return NewKeyRing(signingKID, keys...)
}

// ParseKeyPEM parses one key file's content (see LoadKeyRing for the format).
func ParseKeyPEM(kid string, data []byte) (*Key, error) {
	return parseKeyPEM(fmt.Sprintf("kid %q", kid), kid, data)
}

func parseKeyPEM(where, kid string, data []byte) (*Key, error) {
	if !ValidKID(kid) {
		return nil, ringError(where, ErrBadKID, fmt.Sprintf("kid %q (the file name without .pem) must match %s", kid, kidPattern))
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, ringError(where, ErrKeyNotPEM, "no PEM block found")
	}
	// A second key hidden after the first would be silently ignored.
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, ringError(where, ErrKeyNotPEM, "unexpected data after the first PEM block (one key per file)")
	}
	switch block.Type {
	case PEMTypePrivateKey:
		private, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, ringError(where, ErrKeyNotPKCS8, err.Error())
		}
		return newKey(where, kid, private)
	case PEMTypeHMAC:
		return newKey(where, kid, block.Bytes)
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return nil, ringError(where, ErrKeyNotPKCS8, fmt.Sprintf("PEM block %q is PKCS#1/SEC 1; convert with `openssl pkcs8 -topk8 -nocrypt`", block.Type))
	case "ENCRYPTED PRIVATE KEY":
		return nil, ringError(where, ErrKeyNotPKCS8, "encrypted keys are not supported; decrypt with `openssl pkcs8 -nocrypt`")
	default:
		return nil, ringError(where, ErrKeyNotPKCS8, fmt.Sprintf("PEM block %q (want %q or %q)", block.Type, PEMTypePrivateKey, PEMTypeHMAC))
	}
}

// NewEphemeralKeyRing generates a one-key ring for development: tokens it signs
// die with the process. alg "" means DefaultAlgorithm.
func NewEphemeralKeyRing(alg string) (*KeyRing, error) {
	private, alg, err := generatePrivate(alg)
	if err != nil {
		return nil, err
	}
	// A random part, so a restarted process never republishes another key
	// under a kid that JWKS consumers may have cached.
	var id [6]byte
	_, _ = rand.Read(id[:])
	k, err := NewKey("ephemeral-"+strings.ToLower(alg)+"-"+hex.EncodeToString(id[:]), private)
	if err != nil {
		return nil, err
	}
	return NewKeyRing("", k)
}

// GenerateKeyFile writes a new private key for alg ("" = DefaultAlgorithm) to
// dir/<kid>.pem with mode 0600, creating dir (0700) if needed. It never
// overwrites an existing file.
func GenerateKeyFile(dir, kid, alg string) (string, error) {
	if !ValidKID(kid) {
		return "", ringError(fmt.Sprintf("kid %q", kid), ErrBadKID, fmt.Sprintf("must match %s", kidPattern))
	}
	private, _, err := generatePrivate(alg)
	if err != nil {
		return "", err
	}
	var block *pem.Block
	if secret, ok := private.([]byte); ok {
		block = &pem.Block{Type: PEMTypeHMAC, Bytes: secret}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(private)
		if err != nil {
			return "", ringError(fmt.Sprintf("kid %q", kid), ErrKeyUnsupported, err.Error())
		}
		block = &pem.Block{Type: PEMTypePrivateKey, Bytes: der}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", ringError(dir, ErrKeyUnreadable, err.Error())
	}
	path := filepath.Join(dir, kid+keyFileExt)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", ringError(path, ErrKeyExists, "refusing to overwrite")
		}
		return "", ringError(path, ErrKeyUnreadable, err.Error())
	}
	if err := pem.Encode(f, block); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return "", ringError(path, ErrKeyUnreadable, err.Error())
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return "", ringError(path, ErrKeyUnreadable, err.Error())
	}
	return path, nil
}

// generatePrivate makes a fresh key; crypto/rand is always the source (since
// Go 1.26 the key generators ignore any other reader anyway).
func generatePrivate(alg string) (any, string, error) {
	if alg == "" {
		alg = DefaultAlgorithm
	}
	var (
		private any
		err     error
	)
	switch alg {
	case AlgEdDSA:
		_, private, err = ed25519.GenerateKey(nil)
	case AlgES256:
		private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		private, err = rsa.GenerateKey(rand.Reader, minRSABits)
	case AlgHS256:
		secret := make([]byte, minHMACBytes)
		_, err = rand.Read(secret)
		private = secret
	default:
		return nil, "", ringError(fmt.Sprintf("algorithm %q", alg), ErrKeyUnsupported, "want "+auth.AlgorithmNames())
	}
	if err != nil {
		return nil, "", ringError(fmt.Sprintf("generate %s key", alg), ErrKeyUnsupported, err.Error())
	}
	return private, alg, nil
}
