package session

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/token"
)

// requestBuffer returns cookie as Fiber hands it to the middleware: a string
// over a buffer that the server reuses for the next request (c.Cookies is
// not a copy unless the app is Immutable), and the buffer itself.
func requestBuffer(cookie string) (string, []byte) {
	buf := []byte(cookie)
	return unsafe.String(&buf[0], len(buf)), buf
}

// TestNearCacheKeepsNoRequestBytes: what the near cache keeps of a request
// (the sid as key and in the shared principal, the verified secret) is a
// copy: the request's buffer is rewritten by the next request, here with
// another login's cookie, and neither the entry nor the principal already
// handed out may change with it.
func TestNearCacheKeepsNoRequestBytes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := store.NewMemory(clk.Now)
	in := newCachedInstance(t, st, clk, Options{})
	a, cookieA, err := in.m.Create(ctx, NewSession{UserID: "ua", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	_, cookieB, err := in.m.Create(ctx, NewSession{UserID: "ub", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	view, buf := requestBuffer(cookieA)
	if _, err := in.m.Check(ctx, view); err != nil { // fills the cache
		t.Fatal(err)
	}
	hit, err := in.m.Check(ctx, view)
	if err != nil || !hit.MirrorChecked {
		t.Fatalf("second check: %v, hit %v", err, hit.MirrorChecked)
	}
	copy(buf, cookieB) // the next request on this connection
	if hit.Principal.SID != a.SID {
		t.Fatalf("the shared principal's sid follows the request buffer: %q, want %q", hit.Principal.SID, a.SID)
	}
	// Had the entry kept a view of the buffer, its secret would now be B's.
	if _, err := in.m.Check(ctx, cookieA[:sidLen+1]+cookieB[sidLen+1:]); !errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("A's sid with B's secret: %v, want invalid", err)
	}
	again, err := in.m.Check(ctx, cookieA)
	if err != nil || !again.MirrorChecked || again.Principal.SID != a.SID || again.Principal.UserID != "ua" {
		t.Fatalf("A after its buffer was reused: %v, hit %v, principal %+v", err, again.MirrorChecked, again.Principal)
	}
	b, err := in.m.Check(ctx, cookieB)
	if err != nil || b.Principal.UserID != "ub" {
		t.Fatalf("B: %v, principal %+v", err, b.Principal)
	}
	if st := in.m.CacheStats(); st.Entries != 2 {
		t.Fatalf("stats %+v, want two entries", st)
	}
}

// TestNearCacheHitComparesTheWholeSecret: a hit compares the presented
// secret with the one verified when the entry was filled; a cookie with the
// cached sid and any other secret (one character off anywhere, the stored
// hash's encoding, another login's secret) is refused, is never counted a
// hit, and does not spoil the entry for the right cookie.
func TestNearCacheHitComparesTheWholeSecret(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	st := store.NewMemory(clk.Now)
	in := newCachedInstance(t, st, clk, Options{})
	_, cookie, err := in.m.Create(ctx, NewSession{UserID: "u1", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := in.m.Create(ctx, NewSession{UserID: "u2", Cookie: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := in.m.Check(ctx, cookie); err != nil {
			t.Fatal(err)
		}
	}
	var bad []string
	for _, i := range []int{sidLen + 1, sidLen + 20, cookieLen - 2} {
		b := []byte(cookie)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		bad = append(bad, string(b))
	}
	bad = append(bad, cookie[:sidLen+1]+other[sidLen+1:])
	l, err := in.m.load(ctx, cookie[:sidLen])
	if err != nil {
		t.Fatal(err)
	}
	var h [secretBytes]byte
	copy(h[:], l.secretHash)
	bad = append(bad, cookie[:sidLen+1]+b64.EncodeToString(h[:]))
	before := in.m.CacheStats().Hits
	for _, c := range bad {
		if c == cookie {
			t.Fatalf("test bug: %q is the cookie", c)
		}
		for range 2 {
			if got, err := in.m.Check(ctx, c); !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("Check(%q) with the cached sid: %+v, %v; want invalid", c, got.Principal, err)
			}
		}
	}
	if st := in.m.CacheStats(); st.Hits != before {
		t.Fatalf("a wrong secret was counted a hit: %+v", st)
	}
	if c, err := in.m.Check(ctx, cookie); err != nil || !c.MirrorChecked {
		t.Fatalf("the right cookie after wrong ones: %v, hit %v", err, c.MirrorChecked)
	}
}

// BenchmarkCheckHit is the session's part of an authenticated request on a
// near-cache hit: Check of a cookie verified before.
//
//	go test -run '^$' -bench CheckHit -benchmem ./internal/session/
func BenchmarkCheckHit(b *testing.B) {
	ctx := context.Background()
	st := store.NewMemory(time.Now)
	rev := token.NewRevocations(st, time.Now, nil)
	if err := rev.Start(ctx); err != nil {
		b.Fatal(err)
	}
	m, err := New(st, Options{Revocations: rev})
	if err != nil {
		b.Fatal(err)
	}
	_, cookie, err := m.Create(ctx, NewSession{UserID: "u1", Email: "u1@example.com", ClientID: "web", Roles: []string{"user"}, Cookie: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Check(ctx, cookie); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := m.Check(ctx, cookie); err != nil || !c.MirrorChecked {
			b.Fatalf("%v, hit %v", err, c.MirrorChecked)
		}
	}
}
