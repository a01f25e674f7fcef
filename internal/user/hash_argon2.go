package user

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// parseArgon2 handles the PHC string $argon2id$v=19$m=..,t=..,p=..$salt$hash
// (node-argon2, argon2-cffi, Spring's Argon2PasswordEncoder, the reference
// CLI) and its $argon2i$ sibling (older Django). Argon2d and version 16 (no
// v= field) are refused: x/crypto implements neither, and verifying them as
// something else would fail every password.
func (h *Hasher) parseArgon2(encoded string) (*parsed, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: argon2: wrong number of fields", ErrUnknownHashFormat)
	}
	variant := parts[1]
	var kdf func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
	switch variant {
	case "argon2id":
		kdf = argon2.IDKey
	case "argon2i":
		kdf = argon2.Key
	default:
		return nil, fmt.Errorf("%w: argon2: variant not supported", ErrUnknownHashFormat)
	}
	if parts[2] != "v=19" {
		return nil, fmt.Errorf("%w: argon2: unsupported version", ErrUnknownHashFormat)
	}
	params, err := parsePHCParams(parts[3], []string{"m", "t", "p"})
	if err != nil {
		return nil, fmt.Errorf("%w: argon2: %w", ErrUnknownHashFormat, err)
	}
	m, t, p := params["m"], params["t"], params["p"]
	if t < 1 || p < 1 || p > 255 || m < 8*p {
		// argon2 needs at least one pass, one lane and 8 KiB per lane;
		// x/crypto would panic or silently raise m instead of refusing.
		return nil, fmt.Errorf("%w: argon2: parameters below minimum", ErrUnknownHashFormat)
	}
	lim := h.limits
	if m > lim.Argon2MaxMemoryKiB || m*t > lim.Argon2MaxWork || p > lim.Argon2MaxThreads {
		return nil, fmt.Errorf("%w: argon2 m=%d t=%d p=%d (limits: m <= %d KiB, m*t <= %d, p <= %d)",
			ErrHashTooCostly, m, t, p, lim.Argon2MaxMemoryKiB, lim.Argon2MaxWork, lim.Argon2MaxThreads)
	}
	salt, err := decodeB64(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return nil, fmt.Errorf("%w: argon2: bad salt", ErrUnknownHashFormat)
	}
	want, err := decodeB64(parts[5])
	if err != nil || len(want) < minDigestLen || len(want) > maxDigestLen {
		return nil, fmt.Errorf("%w: argon2: bad hash", ErrUnknownHashFormat)
	}
	head := fmt.Sprintf("$%s$v=19$m=%d,t=%d,p=%d$", variant, m, t, p)
	return &parsed{
		format:      FormatArgon2,
		params:      fmt.Sprintf("%s m=%d t=%d p=%d", variant, m, t, p),
		maxPassword: MaxPasswordBytes,
		verify: func(pw []byte) bool {
			got := kdf(pw, salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
			return subtle.ConstantTimeCompare(got, want) == 1
		},
		saltLen:   len(salt),
		digestLen: len(want),
		reencode: func(s, d []byte) string {
			b := base64.RawStdEncoding
			return head + b.EncodeToString(s) + "$" + b.EncodeToString(d)
		},
	}, nil
}
