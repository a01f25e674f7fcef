// Package token issues and verifies tokenshift's credentials for apps: RFC 9068
// JWT access tokens signed by a key ring that is published as a JWKS, opaque
// rotating refresh tokens kept server-side, and an in-memory mirror of the
// revocation lists shared through the store, so verifying an access token
// needs no network round trip.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Signing algorithms a key ring can hold: auth.Algorithms, the list config
// validates against too. The key type decides which one a key uses; a key
// never signs or verifies with any other.
const (
	AlgEdDSA = auth.AlgEdDSA
	AlgES256 = auth.AlgES256
	AlgRS256 = auth.AlgRS256
	AlgHS256 = auth.AlgHS256
)

// DefaultAlgorithm is used when no algorithm is configured: Ed25519 keys are
// small, fast to verify and have no parameter choices to get wrong.
const DefaultAlgorithm = AlgEdDSA

const (
	minRSABits   = 2048
	minHMACBytes = 32
)

// Key loading errors. Every one wraps ErrKeyRing, plus the specific reason,
// and its message names the file or kid at fault.
var (
	ErrKeyRing        = errors.New("key ring")
	ErrBadKID         = errors.New("invalid kid")
	ErrNoKeys         = errors.New("no keys")
	ErrKeyUnreadable  = errors.New("unreadable key file")
	ErrKeyNotPEM      = errors.New("not PEM")
	ErrKeyNotPKCS8    = errors.New("not a PKCS#8 private key")
	ErrKeyUnsupported = errors.New("unsupported key type")
	ErrKeyTooSmall    = errors.New("key too small")
	ErrUnknownKID     = errors.New("unknown kid")
	ErrKeyExists      = errors.New("key file already exists")
)

// ringError builds "key ring: <where>: <reason>: <detail>".
func ringError(where string, reason error, detail string) error {
	if detail == "" {
		return fmt.Errorf("%w: %s: %w", ErrKeyRing, where, reason)
	}
	return fmt.Errorf("%w: %s: %w: %s", ErrKeyRing, where, reason, detail)
}

var kidPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidKID reports whether kid is acceptable as a key id (and so as a file
// name): letters, digits, '.', '_' and '-', 1 to 64 of them.
func ValidKID(kid string) bool {
	return kidPattern.MatchString(kid) && kid != "." && kid != ".."
}

// Key is one signing key of a ring, with the single algorithm it is used for.
type Key struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	signer any // what jwt's Sign wants: crypto.Signer or []byte
	verify any // what jwt's Verify wants: public key or []byte
	public crypto.PublicKey
	secret bool
}

// KID is the key id, carried in the `kid` header of tokens it signs.
func (k *Key) KID() string { return k.kid }

// Alg is the JWS algorithm of the key.
func (k *Key) Alg() string { return k.alg }

// Symmetric reports whether the key is an HMAC secret, which is never published.
func (k *Key) Symmetric() bool { return k.secret }

// Public is the public key, or nil for a symmetric key.
func (k *Key) Public() crypto.PublicKey { return k.public }

// NewKey wraps a private key: ed25519.PrivateKey (EdDSA), *ecdsa.PrivateKey on
// P-256 (ES256), *rsa.PrivateKey of at least 2048 bits (RS256), or a []byte
// HMAC secret of at least 32 bytes (HS256).
func NewKey(kid string, private any) (*Key, error) {
	return newKey(fmt.Sprintf("kid %q", kid), kid, private)
}

// newKey names where in its errors: the file a key came from, or its kid.
func newKey(where, kid string, private any) (*Key, error) {
	if !ValidKID(kid) {
		return nil, ringError(where, ErrBadKID, fmt.Sprintf("kid %q must match %s", kid, kidPattern))
	}
	k := &Key{kid: kid}
	switch p := private.(type) {
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return nil, ringError(where, ErrKeyUnsupported, "malformed Ed25519 key")
		}
		pub := p.Public().(ed25519.PublicKey)
		k.alg, k.method, k.signer, k.verify, k.public = AlgEdDSA, jwt.SigningMethodEdDSA, p, pub, pub
	case *ecdsa.PrivateKey:
		if p == nil || p.Curve != elliptic.P256() {
			name := "unknown"
			if p != nil && p.Curve != nil {
				name = p.Curve.Params().Name
			}
			return nil, ringError(where, ErrKeyUnsupported, fmt.Sprintf("ECDSA curve %s (only P-256, for ES256)", name))
		}
		k.alg, k.method, k.signer, k.verify, k.public = AlgES256, jwt.SigningMethodES256, p, &p.PublicKey, &p.PublicKey
	case *rsa.PrivateKey:
		if p == nil || p.N == nil {
			return nil, ringError(where, ErrKeyUnsupported, "empty RSA key")
		}
		bits := p.N.BitLen()
		if bits < minRSABits {
			return nil, ringError(where, ErrKeyTooSmall, fmt.Sprintf("RSA key of %d bits (need at least %d)", bits, minRSABits))
		}
		k.alg, k.method, k.signer, k.verify, k.public = AlgRS256, jwt.SigningMethodRS256, p, &p.PublicKey, &p.PublicKey
	case []byte:
		if len(p) < minHMACBytes {
			return nil, ringError(where, ErrKeyTooSmall, fmt.Sprintf("HMAC key of %d bytes (need at least %d)", len(p), minHMACBytes))
		}
		secret := slices.Clone(p)
		k.alg, k.method, k.signer, k.verify, k.secret = AlgHS256, jwt.SigningMethodHS256, secret, secret, true
	default:
		return nil, ringError(where, ErrKeyUnsupported, fmt.Sprintf("%T (want Ed25519, ECDSA P-256, RSA or an HMAC secret)", private))
	}
	return k, nil
}

// KeyRing is an immutable set of keys by kid, one of which signs. Every key
// verifies tokens with its kid; asymmetric keys are published in the JWKS.
//
// Rotation builds new rings from old ones: With adds keys that are published
// and verify but do not sign yet (or retired keys kept until their tokens
// expire), WithSigning switches the signing key. A ring never changes after it
// is built, so it can be shared without locks.
type KeyRing struct {
	keys    map[string]*Key
	kids    []string // sorted
	signing *Key
	algs    []string // sorted, distinct
	jwks    []byte
}

// NewKeyRing builds a ring from keys; signingKID "" picks the last kid in sort
// order.
func NewKeyRing(signingKID string, keys ...*Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, ringError("new ring", ErrNoKeys, "")
	}
	r := &KeyRing{keys: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if k == nil {
			return nil, ringError("new ring", ErrNoKeys, "nil key")
		}
		if _, dup := r.keys[k.kid]; dup {
			return nil, ringError(fmt.Sprintf("kid %q", k.kid), ErrBadKID, "duplicate kid")
		}
		r.keys[k.kid] = k
		r.kids = append(r.kids, k.kid)
		if !slices.Contains(r.algs, k.alg) {
			r.algs = append(r.algs, k.alg)
		}
	}
	sort.Strings(r.kids)
	sort.Strings(r.algs)
	if signingKID == "" {
		signingKID = r.kids[len(r.kids)-1]
	}
	r.signing = r.keys[signingKID]
	if r.signing == nil {
		return nil, ringError(fmt.Sprintf("signing kid %q", signingKID), ErrUnknownKID, fmt.Sprintf("not in the ring (have %v)", r.kids))
	}
	jwks, err := buildJWKS(r)
	if err != nil {
		return nil, err
	}
	r.jwks = jwks
	return r, nil
}

// With returns a new ring holding r's keys plus keys, which verify and are
// published but do not sign; r's signing key still signs.
func (r *KeyRing) With(keys ...*Key) (*KeyRing, error) {
	all := make([]*Key, 0, len(r.keys)+len(keys))
	for _, kid := range r.kids {
		all = append(all, r.keys[kid])
	}
	return NewKeyRing(r.signing.kid, append(all, keys...)...)
}

// WithSigning returns a new ring with the same keys where kid signs.
func (r *KeyRing) WithSigning(kid string) (*KeyRing, error) {
	if kid == "" {
		return nil, ringError("signing kid", ErrUnknownKID, "empty")
	}
	all := make([]*Key, 0, len(r.keys))
	for _, k := range r.kids {
		all = append(all, r.keys[k])
	}
	return NewKeyRing(kid, all...)
}

// Key returns the key with kid, or nil.
func (r *KeyRing) Key(kid string) *Key { return r.keys[kid] }

// SigningKey is the key new tokens are signed with.
func (r *KeyRing) SigningKey() *Key { return r.signing }

// SigningKID is the kid of the signing key.
func (r *KeyRing) SigningKID() string { return r.signing.kid }

// KIDs lists every kid in sort order.
func (r *KeyRing) KIDs() []string { return slices.Clone(r.kids) }

// Algorithms lists the distinct algorithms of the ring's keys, sorted.
func (r *KeyRing) Algorithms() []string { return slices.Clone(r.algs) }

// JWKS is the RFC 7517 JSON document of the ring's public keys (symmetric keys
// are never included). It is computed once; callers must not modify it.
func (r *KeyRing) JWKS() []byte { return r.jwks }
