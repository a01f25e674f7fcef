package user

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Vectors computed outside Go, so a bug shared by our encoder helpers and
// CheckPassword cannot hide:
//
//	python3 -c "import hashlib,base64; print(base64.b64encode(hashlib.pbkdf2_hmac('sha256',
//	  b'correct horse battery staple', b'seasalt2024xyz', 20000)).decode())"
//	echo -n 'correct horse battery staple' | argon2 saltsaltsalt16b -id -t 2 -m 10 -p 2 -l 32 -e
//	python3 -c "import crypt; print(crypt.crypt('correct horse battery staple', '\$2b\$05\$abcdefghijklmnopqrstuu'))"
//	python3 -c "import crypt; print(crypt.crypt('hunter2', '\$2y\$04\$ABCDEFGHIJKLMNOPQRSTUu'))"
//	passlib's format, by hashlib with salt bytes 0..15 and ab64 encoding.
const (
	pyDjangoVector   = "pbkdf2_sha256$20000$seasalt2024xyz$Si7fekoM7No22hxIhc+rXmpSdeA/HNApuhJ0ISLfB7U="
	refArgon2Vector  = "$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs"
	cryptBcrypt2b    = "$2b$05$abcdefghijklmnopqrstuuFiPhXf1sVd3pCCRO.uVh34H/qI/ZsuS"
	cryptBcrypt2y    = "$2y$04$ABCDEFGHIJKLMNOPQRSTUuJpKAV2XDDA/iejWFu3tzYAxBETWIgAe"
	pyPasslibVector  = "$pbkdf2-sha256$29000$AAECAwQFBgcICQoLDA0ODw$MDrNnPAEzDBR1jl.jpjAT7UDBDYSkI6GgxCT0lS5Vxk"
	vectorPassword   = "correct horse battery staple"
	passlibPassword  = "tr0ub4dor&3"
	cryptY2bPassword = "hunter2"
)

func encodeArgon2id(password string, salt []byte, m, t uint32, p uint8, keyLen uint32, enc *base64.Encoding) string {
	h := argon2.IDKey([]byte(password), salt, t, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, enc.EncodeToString(salt), enc.EncodeToString(h))
}

func encodeDjango(password, salt string, iter int) string {
	h, err := pbkdf2.Key(sha256.New, password, []byte(salt), iter, sha256.Size)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iter, salt, base64.StdEncoding.EncodeToString(h))
}

func encodePHCPBKDF2(password string, salt []byte, iter int) string {
	h, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		panic(err)
	}
	b := base64.RawStdEncoding
	return fmt.Sprintf("$pbkdf2-sha256$i=%d,l=%d$%s$%s", iter, len(h), b.EncodeToString(salt), b.EncodeToString(h))
}

func mustBcrypt(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// stubEqualize replaces the timing-equalising bcrypt run with a counter, so
// tests of many broken hashes stay fast and can see that it ran.
func stubEqualize(t testing.TB) *int {
	t.Helper()
	calls := 0
	orig := equalizeCost
	equalizeCost = func(string) { calls++ }
	t.Cleanup(func() { equalizeCost = orig })
	return &calls
}

func TestCheckPassword(t *testing.T) {
	calls := stubEqualize(t)
	const pw = "s3cret-Passw0rd"
	salt16 := []byte("0123456789abcdef")
	bc := mustBcrypt(t, pw)
	tests := []struct {
		name     string
		encoded  string
		password string
		want     bool
		wantErr  error
	}{
		{name: "bcrypt 2a generated", encoded: bc, password: pw, want: true},
		{name: "bcrypt wrong password", encoded: bc, password: pw + "x"},
		{name: "bcrypt 2b from libxcrypt", encoded: cryptBcrypt2b, password: vectorPassword, want: true},
		{name: "bcrypt 2b wrong password", encoded: cryptBcrypt2b, password: "correct horse battery stapl"},
		{name: "bcrypt 2y (PHP) from libxcrypt", encoded: cryptBcrypt2y, password: cryptY2bPassword, want: true},
		{name: "bcrypt 2b prefix on generated hash", encoded: "$2b$" + bc[4:], password: pw, want: true},
		{name: "bcrypt 2x refused", encoded: "$2x$" + bc[4:], password: pw, wantErr: ErrUnknownHashFormat},
		{name: "bcrypt truncated", encoded: bc[:59], password: pw, wantErr: ErrUnknownHashFormat},
		{name: "bcrypt cost above limit", encoded: "$2b$17$" + bc[7:], password: pw, wantErr: ErrHashTooCostly},
		{name: "bcrypt cost 31 never attempted", encoded: "$2b$31$" + bc[7:], password: pw, wantErr: ErrHashTooCostly},
		{name: "bcrypt cost not a number", encoded: "$2b$1x$" + bc[7:], password: pw, wantErr: ErrUnknownHashFormat},

		{name: "argon2id raw base64", encoded: encodeArgon2id(pw, salt16, 1024, 1, 1, 32, base64.RawStdEncoding), password: pw, want: true},
		{name: "argon2id padded base64", encoded: encodeArgon2id(pw, []byte("salty-salt"), 512, 2, 2, 33, base64.StdEncoding), password: pw, want: true},
		{name: "argon2id wrong password", encoded: encodeArgon2id(pw, salt16, 1024, 1, 1, 32, base64.RawStdEncoding), password: "S3cret-Passw0rd"},
		{name: "argon2id reference CLI vector", encoded: refArgon2Vector, password: vectorPassword, want: true},
		{name: "argon2id reference CLI wrong password", encoded: refArgon2Vector, password: "correct horse battery stable"},
		{name: "argon2id params reordered", encoded: strings.Replace(refArgon2Vector, "m=1024,t=2,p=2", "p=2,t=2,m=1024", 1), password: vectorPassword, want: true},
		{name: "argon2id other params give other hash", encoded: strings.Replace(refArgon2Vector, "t=2", "t=3", 1), password: vectorPassword},
		{name: "argon2id memory above 1GiB", encoded: strings.Replace(refArgon2Vector, "m=1024", "m=1048577", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "argon2id memory 4GiB", encoded: strings.Replace(refArgon2Vector, "m=1024", "m=4194304", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "argon2id time above 20", encoded: strings.Replace(refArgon2Vector, "t=2", "t=21", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "argon2id threads above 64", encoded: strings.Replace(refArgon2Vector, "p=2", "p=65", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "argon2id threads 255", encoded: strings.Replace(refArgon2Vector, "m=1024,t=2,p=2", "m=4096,t=2,p=255", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "argon2id zero time", encoded: strings.Replace(refArgon2Vector, "t=2", "t=0", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id zero threads", encoded: strings.Replace(refArgon2Vector, "p=2", "p=0", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id memory below 8 per lane", encoded: strings.Replace(refArgon2Vector, "m=1024", "m=15", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id version 16", encoded: strings.Replace(refArgon2Vector, "v=19", "v=16", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id missing version", encoded: strings.Replace(refArgon2Vector, "$v=19", "", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id missing param", encoded: strings.Replace(refArgon2Vector, ",p=2", "", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id repeated param", encoded: strings.Replace(refArgon2Vector, "p=2", "p=2,p=2", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id unknown param", encoded: strings.Replace(refArgon2Vector, "p=2", "p=2,x=1", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id negative param", encoded: strings.Replace(refArgon2Vector, "t=2", "t=-2", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id huge param", encoded: strings.Replace(refArgon2Vector, "m=1024", "m=99999999999999999999", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id bad salt base64", encoded: strings.Replace(refArgon2Vector, "c2FsdHNhbHRzYWx0MTZi", "c2F*dHNh", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id empty salt", encoded: strings.Replace(refArgon2Vector, "c2FsdHNhbHRzYWx0MTZi", "", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id short hash", encoded: "$argon2id$v=19$m=1024,t=2,p=2$c2FsdHNhbHRzYWx0MTZi$AAAA", password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2id extra field", encoded: refArgon2Vector + "$x", password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "argon2i is not argon2id", encoded: strings.Replace(refArgon2Vector, "argon2id", "argon2i", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},

		{name: "django generated", encoded: encodeDjango(pw, "abcDEF123", 1000), password: pw, want: true},
		{name: "django wrong password", encoded: encodeDjango(pw, "abcDEF123", 1000), password: pw[1:]},
		{name: "django python hashlib vector", encoded: pyDjangoVector, password: vectorPassword, want: true},
		{name: "django python vector wrong password", encoded: pyDjangoVector, password: "Correct horse battery staple"},
		{name: "django vector other iterations", encoded: strings.Replace(pyDjangoVector, "$20000$", "$20001$", 1), password: vectorPassword},
		{name: "django vector unpadded hash", encoded: strings.TrimRight(pyDjangoVector, "="), password: vectorPassword, want: true},
		{name: "django iterations above limit", encoded: strings.Replace(pyDjangoVector, "$20000$", "$10000001$", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "django iterations absurd", encoded: strings.Replace(pyDjangoVector, "$20000$", "$99999999999999999999$", 1), password: vectorPassword, wantErr: ErrHashTooCostly},
		{name: "django zero iterations", encoded: strings.Replace(pyDjangoVector, "$20000$", "$0$", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "django signed iterations", encoded: strings.Replace(pyDjangoVector, "$20000$", "$+20000$", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "django empty salt", encoded: "pbkdf2_sha256$20000$$Si7fekoM7No22hxIhc+rXmpSdeA/HNApuhJ0ISLfB7U=", password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "django bad hash base64", encoded: "pbkdf2_sha256$20000$seasalt2024xyz$!!!", password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "django missing field", encoded: "pbkdf2_sha256$20000$seasalt2024xyz", password: vectorPassword, wantErr: ErrUnknownHashFormat},
		{name: "django sha1 not supported", encoded: strings.Replace(pyDjangoVector, "pbkdf2_sha256", "pbkdf2_sha1", 1), password: vectorPassword, wantErr: ErrUnknownHashFormat},

		{name: "passlib python vector", encoded: pyPasslibVector, password: passlibPassword, want: true},
		{name: "passlib wrong password", encoded: pyPasslibVector, password: "tr0ub4dor&4"},
		{name: "phc i= form generated", encoded: encodePHCPBKDF2(pw, salt16, 1500), password: pw, want: true},
		{name: "phc i= form wrong password", encoded: encodePHCPBKDF2(pw, salt16, 1500), password: "nope"},
		{name: "phc iterations above limit", encoded: "$pbkdf2-sha256$i=10000001$AAECAwQFBgcICQoLDA0ODw$MDrNnPAEzDBR1jl.jpjAT7UDBDYSkI6GgxCT0lS5Vxk", password: passlibPassword, wantErr: ErrHashTooCostly},
		{name: "phc unknown param", encoded: "$pbkdf2-sha256$i=1000,x=1$AAECAwQFBgcICQoLDA0ODw$MDrNnPAEzDBR1jl.jpjAT7UDBDYSkI6GgxCT0lS5Vxk", password: passlibPassword, wantErr: ErrUnknownHashFormat},

		{name: "empty", encoded: "", password: pw, wantErr: ErrUnknownHashFormat},
		{name: "plain text is never a hash", encoded: pw, password: pw, wantErr: ErrUnknownHashFormat},
		{name: "md5 crypt", encoded: "$1$saltsalt$RgDIvBHh4U6WuoPWcM9.T0", password: pw, wantErr: ErrUnknownHashFormat},
		{name: "sha512 crypt", encoded: "$6$salt$abc", password: pw, wantErr: ErrUnknownHashFormat},
		{name: "oversized encoding", encoded: "$argon2id$" + strings.Repeat("A", 5000), password: pw, wantErr: ErrUnknownHashFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := *calls
			got, err := CheckPassword(tc.encoded, tc.password)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("CheckPassword error = %v, want %v", err, tc.wantErr)
				}
				if got {
					t.Fatal("CheckPassword returned true with an error")
				}
				if *calls != before+1 {
					t.Fatal("error path skipped the timing-equalising work")
				}
				if strings.Contains(err.Error(), tc.password) {
					t.Fatal("error message contains the password")
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckPassword error = %v", err)
			}
			if got != tc.want {
				t.Fatalf("CheckPassword = %v, want %v", got, tc.want)
			}
			if *calls != before {
				t.Fatal("timing-equalising work ran on a checkable hash")
			}
		})
	}
}

// The refused parameters must be refused before any work: a 4 GiB argon2 or a
// ten-billion-round PBKDF2 would take far longer than this bound.
func TestCheckPasswordRefusesBeforeWork(t *testing.T) {
	stubEqualize(t)
	for _, encoded := range []string{
		"$argon2id$v=19$m=4194304,t=20,p=64$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs",
		"$argon2id$v=19$m=1048576,t=4000,p=1$c2FsdHNhbHRzYWx0MTZi$SKykaD65MxT+pEvOzvp4/phvEAfXcAx4vVx0JVQvpHs",
		"pbkdf2_sha256$999999999$seasalt2024xyz$Si7fekoM7No22hxIhc+rXmpSdeA/HNApuhJ0ISLfB7U=",
		"$pbkdf2-sha256$i=999999999$AAECAwQFBgcICQoLDA0ODw$MDrNnPAEzDBR1jl.jpjAT7UDBDYSkI6GgxCT0lS5Vxk",
		"$2b$31$abcdefghijklmnopqrstuuFiPhXf1sVd3pCCRO.uVh34H/qI/ZsuS",
	} {
		start := time.Now()
		_, err := CheckPassword(encoded, "pw")
		if !errors.Is(err, ErrHashTooCostly) {
			t.Errorf("%.30s: error = %v, want ErrHashTooCostly", encoded, err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("%.30s: took %v, must refuse without hashing", encoded, d)
		}
	}
}

// Without the stub, a hash that cannot be checked costs about a bcrypt run,
// as a wrong password does, so response time does not reveal broken rows.
func TestCheckPasswordErrorCostsLikeBcrypt(t *testing.T) {
	start := time.Now()
	if _, err := CheckPassword("not-a-hash", "pw"); !errors.Is(err, ErrUnknownHashFormat) {
		t.Fatalf("error = %v", err)
	}
	unknown := time.Since(start)
	// The fastest of two reference runs, so a scheduling hiccup on a busy
	// machine cannot make the unknown-format path look cheap.
	ref := time.Duration(1 << 62)
	for range 2 {
		start = time.Now()
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte("pw"))
		ref = min(ref, time.Since(start))
	}
	if unknown < ref/4 {
		t.Fatalf("unknown format took %v, a bcrypt comparison %v: timing leaks", unknown, ref)
	}
}

func TestCheckPasswordAsVerifierChecker(t *testing.T) {
	stubEqualize(t)
	doc := fmt.Sprintf(`users:
  - {id: u1, email: Argon@Example.com, password_hash: %q, roles: [user]}
  - {id: u2, email: django@example.com, password_hash: %q}
  - {id: u3, email: broken@example.com, password_hash: "md5:abc"}
`, refArgon2Vector, pyDjangoVector)
	fs, err := ParseFile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(fs, CheckPassword)
	ctx := context.Background()
	for _, login := range []string{"argon@example.com", "DJANGO@example.com"} {
		if _, err := v.Verify(ctx, login, vectorPassword); err != nil {
			t.Errorf("Verify(%s) = %v", login, err)
		}
		if _, err := v.Verify(ctx, login, "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("Verify(%s, wrong) = %v, want ErrInvalidCredentials", login, err)
		}
	}
	if _, err := v.Verify(ctx, "broken@example.com", "md5:abc"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Verify(unknown format) = %v, want ErrInvalidCredentials", err)
	}
}

func FuzzCheckPassword(f *testing.F) {
	// Shrunk limits keep every input cheap, so the fuzzer explores parsing
	// rather than waiting on a legitimately expensive hash.
	orig := hashLimits
	hashLimits.bcryptCost, hashLimits.argon2MemoryKiB, hashLimits.argon2Time, hashLimits.pbkdf2Iter = 5, 256, 2, 3000
	defer func() { hashLimits = orig }()
	stubEqualize(f)

	cheapBcrypt := mustBcrypt(f, "pw")
	for _, seed := range []struct{ encoded, password string }{
		{cheapBcrypt, "pw"},
		{cryptBcrypt2y, "hunter2"},
		{encodeArgon2id("pw", []byte("saltsalt"), 64, 1, 1, 16, base64.RawStdEncoding), "pw"},
		{encodeArgon2id("pw", []byte("saltsalt"), 64, 1, 2, 16, base64.StdEncoding), "pw"},
		{encodeDjango("pw", "abc", 100), "pw"},
		{encodePHCPBKDF2("pw", []byte("saltsalt"), 100), "pw"},
		{"$pbkdf2-sha256$100$AAECAwQFBgcICQoLDA0ODw$MDrNnPAEzDBR1jl.jpjAT7UDBDYSkI6GgxCT0lS5Vxk", "x"},
		{pyDjangoVector, vectorPassword},
		{refArgon2Vector, vectorPassword},
		{"$argon2id$v=19$m=,t=,p=$$", ""},
		{"$argon2id$v=19$m=8,t=1,p=1$$", "x"},
		{"$argon2id$$$$$", ""},
		{"pbkdf2_sha256$$$", ""},
		{"$pbkdf2-sha256$i=$$", ""},
		{"$2b$", ""},
		{"$2y$04$" + strings.Repeat(".", 53), "\x00"},
		{"", ""},
		{"\xff\xfe$argon2id$", "\xff"},
	} {
		f.Add(seed.encoded, seed.password)
	}
	f.Fuzz(func(t *testing.T, encoded, password string) {
		ok, err := CheckPassword(encoded, password)
		if err != nil && ok {
			t.Fatalf("ok with error %v", err)
		}
		if err != nil && !errors.Is(err, ErrUnknownHashFormat) && !errors.Is(err, ErrHashTooCostly) {
			t.Fatalf("unexpected error class %v", err)
		}
		// Round trip: a hash we make for this password must verify, and not
		// for another one.
		if len(password) > 0 && len(password) <= 72 {
			h := encodeDjango(password, "fz", 2)
			if ok, err := CheckPassword(h, password); !ok || err != nil {
				t.Fatalf("own Django hash rejected: %v %v", ok, err)
			}
			if ok, _ := CheckPassword(h, password+"!"); ok {
				t.Fatal("own Django hash accepted another password")
			}
		}
	})
}
