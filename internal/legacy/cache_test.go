package legacy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/user"
)

// mirrorStub is what the near cache's hits consult, as logins.CheckLegacy
// and the revocation mirror answer them: revoked handles and per-user
// not-befores.
type mirrorStub struct {
	mu        sync.Mutex
	handles   map[string]bool
	notBefore map[string]time.Time
}

func (m *mirrorStub) revokeHandle(h string) {
	m.mu.Lock()
	m.handles[h] = true
	m.mu.Unlock()
}

func (m *mirrorStub) revokeUser(id string, at time.Time) {
	m.mu.Lock()
	m.notBefore[id] = at
	m.mu.Unlock()
}

func (m *mirrorStub) userNotBefore(id string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notBefore[id]
}

// check is logins.CheckLegacy's rule over the stub: the handle only (the
// user's not-before is the Verifier's own check).
func (m *mirrorStub) check(s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := s.Handle
	if h == "" {
		h = Handle(s.Source, s.ID)
	}
	if m.handles[h] {
		return fmt.Errorf("handle revoked: %w", auth.ErrRevoked)
	}
	return nil
}

type cacheRig struct {
	h      *redisHarness
	clock  *fakeclock.Clock
	set    *Set
	v      *Verifier
	mirror *mirrorStub
}

// newCacheRig opens an express source through Open (so with its near
// cache, unless o says otherwise) and a Verifier hooked to a mirror stub.
func newCacheRig(t *testing.T, edit func(*Options)) *cacheRig {
	t.Helper()
	h := startRedis(t)
	clock := fakeclock.New(time.Now())
	o := expressOptions(h, clock, "userId")
	if edit != nil {
		edit(&o)
	}
	set, err := Open([]Options{o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	m := &mirrorStub{handles: map[string]bool{}, notBefore: map[string]time.Time{}}
	users := fakeUsers{"1": &user.User{ID: "1", Email: "one@example.com", Roles: []string{"user"}}}
	v := NewVerifier(set, []Options{o}, users, m.userNotBefore)
	v.SetHooks(m.check, nil)
	return &cacheRig{h: h, clock: clock, set: set, v: v, mirror: m}
}

// session stores an express session of user 1 saved at saved (IssuedAt),
// and returns its cookie.
func (r *cacheRig) session(t *testing.T, id string, saved time.Time, ttl time.Duration) string {
	t.Helper()
	data := `{"cookie":{"originalMaxAge":3600000,"expires":"` + saved.Add(time.Hour).UTC().Format(time.RFC3339Nano) + `"},"userId":1}`
	if saved.IsZero() {
		data = `{"cookie":{"originalMaxAge":null,"expires":null},"userId":1}`
	}
	if err := r.h.admin.Set(context.Background(), "sess:"+id, data, ttl).Err(); err != nil {
		t.Fatal(err)
	}
	return SignExpressCookie(id, "s1")
}

func (r *cacheRig) verify(t *testing.T, cookie string) (*auth.Principal, error) {
	t.Helper()
	cred, ok, err := r.v.ParseLegacy(cookieJar(map[string]string{"connect.sid": cookie}))
	if !ok {
		t.Fatal("ParseLegacy: no cookie")
	}
	if err != nil {
		return nil, err
	}
	return r.v.VerifyLegacy(context.Background(), cred)
}

// reads counts the session commands the verification sent to Redis.
func (r *cacheRig) reads(t *testing.T, f func()) int {
	t.Helper()
	before := sessionCommands(r.h.commandCalls(t))
	f()
	return sessionCommands(r.h.commandCalls(t)) - before
}

// A session verified once is answered from the near cache: no Redis
// command (INFO commandstats), the same principal.
func TestNearCacheHitAvoidsStore(t *testing.T) {
	r := newCacheRig(t, nil)
	c := r.session(t, "hit", r.clock.Now().Add(-time.Minute), time.Hour)
	var first *auth.Principal
	if n := r.reads(t, func() {
		var err error
		if first, err = r.verify(t, c); err != nil {
			t.Fatal(err)
		}
	}); n != 2 {
		t.Fatalf("first request sent %d commands, want 2 (GET, PTTL)", n)
	}
	var shared *auth.Principal
	n := r.reads(t, func() {
		for i := range 20 {
			p, err := r.verify(t, c)
			if err != nil {
				t.Fatal(err)
			}
			if p == first || p.UserID != "1" || p.Email != "one@example.com" || p.SID != first.SID || p.LegacyID != "hit" || p.Source != "shop" || p.ClientID != "web" || !p.ExpiresAt.Equal(first.ExpiresAt) ||
				p.Scheme != auth.SchemeSession || !slices.Equal(p.Roles, first.Roles) {
				t.Fatalf("hit = %+v, want the entry's copy of %+v", p, first)
			}
			// Every hit answers the entry's one principal (shared, as the
			// session near cache's: nobody modifies it).
			if i == 0 {
				shared = p
			} else if p != shared {
				t.Fatal("a hit built a new principal")
			}
		}
	})
	if n != 0 {
		t.Fatalf("20 requests of a cached session sent %d commands to Redis, want none", n)
	}
	if st := r.set.CacheStats(); st.Entries != 1 || st.Hits != 20 || st.Bytes <= 0 {
		t.Fatalf("stats = %+v, want 1 entry, 20 hits", st)
	}
}

// The entry answers for cache_ttl after its read, never past the
// session's own expiry; cache_ttl 0 turns the cache off.
func TestNearCacheTTL(t *testing.T) {
	tests := []struct {
		name      string
		cacheTTL  time.Duration
		off       bool
		keyTTL    time.Duration
		advance   time.Duration
		wantReads int
	}{
		{name: "within the default 1s", keyTTL: time.Hour, advance: 999 * time.Millisecond, wantReads: 0},
		{name: "default 1s passed", keyTTL: time.Hour, advance: time.Second, wantReads: 2},
		{name: "shorter cache_ttl passed", cacheTTL: 300 * time.Millisecond, keyTTL: time.Hour, advance: 300 * time.Millisecond, wantReads: 2},
		{name: "session expires before the TTL", keyTTL: 200 * time.Millisecond, advance: 250 * time.Millisecond, wantReads: 2},
		{name: "off", off: true, keyTTL: time.Hour, advance: 0, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newCacheRig(t, func(o *Options) { o.CacheTTL, o.CacheOff = tc.cacheTTL, tc.off })
			c := r.session(t, "ttl", r.clock.Now().Add(-time.Minute), tc.keyTTL)
			if _, err := r.verify(t, c); err != nil {
				t.Fatal(err)
			}
			r.clock.Advance(tc.advance)
			// The key itself is kept alive in Redis: only the cache's
			// clock moves.
			_ = r.h.admin.Expire(context.Background(), "sess:ttl", time.Hour)
			if n := r.reads(t, func() {
				if _, err := r.verify(t, c); err != nil {
					t.Fatal(err)
				}
			}); n != tc.wantReads {
				t.Fatalf("after %v: %d commands, want %d", tc.advance, n, tc.wantReads)
			}
		})
	}
}

// Forged cookies are refused by Parse: no store read, nothing cached; a
// session refused after its read (unknown user) is not cached either.
func TestNearCacheNeverHoldsForgeries(t *testing.T) {
	r := newCacheRig(t, nil)
	good := r.session(t, "victim", r.clock.Now().Add(-time.Minute), time.Hour)
	if _, err := r.verify(t, good); err != nil {
		t.Fatal(err)
	}
	forged := []string{SignExpressCookie("victim", "guess"), strings.Replace(good, "s%3A", "s%3AX", 1), "s%3Avictim.AAAA", "victim"}
	n := r.reads(t, func() {
		for range 3 {
			for _, c := range forged {
				if _, err := r.verify(t, c); !errors.Is(err, ErrForged) {
					t.Fatalf("forged %q: %v, want ErrForged", c, err)
				}
			}
		}
	})
	if n != 0 {
		t.Fatalf("forged cookies sent %d commands", n)
	}
	if st := r.set.CacheStats(); st.Entries != 1 || st.Hits != 0 {
		t.Fatalf("stats = %+v, want only the real session", st)
	}
	// Unknown user: refused at every request, each time from the store.
	_ = r.h.admin.Set(context.Background(), "sess:ghost", `{"userId":99}`, time.Hour)
	ghost := SignExpressCookie("ghost", "s0")
	if n := r.reads(t, func() {
		for range 2 {
			if _, err := r.verify(t, ghost); !errors.Is(err, ErrUserRefused) {
				t.Fatalf("ghost: %v", err)
			}
		}
	}); n != 4 || r.set.CacheStats().Entries != 1 {
		t.Fatalf("refused session: %d commands, stats %+v; want 4 and not cached", n, r.set.CacheStats())
	}
}

// Every hit runs the mirror's checks: a revoked handle is refused at once
// without a store read; a user revocation after the read sends the
// request to the store, which refuses a session saved before it and
// decides for one it cannot date; Forget and ForgetUser drop entries on
// this instance.
func TestNearCacheRevocationWinsOnHit(t *testing.T) {
	tests := []struct {
		name      string
		undated   bool
		end       func(r *cacheRig, p *auth.Principal)
		wantErr   error // nil: accepted
		wantReads int
	}{
		{name: "handle revoked (logout, on_exchange end)", end: func(r *cacheRig, p *auth.Principal) {
			r.mirror.revokeHandle(p.SID)
		}, wantErr: auth.ErrRevoked, wantReads: 0},
		{name: "user not-before after the read (log out everywhere)", end: func(r *cacheRig, _ *auth.Principal) {
			r.mirror.revokeUser("1", r.clock.Now())
		}, wantErr: auth.ErrRevoked, wantReads: 2},
		{name: "user not-before just before the read", end: func(r *cacheRig, _ *auth.Principal) {
			r.mirror.revokeUser("1", r.clock.Now().Add(-revocationLag/2))
		}, wantErr: auth.ErrRevoked, wantReads: 2},
		{name: "user not-before learnt late, dated long before the read", end: func(r *cacheRig, _ *auth.Principal) {
			r.mirror.revokeUser("1", r.clock.Now().Add(-revocationLag-100*time.Millisecond))
		}, wantErr: auth.ErrRevoked, wantReads: 0},
		{name: "undated session, user revoked: the store decides", undated: true, end: func(r *cacheRig, _ *auth.Principal) {
			r.mirror.revokeUser("1", r.clock.Now())
		}, wantReads: 2},
		{name: "Forget on this instance", end: func(r *cacheRig, p *auth.Principal) {
			r.set.Forget("shop", p.LegacyID)
		}, wantReads: 2},
		{name: "ForgetUser on this instance", end: func(r *cacheRig, _ *auth.Principal) {
			r.set.ForgetUser("1")
		}, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newCacheRig(t, nil)
			saved := r.clock.Now().Add(-time.Minute)
			if tc.undated {
				saved = time.Time{}
			}
			c := r.session(t, "rev", saved, time.Hour)
			p, err := r.verify(t, c)
			if err != nil {
				t.Fatal(err)
			}
			r.clock.Advance(10 * time.Millisecond)
			if n := r.reads(t, func() {
				if _, err := r.verify(t, c); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Fatalf("the session was not answered from the cache (%d commands)", n)
			}
			tc.end(r, p)
			var got error
			n := r.reads(t, func() { _, got = r.verify(t, c) })
			if n != tc.wantReads {
				t.Fatalf("after the ending: %d commands, want %d", n, tc.wantReads)
			}
			if tc.wantErr == nil && got != nil || tc.wantErr != nil && !errors.Is(got, tc.wantErr) {
				t.Fatalf("after the ending: %v, want %v", got, tc.wantErr)
			}
			if tc.wantErr != nil {
				// Refused every time after, never from a stale entry.
				if _, err := r.verify(t, c); !errors.Is(err, tc.wantErr) {
					t.Fatalf("second request after the ending: %v", err)
				}
			}
		})
	}
}

// A Forget while a store read is in flight keeps that read from being
// cached: the ending wins over the answer it raced with.
func TestNearCacheForgetDuringRead(t *testing.T) {
	r := newCacheRig(t, nil)
	c := r.session(t, "race", r.clock.Now().Add(-time.Minute), time.Hour)
	cs := cacheOf(r.set.ByName("shop"))
	cred := authn.LegacyCredential{Source: "shop", ID: "race"}
	gen := cs.cache.gen.Load()
	_, e, err := r.v.verifyStore(context.Background(), cs, cred)
	if err != nil {
		t.Fatal(err)
	}
	r.set.Forget("shop", "race") // lands while the read is "in flight"
	e.loadedAt, e.until = r.clock.Now().UnixNano(), r.clock.Now().Add(time.Second).UnixNano()
	cs.cache.put(cacheKey{"shop", "race"}, e, gen)
	if st := r.set.CacheStats(); st.Entries != 0 {
		t.Fatalf("a read that raced with Forget was cached: %+v", st)
	}
	if n := r.reads(t, func() { _, _ = r.verify(t, c) }); n != 2 {
		t.Fatalf("%d commands, want a store read", n)
	}
}

// The cache is bounded by its byte estimate: inserting past it evicts.
func TestNearCacheBoundedByBytes(t *testing.T) {
	c := newNearCache(legacyCacheShards * 4 * 1024) // 4 KiB a shard
	now := time.Now().UnixNano()
	for i := range 2000 {
		id := strings.Repeat("x", 20) + string(rune('a'+i%26)) + strings.Repeat("y", i%7) + time.Duration(i).String()
		e := &cachedSession{sess: &Session{Source: "shop", ID: id, UserID: "1", Handle: "legacy:0123456789abcdef0123456789abcdef"}, userID: "1", loadedAt: now, until: now + int64(time.Second)}
		c.put(cacheKey{"shop", id}, e, c.gen.Load())
	}
	st := c.Stats()
	if st.MaxShardBytes > c.ShardLimit() {
		t.Fatalf("a shard holds %d bytes, limit %d", st.MaxShardBytes, c.ShardLimit())
	}
	bytes, entries := st.Bytes, st.Entries
	if st.Evicted == 0 || entries == 0 || entries >= 2000 || bytes > legacyCacheShards*4*1024 {
		t.Fatalf("entries %d, bytes %d, evicted %d", entries, bytes, st.Evicted)
	}
}

// A hit, cookie parse included, allocates nothing: no signature, no
// unescaping, the entry's shared principal.
func TestNearCacheHitAllocations(t *testing.T) {
	r := newCacheRig(t, nil)
	c := r.session(t, "allocs", r.clock.Now().Add(-time.Minute), time.Hour)
	if _, err := r.verify(t, c); err != nil {
		t.Fatal(err)
	}
	jar := cookieJar(map[string]string{"connect.sid": c})
	ctx := context.Background()
	allocs := testing.AllocsPerRun(200, func() {
		cred, _, err := r.v.ParseLegacy(jar)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.v.VerifyLegacy(ctx, cred); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("a hit allocates %.0f times, want 0", allocs)
	}
	if st := r.set.CacheStats(); st.Misses != 1 {
		t.Fatalf("stats %+v, want every request after the first a hit", st)
	}
}

// A cookie already verified is recognised by comparison, never by its id
// alone: every value that differs from the verified one, even by a byte of
// its signature, takes the full verification and is refused without a
// Redis command, while the real cookie keeps hitting; both spellings
// express-session's cookie can take ("s%3A", "s:") verify.
func TestNearCacheParseComparesTheWholeCookie(t *testing.T) {
	r := newCacheRig(t, nil)
	good := r.session(t, "cmp", r.clock.Now().Add(-time.Minute), time.Hour)
	if _, err := r.verify(t, good); err != nil {
		t.Fatal(err)
	}
	last := good[len(good)-1]
	flip := byte('A')
	if last == 'A' {
		flip = 'B'
	}
	forged := []string{
		good[:len(good)-1] + string(flip), // one signature byte
		good[:len(good)-1],                // signature cut
		good + "A",                        // signature longer
		SignExpressCookie("cmp", "guess"), // same id, other secret
		"s%3Acmp.",                        // same id, no signature
	}
	n := r.reads(t, func() {
		for _, c := range forged {
			if _, err := r.verify(t, c); !errors.Is(err, ErrForged) {
				t.Fatalf("forged %q: %v, want ErrForged", c, err)
			}
		}
	})
	if n != 0 {
		t.Fatalf("forged cookies sent %d commands, want 0", n)
	}
	unencoded := strings.Replace(good, "%3A", ":", 1)
	unencoded = strings.ReplaceAll(strings.ReplaceAll(unencoded, "%2B", "+"), "%2F", "/")
	n = r.reads(t, func() {
		for _, c := range []string{good, unencoded, good} {
			p, err := r.verify(t, c)
			if err != nil || p.LegacyID != "cmp" {
				t.Fatalf("%q: %v, %+v", c, err, p)
			}
		}
	})
	if n != 0 {
		t.Fatalf("the real cookie sent %d commands, want 0 (hits)", n)
	}
}

// VerifyLegacy keeps a credential's Raw for later comparison only if it
// verifies as the credential's ID: a caller passing a value that does not
// cannot make the cache accept it.
func TestNearCacheKeepsOnlyAVerifiedRaw(t *testing.T) {
	r := newCacheRig(t, nil)
	r.session(t, "victim", r.clock.Now().Add(-time.Minute), time.Hour)
	bad := SignExpressCookie("victim", "guess")
	if _, err := r.v.VerifyLegacy(context.Background(), authn.LegacyCredential{Source: "shop", ID: "victim", Raw: bad}); err != nil {
		t.Fatal(err)
	}
	if st := r.set.CacheStats(); st.Entries != 1 {
		t.Fatalf("stats %+v, want the session cached", st)
	}
	n := r.reads(t, func() {
		if _, err := r.verify(t, bad); !errors.Is(err, ErrForged) {
			t.Fatalf("the unverified Raw: %v, want ErrForged", err)
		}
	})
	if n != 0 {
		t.Fatalf("%d commands", n)
	}
}

// The request's cookie value may alias a buffer the server reuses (Fiber's
// c.Cookies): nothing of it stays in the cache. The entry filled from a
// value whose bytes are then overwritten still answers the real cookie,
// with the right id.
func TestNearCacheCopiesTheRequestsCookie(t *testing.T) {
	r := newCacheRig(t, nil)
	good := r.session(t, "alias", r.clock.Now().Add(-time.Minute), time.Hour)
	// The "s:" spelling: no unescaping, so the id is a substring of the
	// value as sent.
	plain := strings.ReplaceAll(strings.ReplaceAll(strings.Replace(good, "%3A", ":", 1), "%2B", "+"), "%2F", "/")
	buf := []byte(plain)
	view := unsafe.String(&buf[0], len(buf))
	p, err := r.verify(t, view)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	if p.LegacyID != "alias" {
		t.Fatalf("the principal's id aliases the request: %q", p.LegacyID)
	}
	n := r.reads(t, func() {
		p, err := r.verify(t, plain)
		if err != nil || p.LegacyID != "alias" {
			t.Fatalf("after the buffer was reused: %v, %+v", err, p)
		}
	})
	if n != 0 {
		t.Fatalf("%d commands, want a hit", n)
	}
}

// The entry ParseLegacy matched rides along to VerifyLegacy (no second
// lookup), but only while it is cached and only for its own credential: an
// ending that dropped it between the two (Forget, ForgetUser) sends the
// request to the store, and a credential naming another id is looked up.
func TestNearCacheHintOfParse(t *testing.T) {
	tests := []struct {
		name      string
		between   func(r *cacheRig)
		edit      func(*authn.LegacyCredential)
		wantReads int
	}{
		{name: "nothing between: a hit", between: func(*cacheRig) {}, wantReads: 0},
		{name: "Forget between", between: func(r *cacheRig) { r.set.Forget("shop", "hint") }, wantReads: 2},
		{name: "ForgetUser between", between: func(r *cacheRig) { r.set.ForgetUser("1") }, wantReads: 2},
		{name: "entry past its TTL", between: func(r *cacheRig) { r.clock.Advance(time.Second) }, wantReads: 2},
		{name: "credential of another id", between: func(*cacheRig) {}, edit: func(c *authn.LegacyCredential) { c.ID = "other" }, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newCacheRig(t, nil)
			c := r.session(t, "hint", r.clock.Now().Add(-time.Minute), time.Hour)
			r.session(t, "other", r.clock.Now().Add(-time.Minute), time.Hour)
			if _, err := r.verify(t, c); err != nil {
				t.Fatal(err)
			}
			cred, _, err := r.v.ParseLegacy(cookieJar(map[string]string{"connect.sid": c}))
			if err != nil || cred.Hint == nil {
				t.Fatalf("ParseLegacy of a cached cookie: %+v, %v; want a hint", cred, err)
			}
			tc.between(r)
			if tc.edit != nil {
				tc.edit(&cred)
			}
			var p *auth.Principal
			if n := r.reads(t, func() {
				if p, err = r.v.VerifyLegacy(context.Background(), cred); err != nil {
					t.Fatal(err)
				}
			}); n != tc.wantReads {
				t.Fatalf("%d commands, want %d", n, tc.wantReads)
			}
			if p.LegacyID != cred.ID {
				t.Fatalf("principal of %q for the credential of %q", p.LegacyID, cred.ID)
			}
		})
	}
}
