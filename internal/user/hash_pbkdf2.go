package user

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// pbkdf2Func is one PBKDF2-HMAC flavour.
type pbkdf2Func struct {
	name string
	new  func() hash.Hash
	size int // output bytes of the hash: one PBKDF2 block
}

var pbkdf2Funcs = map[string]pbkdf2Func{
	"sha1":   {"sha1", sha1.New, sha1.Size},
	"sha256": {"sha256", sha256.New, sha256.Size},
	"sha512": {"sha512", sha512.New, sha512.Size},
}

// pbkdf2Verifier checks the work (iterations x output blocks) against the
// limits before anything is computed and returns the verify function.
func (h *Hasher) pbkdf2Verifier(f pbkdf2Func, iter int, salt, want []byte) (func([]byte) bool, error) {
	if len(want) < minDigestLen || len(want) > maxDigestLen {
		return nil, fmt.Errorf("%w: pbkdf2: hash of %d bytes (want %d to %d)", ErrUnknownHashFormat, len(want), minDigestLen, maxDigestLen)
	}
	blocks := (len(want) + f.size - 1) / f.size
	if iter > h.limits.PBKDF2MaxWork/blocks {
		return nil, fmt.Errorf("%w: pbkdf2 %d iterations x %d blocks > %d", ErrHashTooCostly, iter, blocks, h.limits.PBKDF2MaxWork)
	}
	return func(pw []byte) bool {
		got, err := pbkdf2.Key(f.new, string(pw), salt, iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	}, nil
}

// parseDjangoPBKDF2 handles Django's pbkdf2_sha256$<iterations>$<salt>$<b64 hash>,
// where the salt is used as the literal bytes of its text.
func (h *Hasher) parseDjangoPBKDF2(encoded string) (*parsed, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: wrong number of fields", ErrUnknownHashFormat)
	}
	iter, err := parseIterations(parts[1])
	if err != nil {
		return nil, err
	}
	salt := []byte(parts[2])
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: bad salt", ErrUnknownHashFormat)
	}
	want, err := decodeB64(parts[3])
	if err != nil {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: bad hash", ErrUnknownHashFormat)
	}
	verify, err := h.pbkdf2Verifier(pbkdf2Funcs["sha256"], iter, salt, want)
	if err != nil {
		return nil, err
	}
	return &parsed{
		format: FormatDjangoPBKDF2, params: fmt.Sprintf("i=%d", iter), maxPassword: MaxPasswordBytes,
		verify: verify, saltLen: len(salt), digestLen: len(want),
		reencode: func(s, d []byte) string {
			// Django salts are text without '$': use the random bytes' hex,
			// cut to the original length.
			return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iter, hex.EncodeToString(s)[:len(s)], base64.StdEncoding.EncodeToString(d))
		},
	}, nil
}

// parsePHCPBKDF2 handles passlib's $pbkdf2-sha256$<rounds>$<salt>$<hash> and the
// PHC-style $pbkdf2-sha256$i=<rounds>[,l=<len>]$<salt>$<hash>; both carry the
// salt in base64 (passlib's variant writes '.' for '+').
func (h *Hasher) parsePHCPBKDF2(encoded string) (*parsed, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 5 || parts[0] != "" {
		return nil, fmt.Errorf("%w: pbkdf2-sha256: wrong number of fields", ErrUnknownHashFormat)
	}
	var iter int
	if strings.HasPrefix(parts[2], "i=") {
		// "l" (output length) is optional in this form; the hash itself tells it.
		params, err := parsePHCParams(parts[2], []string{"i"}, "l")
		if err != nil {
			return nil, fmt.Errorf("%w: pbkdf2-sha256: %w", ErrUnknownHashFormat, err)
		}
		if iter = params["i"]; iter < 1 {
			return nil, fmt.Errorf("%w: pbkdf2-sha256: iterations", ErrUnknownHashFormat)
		}
	} else {
		var err error
		if iter, err = parseIterations(parts[2]); err != nil {
			return nil, err
		}
	}
	salt, err := decodeB64(parts[3])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return nil, fmt.Errorf("%w: pbkdf2-sha256: bad salt", ErrUnknownHashFormat)
	}
	want, err := decodeB64(parts[4])
	if err != nil {
		return nil, fmt.Errorf("%w: pbkdf2-sha256: bad hash", ErrUnknownHashFormat)
	}
	verify, err := h.pbkdf2Verifier(pbkdf2Funcs["sha256"], iter, salt, want)
	if err != nil {
		return nil, err
	}
	return &parsed{
		format: FormatPasslibPBKDF2, params: fmt.Sprintf("i=%d", iter), maxPassword: MaxPasswordBytes,
		verify: verify, saltLen: len(salt), digestLen: len(want),
		reencode: func(s, d []byte) string {
			b := base64.RawStdEncoding
			return fmt.Sprintf("$pbkdf2-sha256$i=%d$%s$%s", iter, b.EncodeToString(s), b.EncodeToString(d))
		},
	}, nil
}

func parseIterations(s string) (int, error) {
	// Digits only: Atoi would also take "+5" or "-1".
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: pbkdf2 iterations", ErrUnknownHashFormat)
	}
	if len(s) > 9 { // above any sane limit, and not worth parsing into an int
		return 0, fmt.Errorf("%w: pbkdf2 iterations beyond 999999999", ErrHashTooCostly)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 {
		return 0, fmt.Errorf("%w: pbkdf2 iterations", ErrUnknownHashFormat)
	}
	return n, nil
}

// SpringPBKDF2 are the parameters of Spring Security's Pbkdf2PasswordEncoder
// behind the "{pbkdf2}" id. Its stored value carries none of them: only the
// salt and the key, in hex (or base64), so they must be known.
type SpringPBKDF2 struct {
	// Algorithm is sha1, sha256 or sha512 (PBKDF2WithHmacSHA...).
	Algorithm string
	// Iterations of PBKDF2.
	Iterations int
	// SaltLength is the number of leading bytes of the stored value that are
	// the salt; the rest is the key.
	SaltLength int
	// Secret is appended to the salt (Spring's "secret", "" by default).
	Secret string
	// Encoding of the stored value: hex (Spring's default) or base64
	// (setEncodeHashAsBase64(true)).
	Encoding string
}

// DefaultSpringPBKDF2 is what "{pbkdf2}" means in Spring Security's
// PasswordEncoderFactories.createDelegatingPasswordEncoder(): up to 5.7 a
// plain new Pbkdf2PasswordEncoder(), from 5.8 on
// Pbkdf2PasswordEncoder.defaultsForSpringSecurity_v5_5() - the same values:
// PBKDF2WithHmacSHA1, 185000 iterations, an 8-byte salt, a 256-bit key, no
// secret, hex. (Pbkdf2PasswordEncoder.defaultsForSpringSecurity_v5_8(), with
// SHA-256, 310000 iterations and a 16-byte salt, is registered under the id
// "pbkdf2@SpringSecurity_v5_8" and handled as such.)
var DefaultSpringPBKDF2 = SpringPBKDF2{Algorithm: "sha1", Iterations: 185000, SaltLength: 8, Encoding: "hex"}

// springV58 is Pbkdf2PasswordEncoder.defaultsForSpringSecurity_v5_8(), the
// fixed meaning of "{pbkdf2@SpringSecurity_v5_8}".
var springV58 = SpringPBKDF2{Algorithm: "sha256", Iterations: 310000, SaltLength: 16, Encoding: "hex"}

// withDefaults fills zero fields from DefaultSpringPBKDF2 and validates.
func (s SpringPBKDF2) withDefaults() (SpringPBKDF2, error) {
	d := DefaultSpringPBKDF2
	if s.Algorithm == "" {
		s.Algorithm = d.Algorithm
	}
	if s.Iterations == 0 {
		s.Iterations = d.Iterations
	}
	if s.SaltLength == 0 {
		s.SaltLength = d.SaltLength
	}
	if s.Encoding == "" {
		s.Encoding = d.Encoding
	}
	if _, ok := pbkdf2Funcs[s.Algorithm]; !ok {
		return s, fmt.Errorf("spring pbkdf2 algorithm %q: want sha1, sha256 or sha512", s.Algorithm)
	}
	if s.Iterations < 1 {
		return s, fmt.Errorf("spring pbkdf2 iterations %d: must be positive", s.Iterations)
	}
	if s.SaltLength < 1 || s.SaltLength > 64 {
		return s, fmt.Errorf("spring pbkdf2 salt length %d: must be between 1 and 64", s.SaltLength)
	}
	if s.Encoding != "hex" && s.Encoding != "base64" {
		return s, fmt.Errorf("spring pbkdf2 encoding %q: want hex or base64", s.Encoding)
	}
	return s, nil
}

// parseSpringPBKDF2 handles what follows "{pbkdf2}" or
// "{pbkdf2@SpringSecurity_v5_8}": encode(salt || PBKDF2(password, salt ||
// secret)). The key length is what remains after the salt.
func (h *Hasher) parseSpringPBKDF2(value string, sp SpringPBKDF2, prefix string) (*parsed, error) {
	var raw []byte
	var err error
	if sp.Encoding == "hex" {
		raw, err = hex.DecodeString(value)
	} else {
		raw, err = decodeB64(value)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: spring pbkdf2: not %s", ErrUnknownHashFormat, sp.Encoding)
	}
	if len(raw) <= sp.SaltLength {
		return nil, fmt.Errorf("%w: spring pbkdf2: shorter than its salt", ErrUnknownHashFormat)
	}
	salt, want := raw[:sp.SaltLength], raw[sp.SaltLength:]
	f := pbkdf2Funcs[sp.Algorithm]
	verify, err := h.pbkdf2Verifier(f, sp.Iterations, append(append([]byte{}, salt...), sp.Secret...), want)
	if err != nil {
		return nil, err
	}
	return &parsed{
		format: FormatSpringPBKDF2, params: fmt.Sprintf("%s i=%d %s", prefix, sp.Iterations, f.name), maxPassword: MaxPasswordBytes,
		verify: verify, saltLen: len(salt), digestLen: len(want),
		reencode: func(s, d []byte) string {
			b := append(append([]byte{}, s...), d...)
			if sp.Encoding == "hex" {
				return prefix + hex.EncodeToString(b)
			}
			return prefix + base64.StdEncoding.EncodeToString(b)
		},
	}, nil
}
