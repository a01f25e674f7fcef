package user

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrUnknownHashFormat means an encoded hash is not one of the formats
// CheckPassword knows, or does not parse as the format its prefix names.
var ErrUnknownHashFormat = errors.New("unknown password hash format")

// ErrHashTooCostly means a hash asks for more work or memory than the limits
// below. The hashes come from a legacy table we do not control: one row with
// m=64GiB or a billion iterations must not take the service down.
var ErrHashTooCostly = errors.New("password hash parameters beyond limits")

// hashLimits bounds what a stored hash may ask of us. The defaults sit well
// above what Express, Spring and Django apps write (argon2 m=64MiB t=3 p=4,
// Django's 1.2M PBKDF2 iterations, bcrypt cost 10–12). A variable only so the
// fuzz test can shrink them and keep each input cheap.
var hashLimits = struct {
	bcryptCost, argon2MemoryKiB, argon2Time, argon2Threads, pbkdf2Iter int
}{
	bcryptCost:      16,
	argon2MemoryKiB: 1 << 20, // 1 GiB
	argon2Time:      20,
	argon2Threads:   64,
	pbkdf2Iter:      10_000_000,
}

const (
	maxEncodedLen = 2048
	minSaltLen    = 1
	maxSaltLen    = 1024
	minDigestLen  = 8
	maxDigestLen  = 1024
)

// equalizeCost runs on every error path so a malformed or refused hash costs
// about what a wrong password costs, as Verifier does for unknown users. Tests
// that feed thousands of broken hashes swap it out.
var equalizeCost = func(password string) {
	_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password[:min(len(password), 72)]))
}

// CheckPassword verifies password against an encoded hash, detecting the format
// from its prefix: bcrypt ($2a$, $2b$, $2y$), argon2id in the PHC form
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash, as node-argon2 and Spring's
// Argon2PasswordEncoder write it), Django's pbkdf2_sha256$iter$salt$hash and
// the passlib/PHC $pbkdf2-sha256$ form. It returns (false, nil) for a wrong
// password, and an error wrapping ErrUnknownHashFormat or ErrHashTooCostly
// when the hash cannot be checked. It has the PasswordChecker signature.
func CheckPassword(encoded, password string) (bool, error) {
	ok, err := checkPassword(encoded, password)
	if err != nil {
		equalizeCost(password)
		return false, err
	}
	return ok, nil
}

func checkPassword(encoded, password string) (bool, error) {
	if len(encoded) > maxEncodedLen {
		return false, fmt.Errorf("%w: encoded hash longer than %d bytes", ErrUnknownHashFormat, maxEncodedLen)
	}
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return checkBcryptLimited(encoded, password)
	case strings.HasPrefix(encoded, "$argon2id$"):
		return checkArgon2id(encoded, password)
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return checkDjangoPBKDF2(encoded, password)
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"):
		return checkPHCPBKDF2(encoded, password)
	}
	return false, ErrUnknownHashFormat
}

// bcryptLen is the length of every well-formed modular-crypt bcrypt hash:
// "$2b$" + two cost digits + "$" + 22 salt + 31 hash characters.
const bcryptLen = 60

func checkBcryptLimited(encoded, password string) (bool, error) {
	if len(encoded) != bcryptLen || encoded[6] != '$' {
		return false, fmt.Errorf("%w: bcrypt hash of wrong shape", ErrUnknownHashFormat)
	}
	cost, err := strconv.Atoi(encoded[4:6])
	if err != nil || cost < bcrypt.MinCost {
		return false, fmt.Errorf("%w: bcrypt cost", ErrUnknownHashFormat)
	}
	if cost > hashLimits.bcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d > %d", ErrHashTooCostly, cost, hashLimits.bcryptCost)
	}
	err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %w", ErrUnknownHashFormat, err)
	}
}

// checkArgon2id handles $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>.
func checkArgon2id(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return false, fmt.Errorf("%w: argon2id: wrong number of fields", ErrUnknownHashFormat)
	}
	// x/crypto implements only version 0x13; an older hash would verify
	// against a different function and fail for every password.
	if parts[2] != "v=19" {
		return false, fmt.Errorf("%w: argon2id: unsupported version", ErrUnknownHashFormat)
	}
	params, err := parsePHCParams(parts[3], []string{"m", "t", "p"})
	if err != nil {
		return false, fmt.Errorf("%w: argon2id: %w", ErrUnknownHashFormat, err)
	}
	m, t, p := params["m"], params["t"], params["p"]
	if t < 1 || p < 1 || m < 8*p {
		// argon2 needs at least one pass, one lane and 8 KiB per lane;
		// x/crypto would panic or silently raise m instead of refusing.
		return false, fmt.Errorf("%w: argon2id: parameters below minimum", ErrUnknownHashFormat)
	}
	if lim := hashLimits; m > lim.argon2MemoryKiB || t > lim.argon2Time || p > lim.argon2Threads {
		return false, fmt.Errorf("%w: argon2id m=%d t=%d p=%d (limits %d, %d, %d)",
			ErrHashTooCostly, m, t, p, lim.argon2MemoryKiB, lim.argon2Time, lim.argon2Threads)
	}
	salt, err := decodeB64(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return false, fmt.Errorf("%w: argon2id: bad salt", ErrUnknownHashFormat)
	}
	want, err := decodeB64(parts[5])
	if err != nil || len(want) < minDigestLen || len(want) > maxDigestLen {
		return false, fmt.Errorf("%w: argon2id: bad hash", ErrUnknownHashFormat)
	}
	got := argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// checkDjangoPBKDF2 handles Django's pbkdf2_sha256$<iterations>$<salt>$<b64 hash>,
// where the salt is used as the literal bytes of its text.
func checkDjangoPBKDF2(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return false, fmt.Errorf("%w: pbkdf2_sha256: wrong number of fields", ErrUnknownHashFormat)
	}
	iter, err := parseIterations(parts[1])
	if err != nil {
		return false, err
	}
	salt := []byte(parts[2])
	if len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return false, fmt.Errorf("%w: pbkdf2_sha256: bad salt", ErrUnknownHashFormat)
	}
	return pbkdf2Compare(password, salt, iter, parts[3])
}

// checkPHCPBKDF2 handles passlib's $pbkdf2-sha256$<rounds>$<salt>$<hash> and the
// PHC-style $pbkdf2-sha256$i=<rounds>[,l=<len>]$<salt>$<hash>; both carry the
// salt in base64 (passlib's variant writes '.' for '+').
func checkPHCPBKDF2(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 5 || parts[0] != "" {
		return false, fmt.Errorf("%w: pbkdf2-sha256: wrong number of fields", ErrUnknownHashFormat)
	}
	var iter int
	if strings.HasPrefix(parts[2], "i=") {
		// "l" (output length) is optional in this form; the hash itself tells it.
		params, err := parsePHCParams(parts[2], []string{"i"}, "l")
		if err != nil {
			return false, fmt.Errorf("%w: pbkdf2-sha256: %w", ErrUnknownHashFormat, err)
		}
		iter = params["i"]
		if iter < 1 {
			return false, fmt.Errorf("%w: pbkdf2-sha256: iterations", ErrUnknownHashFormat)
		}
		if iter > hashLimits.pbkdf2Iter {
			return false, fmt.Errorf("%w: pbkdf2 iterations %d > %d", ErrHashTooCostly, iter, hashLimits.pbkdf2Iter)
		}
	} else {
		var err error
		if iter, err = parseIterations(parts[2]); err != nil {
			return false, err
		}
	}
	salt, err := decodeB64(parts[3])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return false, fmt.Errorf("%w: pbkdf2-sha256: bad salt", ErrUnknownHashFormat)
	}
	return pbkdf2Compare(password, salt, iter, parts[4])
}

func parseIterations(s string) (int, error) {
	// Digits only: Atoi would also take "+5" or "-1".
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: pbkdf2 iterations", ErrUnknownHashFormat)
	}
	if len(s) > 9 { // above any sane limit, and not worth parsing into an int
		return 0, fmt.Errorf("%w: pbkdf2 iterations > %d", ErrHashTooCostly, hashLimits.pbkdf2Iter)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 {
		return 0, fmt.Errorf("%w: pbkdf2 iterations", ErrUnknownHashFormat)
	}
	if n > hashLimits.pbkdf2Iter {
		return 0, fmt.Errorf("%w: pbkdf2 iterations %d > %d", ErrHashTooCostly, n, hashLimits.pbkdf2Iter)
	}
	return n, nil
}

func pbkdf2Compare(password string, salt []byte, iter int, encodedDigest string) (bool, error) {
	want, err := decodeB64(encodedDigest)
	if err != nil || len(want) < minDigestLen || len(want) > maxDigestLen {
		return false, fmt.Errorf("%w: pbkdf2: bad hash", ErrUnknownHashFormat)
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false, fmt.Errorf("%w: pbkdf2: %w", ErrUnknownHashFormat, err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// parsePHCParams reads "k=v,k=v" holding every required key and possibly some
// optional ones, in any order, with small non-negative decimal values.
func parsePHCParams(s string, required []string, optional ...string) (map[string]int, error) {
	out := make(map[string]int, len(required)+len(optional))
	for field := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			return nil, errors.New("malformed parameters")
		}
		if _, dup := out[k]; dup {
			return nil, errors.New("repeated parameter")
		}
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return nil, errors.New("unknown parameter")
		}
		// Nine digits is below every limit's overflow and above every limit.
		if v == "" || len(v) > 9 || strings.Trim(v, "0123456789") != "" {
			return nil, errors.New("malformed parameter value")
		}
		n, _ := strconv.Atoi(v)
		out[k] = n
	}
	for _, k := range required {
		if _, ok := out[k]; !ok {
			return nil, errors.New("missing parameter")
		}
	}
	return out, nil
}

// decodeB64 accepts standard base64 with or without padding, and passlib's
// "adapted" alphabet that writes '.' for '+'.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.ReplaceAll(s, ".", "+"), "=")
	return base64.RawStdEncoding.DecodeString(s)
}
