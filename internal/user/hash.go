package user

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownHashFormat means an encoded hash is not one of the formats
// CheckPassword knows, or does not parse as the format its prefix names.
var ErrUnknownHashFormat = errors.New("unknown password hash format")

// ErrHashTooCostly means a hash asks for more work or memory than the
// HashLimits allow. The hashes come from a legacy table we do not control: one
// row with m=64GiB or a billion iterations must not take the service down.
var ErrHashTooCostly = errors.New("password hash parameters beyond limits")

// MaxPasswordBytes is the longest password any format is asked to hash.
// bcrypt reads only 72 bytes and has its own, stricter rule (see
// BcryptMaxPasswordBytes).
const MaxPasswordBytes = 1024

// BcryptMaxPasswordBytes is what bcrypt reads; a longer password would share
// its first 72 bytes with others that also pass, so it never verifies.
const BcryptMaxPasswordBytes = 72

// HashLimits bounds what one stored hash may ask of us. Work is counted the
// way each function spends it: PBKDF2 as iterations x output blocks, argon2 as
// memory x passes. Zero fields take the defaults below.
type HashLimits struct {
	// BcryptMaxCost: cost 15 is ~2-3 s on one core; each step doubles it.
	BcryptMaxCost int
	// PBKDF2MaxWork bounds iterations x ceil(output length / hash size).
	// Django 5.x (1.2M x 1), Spring (310k x 1, or 185k x 2 for SHA-1) fit.
	PBKDF2MaxWork int
	// Argon2MaxMemoryKiB bounds one verification's memory (m).
	Argon2MaxMemoryKiB int
	// Argon2MaxWork bounds m (KiB) x t (passes).
	Argon2MaxWork int
	// Argon2MaxThreads bounds p: each lane is a goroutine of its own, outside
	// the Verifier's concurrency bound.
	Argon2MaxThreads int
}

// Defaults for HashLimits. They sit above what Express, Spring and Django
// apps write (argon2 m=64MiB t=3 p=4 for node-argon2, m=100MiB t=2 p=8 for
// Django, bcrypt cost 10-12, PBKDF2 up to Django's 1.2M rounds) and bound a
// hostile row to about a second of CPU and 256 MiB per verification.
const (
	DefaultBcryptMaxCost      = 15
	DefaultPBKDF2MaxWork      = 2_000_000
	DefaultArgon2MaxMemoryKiB = 256 << 10 // 256 MiB
	DefaultArgon2MaxWork      = 512 << 10 // e.g. 256 MiB x 2 passes, 64 MiB x 8
	DefaultArgon2MaxThreads   = 16
)

// withDefaults fills zero fields.
func (l HashLimits) withDefaults() HashLimits {
	if l.BcryptMaxCost == 0 {
		l.BcryptMaxCost = DefaultBcryptMaxCost
	}
	if l.PBKDF2MaxWork == 0 {
		l.PBKDF2MaxWork = DefaultPBKDF2MaxWork
	}
	if l.Argon2MaxMemoryKiB == 0 {
		l.Argon2MaxMemoryKiB = DefaultArgon2MaxMemoryKiB
	}
	if l.Argon2MaxWork == 0 {
		l.Argon2MaxWork = DefaultArgon2MaxWork
	}
	if l.Argon2MaxThreads == 0 {
		l.Argon2MaxThreads = DefaultArgon2MaxThreads
	}
	return l
}

func (l HashLimits) validate() error {
	switch {
	case l.BcryptMaxCost < 4 || l.BcryptMaxCost > 31:
		return fmt.Errorf("bcrypt max cost %d: must be between 4 and 31", l.BcryptMaxCost)
	case l.PBKDF2MaxWork < 1:
		return fmt.Errorf("pbkdf2 max work %d: must be positive", l.PBKDF2MaxWork)
	case l.Argon2MaxMemoryKiB < 8:
		return fmt.Errorf("argon2 max memory %d KiB: must be at least 8", l.Argon2MaxMemoryKiB)
	case l.Argon2MaxWork < 8:
		return fmt.Errorf("argon2 max work %d: must be at least 8", l.Argon2MaxWork)
	case l.Argon2MaxThreads < 1 || l.Argon2MaxThreads > 255:
		return fmt.Errorf("argon2 max threads %d: must be between 1 and 255", l.Argon2MaxThreads)
	}
	return nil
}

// HashOptions configure a Hasher.
type HashOptions struct {
	Limits HashLimits
	// SpringPBKDF2 are the parameters of Spring's "{pbkdf2}" prefix; the zero
	// value means Spring's own (see DefaultSpringPBKDF2).
	SpringPBKDF2 SpringPBKDF2
}

// Hasher verifies encoded password hashes of every supported format under
// its limits. It is safe for concurrent use.
type Hasher struct {
	limits HashLimits
	spring SpringPBKDF2
}

// NewHasher validates o.
func NewHasher(o HashOptions) (*Hasher, error) {
	l := o.Limits.withDefaults()
	if err := l.validate(); err != nil {
		return nil, err
	}
	sp, err := o.SpringPBKDF2.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Hasher{limits: l, spring: sp}, nil
}

var defaultHasher = func() *Hasher {
	h, err := NewHasher(HashOptions{})
	if err != nil {
		panic(err) // the defaults are constants
	}
	return h
}()

// Check verifies password against encoded, detecting the format from its
// prefix (see docs/user-stores.md for the list). It returns (false, nil) for a
// wrong password, and an error wrapping ErrUnknownHashFormat or
// ErrHashTooCostly, before any hashing, when the hash cannot or must not be
// checked. Unlike CheckPassword it does no timing-equalising work on errors:
// the Verifier does that with its calibrated dummy.
func (h *Hasher) Check(encoded, password string) (bool, error) {
	p, err := h.parse(encoded)
	if err != nil {
		return false, err
	}
	return p.check(password), nil
}

// CheckPassword verifies password against an encoded hash with the default
// limits; on an error it spends about a bcrypt comparison so a broken row is
// not faster than a wrong password. It has the PasswordChecker signature.
func CheckPassword(encoded, password string) (bool, error) {
	ok, err := defaultHasher.Check(encoded, password)
	if err != nil {
		equalizeCost(password)
		return false, err
	}
	return ok, nil
}

// PasswordChecker verifies an encoded hash.
type PasswordChecker func(encoded, password string) (bool, error)

// equalizeCost runs on CheckPassword's error paths; tests that feed thousands
// of broken hashes swap it out.
var equalizeCost = func(password string) {
	defaultDummy.check(password)
}

// parsed is an encoded hash taken apart and already checked against the
// limits: how to verify a password, and how to build another hash of the same
// cost.
type parsed struct {
	format string // stable, low-cardinality name for logs and metrics
	params string // "cost=12", "m=65536 t=3 p=4", "i=310000 sha256"
	// maxPassword is how many bytes of the password the function reads.
	maxPassword int
	// verify computes the function over pw and compares in constant time.
	verify func(pw []byte) bool
	// saltLen and digestLen size the random parts of a dummy; reencode
	// writes this format with these parameters around them.
	saltLen, digestLen int
	reencode           func(salt, digest []byte) string
}

// check runs the function even for a password it refuses, so refusing costs
// what verifying does.
func (p *parsed) check(password string) bool {
	pw := []byte(password)
	tooLong := len(pw) > p.maxPassword
	if tooLong {
		pw = pw[:p.maxPassword]
	}
	ok := p.verify(pw)
	return ok && !tooLong
}

// dummyLike is a hash with p's format and parameters over a random salt
// and digest: checking any password against it costs what checking p does,
// and it matches nothing.
func (h *Hasher) dummyLike(p *parsed) (*parsed, error) {
	salt := make([]byte, p.saltLen)
	digest := make([]byte, p.digestLen)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(digest)
	// Same Spring parameters, no limits: p already passed them.
	free := &Hasher{limits: HashLimits{BcryptMaxCost: 31, PBKDF2MaxWork: 1 << 62, Argon2MaxMemoryKiB: 1 << 62, Argon2MaxWork: 1 << 62, Argon2MaxThreads: 255}, spring: h.spring}
	d, err := free.parse(p.reencode(salt, digest))
	if err != nil {
		return nil, fmt.Errorf("dummy %s hash: %w", p.format, err)
	}
	return d, nil
}

const (
	maxEncodedLen = 2048
	minSaltLen    = 1
	maxSaltLen    = 1024
	minDigestLen  = 8
	// maxDigestLen caps every output length: no supported format writes more,
	// and PBKDF2's cost grows with it.
	maxDigestLen = 64
)

// Format names reported by FormatOf and in logs and metrics.
const (
	FormatBcrypt          = "bcrypt"
	FormatSpringBcrypt    = "spring-bcrypt"
	FormatDjangoBcrypt    = "django-bcrypt"
	FormatDjangoBcryptSHA = "django-bcrypt-sha256"
	FormatArgon2          = "argon2"
	FormatSpringArgon2    = "spring-argon2"
	FormatDjangoArgon2    = "django-argon2"
	FormatDjangoPBKDF2    = "django-pbkdf2-sha256"
	FormatPasslibPBKDF2   = "passlib-pbkdf2-sha256"
	FormatSpringPBKDF2    = "spring-pbkdf2"
	FormatUnknown         = "unknown"
)

// formatPrefixes maps prefixes to formats, longest first where one prefix
// starts another.
var formatPrefixes = []struct{ prefix, format string }{
	{"$2a$", FormatBcrypt}, {"$2b$", FormatBcrypt}, {"$2y$", FormatBcrypt},
	{"{bcrypt}", FormatSpringBcrypt},
	{"bcrypt_sha256$", FormatDjangoBcryptSHA},
	{"bcrypt$", FormatDjangoBcrypt},
	{"$argon2id$", FormatArgon2}, {"$argon2i$", FormatArgon2},
	{"{argon2@SpringSecurity_v5_8}", FormatSpringArgon2}, {"{argon2}", FormatSpringArgon2},
	{"argon2$", FormatDjangoArgon2},
	{"pbkdf2_sha256$", FormatDjangoPBKDF2},
	{"$pbkdf2-sha256$", FormatPasslibPBKDF2},
	{"{pbkdf2@SpringSecurity_v5_8}", FormatSpringPBKDF2}, {"{pbkdf2}", FormatSpringPBKDF2},
}

// FormatOf names the format an encoded hash claims by its prefix, without
// parsing the rest; FormatUnknown if none. Safe to log: it never returns any
// part of the hash.
func FormatOf(encoded string) string {
	for _, f := range formatPrefixes {
		if strings.HasPrefix(encoded, f.prefix) {
			return f.format
		}
	}
	return FormatUnknown
}

func (h *Hasher) parse(encoded string) (*parsed, error) {
	if len(encoded) > maxEncodedLen {
		return nil, fmt.Errorf("%w: encoded hash longer than %d bytes", ErrUnknownHashFormat, maxEncodedLen)
	}
	var p *parsed
	var err error
	switch {
	case strings.HasPrefix(encoded, "$2"):
		p, err = h.parseBcrypt(encoded)
	case strings.HasPrefix(encoded, "{bcrypt}"):
		p, err = behindPrefix(encoded, "{bcrypt}", FormatSpringBcrypt, h.parseBcrypt)
	case strings.HasPrefix(encoded, "bcrypt_sha256$"):
		p, err = h.parseDjangoBcryptSHA256(encoded)
	case strings.HasPrefix(encoded, "bcrypt$"):
		p, err = behindPrefix(encoded, "bcrypt$", FormatDjangoBcrypt, h.parseBcrypt)
	case strings.HasPrefix(encoded, "$argon2"):
		p, err = h.parseArgon2(encoded)
	case strings.HasPrefix(encoded, "{argon2}"), strings.HasPrefix(encoded, "{argon2@SpringSecurity_v5_8}"):
		// Spring's Argon2PasswordEncoder writes the PHC string; the id only
		// names which defaults wrote it, and the string carries them.
		prefix := encoded[:strings.IndexByte(encoded, '}')+1]
		p, err = behindPrefix(encoded, prefix, FormatSpringArgon2, h.parseArgon2)
	case strings.HasPrefix(encoded, "argon2$"):
		// Django: "argon2" + the PHC string argon2-cffi wrote.
		p, err = behindPrefix(encoded, "argon2", FormatDjangoArgon2, h.parseArgon2)
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		p, err = h.parseDjangoPBKDF2(encoded)
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"):
		p, err = h.parsePHCPBKDF2(encoded)
	case strings.HasPrefix(encoded, "{pbkdf2}"):
		p, err = h.parseSpringPBKDF2(encoded[len("{pbkdf2}"):], h.spring, "{pbkdf2}")
	case strings.HasPrefix(encoded, "{pbkdf2@SpringSecurity_v5_8}"):
		p, err = h.parseSpringPBKDF2(encoded[len("{pbkdf2@SpringSecurity_v5_8}"):], springV58, "{pbkdf2@SpringSecurity_v5_8}")
	default:
		return nil, ErrUnknownHashFormat
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// behindPrefix parses what follows a framework's prefix with parse, and
// names the result format (wrapFormat).
func behindPrefix(encoded, prefix, format string, parse func(string) (*parsed, error)) (*parsed, error) {
	p, err := parse(encoded[len(prefix):])
	return wrapFormat(p, format, prefix), err
}

// wrapFormat renames a parsed hash found behind a framework prefix and makes
// its dummies carry the prefix too.
func wrapFormat(p *parsed, format, prefix string) *parsed {
	if p == nil {
		return nil
	}
	inner := p.reencode
	p.format = format
	p.reencode = func(salt, digest []byte) string { return prefix + inner(salt, digest) }
	return p
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
