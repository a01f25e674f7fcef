package user

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
)

// mapStore is a Store over a map, for Verifier tests; lookups count.
type mapStore struct {
	users   map[string]*User
	lookups atomic.Int64
	err     error
}

func (m *mapStore) Lookup(_ context.Context, login string) (*User, error) {
	m.lookups.Add(1)
	if m.err != nil {
		return nil, m.err
	}
	u, ok := m.users[NormalizeLogin(login)]
	if !ok {
		return nil, fmt.Errorf("user %w", auth.ErrNotFound)
	}
	cp := *u
	return &cp, nil
}

func newMapStore(users ...*User) *mapStore {
	m := &mapStore{users: map[string]*User{}}
	for _, u := range users {
		m.users[NormalizeLogin(u.Email)] = u
	}
	return m
}

// Every store gets every format: the file store used to be held to bcrypt.
func TestVerifierEveryFormatEveryStore(t *testing.T) {
	users := []struct {
		email, hash, password string
	}{
		{"bcrypt@x", cryptBcrypt2b, vectorPassword},
		{"htpasswd@x", htpasswdBcrypt, htpasswdBcryptPW},
		{"spring-bcrypt@x", "{bcrypt}" + cryptBcrypt2a, cryptBcrypt2aPW},
		{"spring-argon@x", "{argon2}" + springTestArgon2, "sometestpassword"},
		{"spring-pbkdf2@x", "{pbkdf2@SpringSecurity_v5_8}" + pySpringV58, pySpringV58PW},
		{"django-argon@x", djangoTestArgon2i, "secret"},
		{"django-bcrypt-sha256@x", pyBcryptSHA256, pyBcryptSHA256PW},
		{"django-pbkdf2@x", pyDjangoVector, vectorPassword},
		{"argon2id@x", refArgon2Vector, vectorPassword},
		{"passlib@x", pyPasslibVector, passlibPassword},
	}
	var doc strings.Builder
	doc.WriteString("users:\n")
	for i, u := range users {
		fmt.Fprintf(&doc, "  - {id: u%d, email: %q, password_hash: %q}\n", i, u.email, u.hash)
	}
	fs, err := ParseFile([]byte(doc.String()))
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(fs, nil)
	ctx := context.Background()
	for i, u := range users {
		got, err := v.Verify(ctx, u.email, u.password)
		if err != nil || got.ID != fmt.Sprintf("u%d", i) {
			t.Errorf("%s: Verify = %v, %v", u.email, got, err)
		}
		if _, err := v.Verify(ctx, u.email, u.password+"x"); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s wrong password: %v, want ErrInvalidCredentials", u.email, err)
		}
	}
}

// The 72-byte rule is bcrypt's alone; every format stops at 1 KiB.
func TestVerifierPasswordLengthRules(t *testing.T) {
	long100 := strings.Repeat("p", 100)
	long1024 := strings.Repeat("q", MaxPasswordBytes)
	long1025 := long1024 + "q"
	salt := []byte("0123456789abcdef")
	argonHash := func(pw string) string { return encodeArgon2id(pw, salt, 64, 1, 1, 32, base64.RawStdEncoding) }
	fs := newMapStore(
		&User{ID: "b72", Email: "b72@x", PasswordHash: mustBcrypt(t, long100[:72])},
		&User{ID: "a100", Email: "a100@x", PasswordHash: argonHash(long100)},
		&User{ID: "a1024", Email: "a1024@x", PasswordHash: argonHash(long1024)},
		&User{ID: "a1025", Email: "a1025@x", PasswordHash: argonHash(long1025)},
		&User{ID: "d100", Email: "d100@x", PasswordHash: encodeDjango(long100, "s", 10)},
	)
	v := NewVerifier(fs, nil)
	tests := []struct {
		name, login, password string
		wantErr               error
	}{
		{name: "bcrypt 72 bytes", login: "b72@x", password: long100[:72]},
		{name: "bcrypt 73 bytes sharing the first 72", login: "b72@x", password: long100[:73], wantErr: ErrInvalidCredentials},
		{name: "argon2 100 bytes", login: "a100@x", password: long100},
		{name: "argon2 first 72 of 100 are not enough", login: "a100@x", password: long100[:72], wantErr: ErrInvalidCredentials},
		{name: "pbkdf2 100 bytes", login: "d100@x", password: long100},
		{name: "argon2 1024 bytes", login: "a1024@x", password: long1024},
		{name: "1025 bytes never checked, even when the hash matches", login: "a1025@x", password: long1025, wantErr: ErrInvalidCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.login, tc.password)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestVerifierBusy(t *testing.T) {
	fs := newMapStore(&User{ID: "u", Email: "u@x", PasswordHash: mustBcrypt(t, "pw")})
	v := NewVerifier(fs, &VerifierOptions{MaxConcurrent: 1, QueueTimeout: 80 * time.Millisecond})
	if st := v.Stats(); st.Capacity != 1 || st.InFlight != 0 {
		t.Fatalf("stats %+v", st)
	}
	v.sem <- struct{}{} // every slot taken
	start := time.Now()
	_, err := v.Verify(context.Background(), "u@x", "pw")
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify with no slot = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 70*time.Millisecond || d > 2*time.Second {
		t.Fatalf("waited %v for a slot, queue timeout 80ms", d)
	}
	// Unknown users queue for the same slots: otherwise they would answer
	// at once and tell themselves apart.
	if _, err := v.Verify(context.Background(), "nobody@x", "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("unknown user with no slot = %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	if _, err := v.Verify(ctx, "u@x", "pw"); !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with an ended request = %v, want ErrBusy and context.Canceled", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("an ended request still waited %v", d)
	}
	if st := v.Stats(); st.Busy != 3 || st.InFlight != 1 {
		t.Fatalf("stats %+v, want 3 busy, 1 in flight", st)
	}
	<-v.sem
	if _, err := v.Verify(context.Background(), "u@x", "pw"); err != nil {
		t.Fatalf("Verify with a free slot: %v", err)
	}
}

// The semaphore holds under load: never more verifications at once than
// MaxConcurrent, and it does fill up. The dummy is swapped for one that
// records how many run together.
func TestVerifierBoundsConcurrency(t *testing.T) {
	v := NewVerifier(newMapStore(), &VerifierOptions{MaxConcurrent: 2, QueueTimeout: 30 * time.Second})
	var running, maxSeen atomic.Int64
	v.dummy.Store(&dummy{settled: true, source: "probe", p: &parsed{maxPassword: MaxPasswordBytes, verify: func([]byte) bool {
		n := running.Add(1)
		for {
			m := maxSeen.Load()
			if n <= m || maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return false
	}}})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), "nobody@x", "pw"); !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if m := maxSeen.Load(); m != 2 {
		t.Fatalf("at most %d verifications ran at once, want exactly the bound 2", m)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// An unknown login must cost what a real one does even when the real users'
// format is slower than the built-in bcrypt dummy: the dummy takes the first
// real user's format and parameters. The same measurement with the built-in
// dummy forced shows the gap calibration closes.
func TestVerifierCalibratesDummy(t *testing.T) {
	// About three bcrypt-10 runs on this kind of machine.
	slow := encodeArgon2id("right", []byte("saltsaltsaltsalt"), 32<<10, 8, 1, 32, base64.RawStdEncoding)
	doc := fmt.Appendf(nil, "users:\n  - {id: u1, email: a@x, password_hash: %q}\n", slow)
	fs, err := ParseFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	calibrated := NewVerifier(fs, nil)
	if d := calibrated.Stats().Dummy; !strings.Contains(d, "calibrated argon2 argon2id m=32768 t=8 p=1") {
		t.Fatalf("dummy = %q, want it calibrated on the file's first user", d)
	}
	bcrypt10, err := bcryptAtCost("x", 10)
	if err != nil {
		t.Fatal(err)
	}
	uncalibrated := NewVerifier(fs, &VerifierOptions{DummyHash: bcrypt10})
	ratio := func(v *Verifier, rounds int) float64 {
		ctx := context.Background()
		var known, unknown []time.Duration
		for range rounds {
			start := time.Now()
			_, _ = v.Verify(ctx, "a@x", "wrong")
			known = append(known, time.Since(start))
			start = time.Now()
			_, _ = v.Verify(ctx, "nobody@x", "wrong")
			unknown = append(unknown, time.Since(start))
		}
		k, u := median(known), median(unknown)
		r := float64(u) / float64(k)
		t.Logf("%s: median wrong password %v, unknown user %v (ratio %.2f)", v.Stats().Dummy, k, u, r)
		return r
	}
	rc := ratio(calibrated, 5)
	ru := ratio(uncalibrated, 3)
	if rc < 0.6 || rc > 1.7 {
		t.Fatalf("calibrated: unknown/known time ratio %.2f, want about 1", rc)
	}
	if dist := func(r float64) float64 { return max(r, 1/r) }; dist(rc) >= dist(ru) {
		t.Fatalf("calibration did not bring the ratio closer to 1: %.2f calibrated vs %.2f with bcrypt-10", rc, ru)
	}
}

func TestVerifierDummySources(t *testing.T) {
	slow := encodeArgon2id("right", []byte("saltsaltsaltsalt"), 1024, 1, 1, 32, base64.RawStdEncoding)
	t.Run("configured wins over calibration", func(t *testing.T) {
		fs, _ := ParseFile(fmt.Appendf(nil, "users:\n  - {id: u1, email: a@x, password_hash: %q}\n", slow))
		v := NewVerifier(fs, &VerifierOptions{DummyHash: cryptBcrypt2y})
		if d := v.Stats().Dummy; d != "configured bcrypt cost=04" {
			t.Fatalf("dummy = %q", d)
		}
	})
	t.Run("a bad configured dummy falls back to calibration", func(t *testing.T) {
		var logs logbuf.Buffer
		fs, _ := ParseFile(fmt.Appendf(nil, "users:\n  - {id: u1, email: a@x, password_hash: %q}\n", slow))
		v := NewVerifier(fs, &VerifierOptions{DummyHash: "md5$nope", Logger: logs.TextLogger()})
		if d := v.Stats().Dummy; !strings.HasPrefix(d, "calibrated argon2") {
			t.Fatalf("dummy = %q", d)
		}
		if !strings.Contains(logs.String(), "users.dummy_hash") {
			t.Fatalf("no error logged: %s", logs.String())
		}
	})
	t.Run("a store without a list calibrates at its first real user", func(t *testing.T) {
		st := newMapStore(
			&User{ID: "broken", Email: "broken@x", PasswordHash: "md5$x$y"},
			&User{ID: "u", Email: "u@x", PasswordHash: slow},
		)
		v := NewVerifier(st, nil)
		if d := v.Stats().Dummy; d != "default bcrypt cost=10" {
			t.Fatalf("dummy before any lookup = %q", d)
		}
		_, _ = v.Verify(context.Background(), "nobody@x", "pw")
		_, _ = v.Verify(context.Background(), "broken@x", "pw") // unusable: no calibration
		if d := v.Stats().Dummy; d != "default bcrypt cost=10" {
			t.Fatalf("dummy after unknown and broken users = %q", d)
		}
		_, _ = v.Verify(context.Background(), "u@x", "wrong")
		if d := v.Stats().Dummy; d != "calibrated argon2 argon2id m=1024 t=1 p=1" {
			t.Fatalf("dummy after a real user = %q", d)
		}
		other := mustBcrypt(t, "x")
		st.users["u@x"].PasswordHash = other
		_, _ = v.Verify(context.Background(), "u@x", "wrong")
		if d := v.Stats().Dummy; !strings.HasPrefix(d, "calibrated argon2") {
			t.Fatalf("calibration moved on a later user: %q", d)
		}
	})
}

// A row the Verifier cannot use fails its logins, is counted every time,
// and is warned about once per user per interval, never with the hash.
func TestVerifierReportsUnusableHashes(t *testing.T) {
	var logs logbuf.Buffer
	clock := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	costly := strings.Replace(refArgon2Vector, "m=1024", "m=4194304", 1)
	st := newMapStore(
		&User{ID: "md5-user", Email: "md5@x", PasswordHash: "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3"},
		&User{ID: "costly-user", Email: "costly@x", PasswordHash: costly},
	)
	v := NewVerifier(st, &VerifierOptions{Logger: logs.TextLogger(), Clock: clock.Now, WarnInterval: 5 * time.Minute, DummyHash: cryptBcrypt2y})
	ctx := context.Background()
	for range 3 {
		for _, login := range []string{"md5@x", "costly@x"} {
			if _, err := v.Verify(ctx, login, "whatever"); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("%s: %v, want ErrInvalidCredentials", login, err)
			}
		}
	}
	st2 := v.Stats()
	if st2.HashUnknownFormat != 3 || st2.HashOverLimit != 3 {
		t.Fatalf("counters %+v, want 3 and 3", st2)
	}
	out := logs.String()
	if n := strings.Count(out, "user_id=md5-user"); n != 1 {
		t.Fatalf("%d warnings for md5-user in one interval, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "user_id=costly-user"); n != 1 || !strings.Contains(out, "reason=over_limit") || !strings.Contains(out, "reason=unknown_format") {
		t.Fatalf("warnings:\n%s", out)
	}
	for _, secret := range []string{"3f86d0d3d465b7b458c231bf3555c0e3", "SKykaD65MxT", "c2FsdHNhbHRzYWx0MTZi", "whatever"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log holds hash material or the password %q:\n%s", secret, out)
		}
	}
	clock.Advance(6 * time.Minute)
	_, _ = v.Verify(ctx, "md5@x", "whatever")
	if n := strings.Count(logs.String(), "user_id=md5-user"); n != 2 {
		t.Fatalf("%d warnings for md5-user after the interval, want 2", n)
	}
}

func TestVerifierStoreErrors(t *testing.T) {
	st := newMapStore()
	v := NewVerifier(st, nil)
	for _, cause := range []error{fmt.Errorf("db: %w", auth.ErrUnavailable), fmt.Errorf("%w: two rows", ErrSQLConfig)} {
		st.err = cause
		_, err := v.Verify(context.Background(), "a@x", "pw")
		if !errors.Is(err, cause) || errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("store error %v surfaced as %v", cause, err)
		}
	}
	// Input that cannot be a login never reaches the store.
	st.err = nil
	before := st.lookups.Load()
	for _, in := range [][2]string{{"", "pw"}, {"a@x", ""}, {strings.Repeat("a", 321), "pw"}} {
		if _, err := v.Verify(context.Background(), in[0], in[1]); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Verify(%.10q, %q) = %v", in[0], in[1], err)
		}
	}
	if st.lookups.Load() != before {
		t.Fatal("empty or oversized input reached the store")
	}
}
