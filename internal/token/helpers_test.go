package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
)

// testKeysDir holds one key per algorithm, written by
//
//	go test ./internal/token -update
//
// Its kids sort as ec-1 < ed-1 < hs-1 < rsa-1.
const testKeysDir = "testdata/keys"

var updateTestdata = flag.Bool("update", false, "regenerate testdata/keys")

// TestMain regenerates testdata/keys before the tests when run with -update;
// a plain run only reads them.
func TestMain(m *testing.M) {
	flag.Parse()
	if *updateTestdata {
		if err := writeTestdataKeys(); err != nil {
			fmt.Fprintln(os.Stderr, "regenerating testdata/keys:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func writeTestdataKeys() error {
	for kid, alg := range kidAlgs {
		_ = os.Remove(filepath.Join(testKeysDir, kid+".pem"))
		if _, err := GenerateKeyFile(testKeysDir, kid, alg); err != nil {
			return err
		}
	}
	return nil
}

var kidAlgs = map[string]string{"ed-1": AlgEdDSA, "ec-1": AlgES256, "rsa-1": AlgRS256, "hs-1": AlgHS256}

var kidOfAlg = map[string]string{AlgEdDSA: "ed-1", AlgES256: "ec-1", AlgRS256: "rsa-1", AlgHS256: "hs-1"}

var allAlgs = []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}

var (
	testRingOnce sync.Once
	testRing     *KeyRing
	testRingErr  error
)

// loadTestRing is the testdata ring with alg's key signing.
func loadTestRing(t testing.TB, alg string) *KeyRing {
	t.Helper()
	testRingOnce.Do(func() { testRing, testRingErr = LoadKeyRing(testKeysDir, "") })
	if testRingErr != nil {
		t.Fatalf("LoadKeyRing(%s): %v", testKeysDir, testRingErr)
	}
	r, err := testRing.WithSigning(kidOfAlg[alg])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newFakeClock() *fakeclock.Clock {
	// Mid-second on purpose: iat truncation must not hide off-by-one errors.
	return fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 500_000_000, time.UTC))
}

type env struct {
	svc   *Service
	clock *fakeclock.Clock
	st    *store.Memory
	rev   *Revocations
	ring  *KeyRing
}

type envOption func(*Options)

func withCache(n int64) envOption { return func(c *Options) { c.CacheBytes = n } }

// withFixedRand makes ids repeat, so separate processes (fuzz workers) issue
// byte-identical tokens.
func withFixedRand() envOption {
	return func(c *Options) { c.Rand = fixedReader{} }
}

type fixedReader struct{}

func (fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// newEnv builds a Service over a memory store with a fake clock, signing with alg.
func newEnv(t testing.TB, alg string, opts ...envOption) *env {
	t.Helper()
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	rev := NewRevocations(st, clock.Now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Clock: clock.Now, CacheBytes: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	ring := loadTestRing(t, alg)
	svc, err := NewService(cfg, ring, st, rev)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, clock: clock, st: st, rev: rev, ring: ring}
}

var alice = Subject{UserID: "u-alice", Email: "alice@example.com", ClientID: "mobile", Roles: []string{"user"}}

func (e *env) issue(t testing.TB, sub Subject) Pair {
	t.Helper()
	p, err := e.svc.Issue(context.Background(), sub)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return p
}

// claimsMap is a valid claim set for e's service at the current fake time.
func (e *env) claimsMap() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{
		"iss": DefaultIssuer, "aud": []string{DefaultAudience}, "sub": "u-alice",
		"client_id": "mobile", "sid": "sid-1", "jti": "jti-1",
		"iat": now, "exp": now + 600,
	}
}

// forge builds a token from any header and claims, signed with method and key
// (nil method: the signature segment is sig as given).
func forge(t testing.TB, header, claims map[string]any, method jwt.SigningMethod, key any) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := b64(h) + "." + b64(c)
	if method == nil {
		return signing + "."
	}
	sig, err := method.Sign(signing, key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return signing + "." + b64(sig)
}

func hdr(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}
}

// wantSentinel fails unless err wraps want.
func wantSentinel(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v; want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v; want one wrapping %v", err, want)
	}
}

// oneSentinel reports whether err wraps exactly one verification sentinel.
func oneSentinel(err error) bool {
	n := 0
	for _, s := range []error{auth.ErrInvalid, auth.ErrExpired, auth.ErrRevoked} {
		if errors.Is(err, s) {
			n++
		}
	}
	return n == 1
}

func segments(tok string) []string { return strings.Split(tok, ".") }

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeSeg(t testing.TB, seg string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// withDefaultCache is the verified-token cache of a default configuration.
func withDefaultCache() envOption { return withCache(DefaultCacheBytes) }

// withSmallCache holds far fewer tokens than BenchmarkVerifyAccessLive cycles through.
func withSmallCache() envOption { return withCache(512 << 10) }

// unsafeString aliases b the way fasthttp's request strings alias its
// buffers.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// legacyRefresh stores a refresh token of the kind issued before refresh
// state moved into the login's hash (rt_<secret>, a JSON record under
// ts:rt:<hex SHA-256>), exactly as storeRefresh wrote it then, and returns
// the token and its hash. fam 0 leaves out the family start, as records
// written before families had one.
func (e *env) legacyRefresh(t testing.TB, sid string, sub Subject, iat time.Time, fam int64, ttl time.Duration) (string, string) {
	t.Helper()
	var b [refreshRandBytes]byte
	if _, err := io.ReadFull(e.svc.cfg.Rand, b[:]); err != nil {
		t.Fatal(err)
	}
	raw := refreshPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	p, err := parseRefresh(raw)
	if err != nil || p.sid != "" {
		t.Fatalf("parseRefresh(legacy) = %+v, %v", p, err)
	}
	rec := map[string]any{
		"sid": sid, "user": sub.UserID, "email": sub.Email, "client": sub.ClientID, "roles": sub.Roles,
		"exp": iat.Add(ttl).UnixNano(), "iat": iat.UnixNano(),
	}
	if fam != 0 {
		rec["fam"] = fam
	}
	old, _ := json.Marshal(rec)
	if err := e.st.SetCtx(context.Background(), refreshKey(p.hash), old, ttl); err != nil {
		t.Fatal(err)
	}
	return raw, p.hash
}
