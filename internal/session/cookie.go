package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"unsafe"
)

// A cookie value is "<sid>.<secret>". The sid is the login's public handle
// (it appears in token claims and admin listings); only the secret, of which
// the store keeps a SHA-256, proves possession. A leaked sid or store dump
// therefore never yields a usable cookie.
//
// A sid is 21 base64url characters, 126 random bits; sids made before issue
// 13 (22 characters, the strict encoding of 16 bytes) are still accepted.
// One character less in every entry of the per-user index keeps a user's
// index with one login in a 32-byte listpack instead of a 48-byte one
// (docs/benchmarks.md, "Redis memory per login"). The sid is a handle, not
// a credential: the secret is.
const (
	sidBytes    = 16 // random bytes drawn for a sid; 126 of their bits are kept
	secretBytes = 32 // 256 bits, as DESIGN.md section 5 asks of session ids

	sidLen    = 21 // base64url characters of a sid
	sidLenV1  = 22 // base64url without padding of sidBytes: sids before issue 13
	secretLen = 43 // base64url without padding of secretBytes
	cookieLen = sidLen + 1 + secretLen
)

// newSID is a fresh sid: the first sidLen characters of the encoding of
// sidBytes random bytes (the last character of it holds only 2 bits).
func newSID(r io.Reader) (string, error) {
	enc, _, err := randomToken(r, sidBytes)
	if err != nil {
		return "", err
	}
	return enc[:sidLen], nil
}

// isB64URL: the base64url alphabet, no padding.
var isB64URL = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// b64 is strict so that each id has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

func randomToken(r io.Reader, n int) (string, []byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", nil, fmt.Errorf("session: random source: %w", err)
	}
	return b64.EncodeToString(b), b, nil
}

// decodeFixed decodes s into dst (len(dst) bytes) only when s is the
// canonical encoding of exactly that many bytes. It decodes in place of a
// copy: verifying a cookie is on every request's path, and a string-to-bytes
// conversion of a secret (43 characters) would be a heap allocation each
// time. Decode only reads src, so viewing s's bytes is safe.
func decodeFixed(dst []byte, s string, encLen int) bool {
	if len(s) != encLen {
		return false
	}
	n, err := b64.Decode(dst, stringBytes(s))
	return err == nil && n == len(dst)
}

// ValidSID reports whether sid is syntactically a session id (no I/O): 21
// base64url characters, or a sid of before (the strict encoding of 16 bytes).
func ValidSID(sid string) bool {
	if len(sid) == sidLenV1 {
		var b [sidBytes]byte
		return decodeFixed(b[:], sid, sidLenV1)
	}
	if len(sid) != sidLen {
		return false
	}
	for i := range len(sid) {
		if !isB64URL[sid[i]] {
			return false
		}
	}
	return true
}

// SplitCookie checks the syntax of a cookie value and returns its sid, for
// logging and extraction. It does no I/O and proves nothing: only
// Authenticate checks the secret.
func SplitCookie(value string) (sid string, ok bool) {
	sid, _, ok = parseCookie(value)
	return sid, ok
}

// parseCookie checks the syntax of a cookie value and returns its sid and
// the SHA-256 of its secret, which is all a check needs of the secret.
func parseCookie(value string) (sid string, secretHash [sha256.Size]byte, ok bool) {
	sid, secret, ok := cookieParts(value)
	if !ok || !ValidSID(sid) {
		return "", secretHash, false
	}
	if secretHash, ok = hashPresented(secret); !ok {
		return "", secretHash, false
	}
	return sid, secretHash, true
}

// cookieParts splits a cookie value at its fixed layout (a sid of either
// length, a dot, the secret) and checks nothing else: a near-cache hit needs
// no more (cacheEntry.secret is canonical, and only canonical sids are
// cached), anything else goes through parseCookie's checks (ValidSID,
// hashPresented).
func cookieParts(value string) (sid, secret string, ok bool) {
	n := len(value) - 1 - secretLen // the sid's length
	if n != sidLen && n != sidLenV1 || value[n] != '.' {
		return "", "", false
	}
	return value[:n], value[n+1:], true
}

// hashPresented decodes a presented secret, only in its canonical spelling,
// and returns its SHA-256.
func hashPresented(secret string) (h [sha256.Size]byte, ok bool) {
	var b [secretBytes]byte
	if !decodeFixed(b[:], secret, secretLen) {
		return h, false
	}
	return sha256.Sum256(b[:]), true
}

// sameSecret compares a presented secret with one verified before, in
// constant time. Only a secret of the right length can match, so an entry
// without one never does.
func sameSecret(presented, verified string) bool {
	if len(verified) != secretLen || len(presented) != secretLen {
		return false
	}
	return subtle.ConstantTimeCompare(stringBytes(presented), stringBytes(verified)) == 1
}

// stringBytes views s's bytes without a copy, for functions that only read.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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

// secretMatches compares the presented secret's SHA-256 with what the login
// stored (16 bytes, or the whole hash for logins written before), in
// constant time.
func secretMatches(presented *[sha256.Size]byte, storedHash []byte) bool {
	if len(storedHash) != storedHashLen && len(storedHash) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(presented[:len(storedHash)], storedHash) == 1
}
