package user

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/bcrypt"
)

// bcryptLen is the length of every well-formed modular-crypt bcrypt hash:
// "$2b$" + two cost digits + "$" + 22 salt + 31 hash characters.
const bcryptLen = 60

// bcryptB64 is bcrypt's own base64 alphabet, without padding.
var bcryptB64 = base64.NewEncoding("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789").WithPadding(base64.NoPadding)

// parseBcrypt handles $2a$, $2b$ and $2y$ (PHP's name for $2b$). $2x$ (the
// old buggy PHP variant) and $2$ are refused: x/crypto would verify them as
// $2a$ and get other answers than the code that wrote them.
func (h *Hasher) parseBcrypt(encoded string) (*parsed, error) {
	if len(encoded) != bcryptLen || encoded[0] != '$' || encoded[1] != '2' || encoded[3] != '$' || encoded[6] != '$' {
		return nil, fmt.Errorf("%w: bcrypt hash of wrong shape", ErrUnknownHashFormat)
	}
	switch encoded[2] {
	case 'a', 'b', 'y':
	default:
		return nil, fmt.Errorf("%w: bcrypt variant not supported", ErrUnknownHashFormat)
	}
	cost, err := strconv.Atoi(encoded[4:6])
	if err != nil || cost < bcrypt.MinCost || encoded[4] == '+' || encoded[4] == '-' {
		return nil, fmt.Errorf("%w: bcrypt cost", ErrUnknownHashFormat)
	}
	if cost > h.limits.BcryptMaxCost {
		return nil, fmt.Errorf("%w: bcrypt cost %d > %d", ErrHashTooCostly, cost, h.limits.BcryptMaxCost)
	}
	if _, err := bcryptB64.DecodeString(encoded[7:29]); err != nil {
		return nil, fmt.Errorf("%w: bcrypt salt", ErrUnknownHashFormat)
	}
	if _, err := bcryptB64.DecodeString(encoded[29:]); err != nil {
		return nil, fmt.Errorf("%w: bcrypt digest", ErrUnknownHashFormat)
	}
	hashed := []byte(encoded)
	variant := encoded[:4]
	return &parsed{
		format:      FormatBcrypt,
		params:      "cost=" + encoded[4:6],
		maxPassword: BcryptMaxPasswordBytes,
		verify: func(pw []byte) bool {
			return bcrypt.CompareHashAndPassword(hashed, pw) == nil
		},
		saltLen:   16,
		digestLen: 23,
		reencode: func(salt, digest []byte) string {
			return fmt.Sprintf("%s%02d$%s%s", variant, cost, bcryptB64.EncodeToString(salt), bcryptB64.EncodeToString(digest))
		},
	}, nil
}

// parseDjangoBcryptSHA256 handles Django's BCryptSHA256PasswordHasher:
// "bcrypt_sha256$" + a bcrypt hash of the lower-case hex SHA-256 of the
// password. Pre-hashing is what lets every byte of a long password count, so
// the 72-byte bcrypt rule does not apply (the 1 KiB cap does).
func (h *Hasher) parseDjangoBcryptSHA256(encoded string) (*parsed, error) {
	const prefix = "bcrypt_sha256$"
	inner, err := h.parseBcrypt(encoded[len(prefix):])
	if err != nil {
		return nil, err
	}
	innerVerify, innerReencode := inner.verify, inner.reencode
	inner.format = FormatDjangoBcryptSHA
	inner.maxPassword = MaxPasswordBytes
	inner.verify = func(pw []byte) bool { return innerVerify(sha256Hex(pw)) }
	inner.reencode = func(salt, digest []byte) string { return prefix + innerReencode(salt, digest) }
	return inner, nil
}

func sha256Hex(pw []byte) []byte {
	sum := sha256.Sum256(pw)
	out := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(out, sum[:])
	return out
}

// HashPassword makes a bcrypt hash for a users file.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if len(password) > BcryptMaxPasswordBytes {
		return "", errors.New("password longer than 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// hashOverride makes the hash of a password changed through tokenshift:
// Django's bcrypt_sha256 format, so all of a password up to MaxPasswordBytes
// counts, and any tool that reads Django hashes can read it.
func hashOverride(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword(sha256Hex([]byte(password)), cost)
	if err != nil {
		return "", err
	}
	return "bcrypt_sha256$" + string(h), nil
}
