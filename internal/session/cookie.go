package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
)

// A cookie value is "<sid>.<secret>". The sid is the login's public handle
// (it appears in token claims and admin listings); only the secret, of which
// the store keeps a SHA-256, proves possession. A leaked sid or store dump
// therefore never yields a usable cookie.
const (
	sidBytes    = 16 // 128 bits: unguessable as a handle, not a credential
	secretBytes = 32 // 256 bits, as DESIGN.md section 5 asks of session ids

	sidLen    = 22 // base64url without padding of sidBytes
	secretLen = 43 // base64url without padding of secretBytes
	cookieLen = sidLen + 1 + secretLen
)

// b64 is strict so that each id has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

func randomToken(r io.Reader, n int) (string, []byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", nil, fmt.Errorf("session: random source: %w", err)
	}
	return b64.EncodeToString(b), b, nil
}

// decodeFixed decodes s only when it is the canonical encoding of exactly n bytes.
func decodeFixed(s string, encLen, n int) ([]byte, bool) {
	if len(s) != encLen {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, false
	}
	return b, true
}

// ValidSID reports whether sid is syntactically a session id (no I/O).
func ValidSID(sid string) bool {
	_, ok := decodeFixed(sid, sidLen, sidBytes)
	return ok
}

// SplitCookie checks the syntax of a cookie value and returns its sid, for
// logging and extraction. It does no I/O and proves nothing: only
// Authenticate checks the secret.
func SplitCookie(value string) (sid string, ok bool) {
	sid, _, ok = parseCookie(value)
	return sid, ok
}

func parseCookie(value string) (sid string, secret []byte, ok bool) {
	if len(value) != cookieLen {
		return "", nil, false
	}
	sid, enc, found := strings.Cut(value, ".")
	if !found || !ValidSID(sid) {
		return "", nil, false
	}
	secret, ok = decodeFixed(enc, secretLen, secretBytes)
	if !ok {
		return "", nil, false
	}
	return sid, secret, true
}

func hashSecret(secret []byte) []byte {
	h := sha256.Sum256(secret)
	return h[:]
}

// storedHashLen is how much of the secret's SHA-256 a login keeps: 128 bits
// of a hash of 256 random bits leave nothing to guess, and half the bytes
// keep the login small in Redis (record.go). Logins written before keep
// the whole hash, which is checked whole.
const storedHashLen = 16

func storedHash(secret []byte) []byte { return hashSecret(secret)[:storedHashLen] }

func secretMatches(secret, storedHash []byte) bool {
	if len(storedHash) != storedHashLen && len(storedHash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(hashSecret(secret)[:len(storedHash)], storedHash) == 1
}
