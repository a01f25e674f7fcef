package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// jwk is one RFC 7517 public key. Only public members exist in this type, so a
// private parameter can never be published by mistake.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func buildJWKS(r *KeyRing) ([]byte, error) {
	set := jwkSet{Keys: []jwk{}}
	for _, kid := range r.kids {
		k := r.keys[kid]
		if k.secret {
			continue
		}
		j := jwk{Use: "sig", Alg: k.alg, Kid: k.kid}
		switch pub := k.public.(type) {
		case ed25519.PublicKey:
			j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64(pub)
		case *ecdsa.PublicKey:
			point, err := pub.Bytes()
			if err != nil || len(point) != 65 {
				return nil, ringError(fmt.Sprintf("kid %q", kid), ErrKeyUnsupported, "cannot encode the EC public key")
			}
			// Uncompressed SEC 1 point: 0x04 || X || Y, each 32 bytes on P-256.
			j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", b64(point[1:33]), b64(point[33:])
		case *rsa.PublicKey:
			j.Kty, j.N, j.E = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
		default:
			return nil, ringError(fmt.Sprintf("kid %q", kid), ErrKeyUnsupported, fmt.Sprintf("%T", pub))
		}
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}
