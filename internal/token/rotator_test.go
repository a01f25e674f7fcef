package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

const (
	rotTestTTL    = 10 * time.Minute
	rotTestLeeway = 5 * time.Second
	rotTestDelay  = time.Minute
	rotTestReload = time.Second
)

// keyDir writes an Ed25519 key file per kid into a fresh directory.
func keyDir(t *testing.T, kids ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, kid := range kids {
		addKey(t, dir, kid)
	}
	return dir
}

func addKey(t *testing.T, dir, kid string) {
	t.Helper()
	if _, err := GenerateKeyFile(dir, kid, AlgEdDSA); err != nil {
		t.Fatal(err)
	}
}

func newTestRotator(t *testing.T, st store.Store, dir, id string, clock func() time.Time) *Rotator {
	t.Helper()
	r, err := NewRotator(st, RotatorOptions{
		Dir: dir, SigningKID: "k1", PublishDelay: rotTestDelay, ReloadInterval: rotTestReload,
		AccessTTL: rotTestTTL, Leeway: rotTestLeeway, InstanceID: id, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func loadRotator(t *testing.T, r *Rotator) *KeyRing {
	t.Helper()
	ring, err := r.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return ring
}

// serviceFor builds a token service on r's ring and lets r swap its rings,
// as serve does (without the background loop: tests refresh by hand).
func serviceFor(t *testing.T, r *Rotator, st store.Store, clock func() time.Time) *Service {
	t.Helper()
	rev := NewRevocations(st, clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rev.Start(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(Options{Clock: clock, AccessTTL: rotTestTTL, RefreshTTL: 24 * time.Hour, Leeway: rotTestLeeway, CacheBytes: 1 << 20}, r.Ring(), st, rev)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.apply = svc.SetRing
	r.mu.Unlock()
	return svc
}

func refresh(t *testing.T, r *Rotator) {
	t.Helper()
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func jwksKIDs(t *testing.T, ring *KeyRing) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func issuedKID(t *testing.T, svc *Service) (string, string) {
	t.Helper()
	p, err := svc.Issue(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	return p.AccessToken, kidOfToken(t, p.AccessToken)
}

func kidOfToken(t *testing.T, tok string) string {
	t.Helper()
	var h struct {
		Kid string `json:"kid"`
	}
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}

func keyState(v KeysView, kid string) KeyState {
	for _, k := range v.Keys {
		if k.KID == kid {
			return k.State
		}
	}
	return ""
}

// TestRotatorLifecycle drives one instance through a whole rotation on an
// injected clock: the new key is published before it signs, tokens of the old
// key verify until their expiry, and once the old key is retired a token it
// signed is refused even if it has not expired.
func TestRotatorLifecycle(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	dir := keyDir(t, "k1")
	rot := newTestRotator(t, st, dir, "a", clock.Now)
	loadRotator(t, rot)
	svc := serviceFor(t, rot, st, clock.Now)

	if _, kid := issuedKID(t, svc); kid != "k1" {
		t.Fatalf("first key = %s", kid)
	}
	// oldKeySigner still signs with k1 whatever the rotation says, like a
	// leaked copy of the old key: its tokens show that retirement itself, not
	// expiry, refuses what k1 signs.
	k1Ring, err := LoadKeyRing(dir, "k1")
	if err != nil {
		t.Fatal(err)
	}
	oldKeySigner, err := NewService(Options{Clock: clock.Now, AccessTTL: rotTestTTL, RefreshTTL: 24 * time.Hour, Leeway: rotTestLeeway}, k1Ring, st, svc.Revocations())
	if err != nil {
		t.Fatal(err)
	}
	signWithK1 := func() string {
		t.Helper()
		sub := alice
		sub.SID = "sid-k1"
		tok, _, err := oldKeySigner.IssueAccess(sub, rotTestTTL, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	addKey(t, dir, "k2")
	// A new file alone changes nothing: it does not sign, it is not published.
	refresh(t, rot)
	if got := jwksKIDs(t, svc.Ring()); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("JWKS before rotating = %v", got)
	}
	if v, _ := rot.Keys(ctx); keyState(v, "k2") != KeyAvailable {
		t.Fatalf("k2 before rotating: %+v", v.Keys)
	}

	v, err := rot.Rotate(ctx, RotateRequest{Actor: "ops@example.com", Reason: "yearly"})
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now().UTC().Round(0)
	signsAt := start.Add(rotTestDelay + rotTestReload)
	retireAt := signsAt.Add(rotTestTTL + rotTestLeeway)
	if r := v.Rotation; r == nil || r.KID != "k2" || r.From != "k1" || !r.SignsAt.Equal(signsAt) || !r.RetireAt.Equal(retireAt) || r.Actor != "ops@example.com" {
		t.Fatalf("rotation = %+v", v.Rotation)
	}
	if keyState(v, "k2") != KeyNext || keyState(v, "k1") != KeySigning || !v.RotationInProgress || len(v.Problems) != 0 {
		t.Fatalf("view after rotate: %+v", v)
	}
	if got := jwksKIDs(t, svc.Ring()); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Fatalf("JWKS right after rotate = %v; the next key must be published at once", got)
	}
	if d := rot.untilNextChange(); d != signsAt.Sub(clock.Now())+time.Millisecond {
		t.Fatalf("wakes up in %s; want at the signing switch", d)
	}

	clock.Advance(signsAt.Sub(clock.Now()) - time.Millisecond)
	refresh(t, rot)
	lastOld, kid := issuedKID(t, svc)
	if kid != "k1" {
		t.Fatalf("signed with %s before the publish delay was over", kid)
	}

	clock.Advance(time.Millisecond)
	refresh(t, rot)
	if _, kid := issuedKID(t, svc); kid != "k2" {
		t.Fatalf("signing with %s after the publish delay; want k2", kid)
	}
	for name, tok := range map[string]string{"last k1 token": lastOld, "fresh k1 token": signWithK1()} {
		if _, err := svc.VerifyAccess(tok); err != nil {
			t.Fatalf("%s refused while k1 is retiring: %v", name, err)
		}
	}

	// The last token k1 signed is accepted up to its expiry, which comes
	// before k1 is retired.
	c, err := svc.VerifyAccess(lastOld)
	if err != nil {
		t.Fatal(err)
	}
	lastValid := c.ExpiresAt.Add(rotTestLeeway - time.Millisecond)
	if !lastValid.Before(retireAt) {
		t.Fatalf("the old key retires at %s, before its last token expires (%s)", retireAt, lastValid)
	}
	clock.Advance(lastValid.Sub(clock.Now()))
	refresh(t, rot)
	if _, err := svc.VerifyAccess(lastOld); err != nil {
		t.Fatalf("last k1 token refused just before its expiry: %v", err)
	}

	clock.Advance(retireAt.Sub(clock.Now()) - time.Millisecond)
	refresh(t, rot)
	// Ten minutes from expiry: only k1's retirement can refuse it.
	long := signWithK1()
	if _, err := svc.VerifyAccess(long); err != nil {
		t.Fatalf("k1 token refused before k1's retirement: %v", err)
	}
	clock.Advance(time.Millisecond)
	refresh(t, rot)
	if got := jwksKIDs(t, svc.Ring()); !slices.Equal(got, []string{"k2"}) {
		t.Fatalf("JWKS after retirement = %v", got)
	}
	_, err = svc.VerifyAccess(long)
	if !errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), "kid not in the key ring") {
		t.Fatalf("unexpired token of a retired key: %v; want invalid (kid not in the key ring)", err)
	}
	v, err = rot.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if keyState(v, "k1") != KeyRetired || keyState(v, "k2") != KeySigning || v.RotationInProgress {
		t.Fatalf("view after retirement: %+v", v.Keys)
	}
	if err := rot.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

// TestRotatorRefusals: the rotation API's refusals change nothing.
func TestRotatorRefusals(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	dir := keyDir(t, "k1")
	rot := newTestRotator(t, st, dir, "a", clock.Now)
	loadRotator(t, rot)
	if _, err := GenerateKeyFile(dir, "ec", AlgES256); err != nil {
		t.Fatal(err)
	}
	addKey(t, dir, "k2")
	tests := []struct {
		name    string
		req     RotateRequest
		wantErr error
	}{
		{name: "not in keys_dir", req: RotateRequest{KID: "nope"}, wantErr: ErrUnknownKey},
		{name: "not a kid", req: RotateRequest{KID: "../etc/passwd"}, wantErr: ErrUnknownKey},
		{name: "algorithm", req: RotateRequest{KID: "ec"}, wantErr: ErrAlgorithmNotAllowed},
		{name: "already signing", req: RotateRequest{KID: "k1"}, wantErr: ErrAlreadySigning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Actor = "ops@example.com"
			_, err := rot.Rotate(ctx, tt.req)
			wantSentinel(t, err, tt.wantErr)
			if v, _ := rot.Keys(ctx); v.Version != 1 {
				t.Fatalf("a refused rotation changed the version to %d", v.Version)
			}
		})
	}
	if _, err := rot.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err := rot.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops@example.com"})
	wantSentinel(t, err, ErrRotationInProgress)
}

// TestRotatorMissingKey: an instance whose keys_dir lacks the new key keeps
// working with the keys it has, says so in Ready and in its report, and
// recovers once the file is there.
func TestRotatorMissingKey(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	dirA, dirB := keyDir(t, "k1"), t.TempDir()
	data, err := os.ReadFile(filepath.Join(dirA, "k1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "k1.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	a := newTestRotator(t, st, dirA, "a", clock.Now)
	b := newTestRotator(t, st, dirB, "b", clock.Now)
	loadRotator(t, a)
	loadRotator(t, b)
	svcB := serviceFor(t, b, st, clock.Now)

	addKey(t, dirA, "k2")
	if _, err := b.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops@example.com"}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotating on an instance without the key file: %v", err)
	}
	if _, err := a.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	refresh(t, b)
	b.writeReport(ctx)
	if err := b.Ready(); !errors.Is(err, ErrKeysMissing) || !strings.Contains(err.Error(), "k2") {
		t.Fatalf("B Ready = %v; want keys missing naming k2", err)
	}
	if got := jwksKIDs(t, svcB.Ring()); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("B's JWKS = %v", got)
	}
	v, err := a.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(v.Problems, func(p string) bool { return strings.Contains(p, "instance b") && strings.Contains(p, "k2") }) {
		t.Fatalf("A's view does not report B's missing key: %q", v.Problems)
	}

	// Past the switch B cannot sign with k2: it goes on with k1, which
	// everybody still accepts, and stays not ready.
	clock.Advance(rotTestDelay + rotTestReload)
	refresh(t, b)
	if _, kid := issuedKID(t, svcB); kid != "k1" {
		t.Fatalf("B signs with %s", kid)
	}
	b.writeReport(ctx)
	v, _ = a.Keys(ctx)
	if !slices.ContainsFunc(v.Problems, func(p string) bool { return strings.Contains(p, `signing with "k1" instead`) }) {
		t.Fatalf("the fallback is not reported: %q", v.Problems)
	}

	data, err = os.ReadFile(filepath.Join(dirA, "k2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "k2.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	refresh(t, b)
	if err := b.Ready(); err != nil {
		t.Fatalf("B Ready after copying the key: %v", err)
	}
	if _, kid := issuedKID(t, svcB); kid != "k2" {
		t.Fatalf("B signs with %s after the copy", kid)
	}
}

// TestRotatorBadKeyFile: a broken file fails the start, as it always did,
// but at run time it is skipped and reported.
func TestRotatorBadKeyFile(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	st := store.NewMemory(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	dir := keyDir(t, "k1")
	rot := newTestRotator(t, st, dir, "a", clock.Now)
	loadRotator(t, rot)
	if err := os.WriteFile(filepath.Join(dir, "k2.pem"), []byte("half a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	refresh(t, rot)
	if err := rot.Ready(); err != nil {
		t.Fatalf("an unused broken file made the instance unready: %v", err)
	}
	v, _ := rot.Keys(ctx)
	if !slices.ContainsFunc(v.Problems, func(p string) bool { return strings.Contains(p, "k2.pem") }) {
		t.Fatalf("broken file not reported: %q", v.Problems)
	}
	if _, err := rot.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops"}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotating to a broken file: %v", err)
	}
	fresh := newTestRotator(t, store.NewMemory(clock.Now), dir, "b", clock.Now)
	if _, err := fresh.Load(ctx); !errors.Is(err, ErrKeyNotPEM) {
		t.Fatalf("Load with a broken file = %v; want ErrKeyNotPEM", err)
	}
}

func TestNewRotatorConfig(t *testing.T) {
	st := store.NewMemory(nil)
	t.Cleanup(func() { _ = st.Close() })
	tests := []struct {
		name string
		cfg  RotatorOptions
	}{
		{name: "no dir", cfg: RotatorOptions{}},
		{name: "retire before tokens expire", cfg: RotatorOptions{Dir: "x", AccessTTL: time.Hour, RetireAfter: time.Minute}},
		{name: "algorithm", cfg: RotatorOptions{Dir: "x", Algorithms: []string{"none"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewRotator(st, tt.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("NewRotator = %v; want ErrConfig", err)
			}
		})
	}
}

func openRedis(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := store.NewRedis(store.RedisOptions{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// heard waits until b re-read the state after an announcement: a's probes
// carry no change, but b writes a report stamped with the (advanced) clock.
func heard(t *testing.T, st store.Store, b *Rotator, clock *fakeclock.Clock) {
	t.Helper()
	rs := rotationStore{st: st}
	for i := 0; i < 100; i++ {
		clock.Advance(time.Millisecond)
		want := clock.Now().UTC().Round(0)
		if err := rs.announce(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if waitUntil(100*time.Millisecond, func() bool {
			reps, _ := rs.reports(context.Background(), want, time.Hour)
			return slices.ContainsFunc(reps, func(r InstanceReport) bool { return r.ID == b.InstanceID() && !r.At.Before(want) })
		}) {
			return
		}
	}
	t.Fatal("the second instance never heard an announcement")
}

// TestRotatorRedis: two instances on a real Redis. A rotation on one reaches
// the other through pub/sub (the periodic re-read is a minute away), the
// rotate answer carries the other's confirmation, concurrent rotations
// cannot both win, and a state lost from Redis is restored.
func TestRotatorRedis(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv := redistest.Start(t)
	clock := newFakeClock()
	stA, stB := openRedis(t, srv.URL()), openRedis(t, srv.URL())
	dir := keyDir(t, "k1")
	mk := func(st store.Store, id string) *Rotator {
		r, err := NewRotator(st, RotatorOptions{Dir: dir, PublishDelay: rotTestDelay, ReloadInterval: time.Minute,
			AccessTTL: rotTestTTL, Leeway: rotTestLeeway, InstanceID: id, Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(stA, "a"), mk(stB, "b")
	loadRotator(t, a)
	loadRotator(t, b)
	var mu sync.Mutex
	var ringsB []*KeyRing
	b.Start(ctx, func(r *KeyRing) { mu.Lock(); ringsB = append(ringsB, r); mu.Unlock() })
	heard(t, stA, b, clock)

	addKey(t, dir, "k2")
	v, err := a.Rotate(ctx, RotateRequest{KID: "k2", Actor: "ops@example.com", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(v.Instances, func(r InstanceReport) bool { return r.ID == "b" && r.Version == v.Version }) {
		t.Fatalf("the rotate answer lacks b's confirmation of version %d: %+v", v.Version, v.Instances)
	}
	if len(v.Problems) != 0 {
		t.Fatalf("problems: %q", v.Problems)
	}
	mu.Lock()
	last := ringsB[len(ringsB)-1]
	mu.Unlock()
	if got := jwksKIDs(t, last); !slices.Equal(got, []string{"k1", "k2"}) || last.SigningKID() != "k1" {
		t.Fatalf("b's ring = %v signing %s", got, last.SigningKID())
	}

	// Both instances race to rotate to k3 once k1 is gone: one wins.
	clock.Advance(rotTestDelay + time.Minute + rotTestTTL + rotTestLeeway)
	addKey(t, dir, "k3")
	errs := make(chan error, 2)
	for _, r := range []*Rotator{a, b} {
		go func() {
			_, err := r.Rotate(ctx, RotateRequest{KID: "k3", Actor: "ops@example.com"})
			errs <- err
		}()
	}
	var won, lost int
	for range 2 {
		switch err := <-errs; {
		case err == nil:
			won++
		case errors.Is(err, ErrRotationInProgress):
			lost++
		default:
			t.Fatalf("racing rotation: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("won %d, lost %d; want exactly one winner", won, lost)
	}

	// Redis loses the state: the next re-read puts it back, plan intact.
	before, _ := a.Keys(ctx)
	if err := stA.DeleteCtx(ctx, rotationKey); err != nil {
		t.Fatal(err)
	}
	refresh(t, a)
	after, err := b.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Version != before.Version+1 || after.Audit[0].Action != RotationRestore || keyState(after, "k3") != KeyNext || after.Signing != "k2" {
		t.Fatalf("restored state: version %d (was %d), audit %+v, keys %+v", after.Version, before.Version, after.Audit[0], after.Keys)
	}
}
