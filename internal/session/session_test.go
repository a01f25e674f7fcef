package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/fakeclock"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

func newClock() *fakeclock.Clock { return fakeclock.New(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)) }

// countingStore counts the writes a Manager makes, to prove that reads stay reads.
type countingStore struct {
	store.Store
	writes atomic.Int64
}

func (s *countingStore) HSetFields(ctx context.Context, key string, exp time.Duration, fields ...store.Field) error {
	s.writes.Add(1)
	return s.Store.HSetFields(ctx, key, exp, fields...)
}

func (s *countingStore) HSet(ctx context.Context, key string, exp time.Duration, field string, val []byte) error {
	s.writes.Add(1)
	return s.Store.HSet(ctx, key, exp, field, val)
}

func (s *countingStore) SAdd(ctx context.Context, key string, exp time.Duration, members ...string) error {
	s.writes.Add(1)
	return s.Store.SAdd(ctx, key, exp, members...)
}

func (s *countingStore) SetCtx(ctx context.Context, key string, val []byte, exp time.Duration) error {
	s.writes.Add(1)
	return s.Store.SetCtx(ctx, key, val, exp)
}

func (s *countingStore) DeleteCtx(ctx context.Context, keys ...string) error {
	s.writes.Add(1)
	return s.Store.DeleteCtx(ctx, keys...)
}

func (s *countingStore) HDel(ctx context.Context, key string, fields ...string) error {
	s.writes.Add(1)
	return s.Store.HDel(ctx, key, fields...)
}

func (s *countingStore) SRem(ctx context.Context, key string, members ...string) error {
	s.writes.Add(1)
	return s.Store.SRem(ctx, key, members...)
}

// env is a Manager on one back end, with its clock and write counter.
type env struct {
	m   *Manager
	st  *countingStore
	clk *fakeclock.Clock
}

type backendFactory func(t *testing.T, clk *fakeclock.Clock) store.Store

var backends = []struct {
	name string
	open backendFactory
}{
	{name: "memory", open: func(t *testing.T, clk *fakeclock.Clock) store.Store {
		m := store.NewMemory(clk.Now)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}},
	{name: "redis", open: func(t *testing.T, _ *fakeclock.Clock) store.Store {
		srv := redistest.Start(t)
		r, err := store.NewRedis(store.RedisOptions{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}},
}

func newEnv(t *testing.T, open backendFactory, cfg Options) *env {
	t.Helper()
	clk := newClock()
	cs := &countingStore{Store: open(t, clk)}
	cfg.Clock = clk.Now
	m, err := New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{m: m, st: cs, clk: clk}
}

var ctx = context.Background()

func (e *env) create(t *testing.T, ns NewSession) (*Session, string) {
	t.Helper()
	if ns.UserID == "" {
		ns.UserID = "u-alice"
	}
	s, c, err := e.m.Create(ctx, ns)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s, c
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v; want %v", err, want)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sids(ss []*Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.SID
	}
	return out
}

// Both cases below run on every back end.
var keyCases = []struct {
	name string
	cfg  Options
	run  func(t *testing.T, e *env)
}{
	{name: "create and authenticate a cookie session", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Email: "a@example.com", ClientID: "web", Roles: []string{"user"}, Cookie: true, IP: "192.0.2.1", UserAgent: "ua"})
		sid, ok := SplitCookie(cookie)
		if !ok || sid != s.SID || len(cookie) != cookieLen {
			t.Fatalf("cookie %q does not carry sid %q", cookie, s.SID)
		}
		got, err := e.m.Authenticate(ctx, cookie)
		mustOK(t, err)
		if got.SID != s.SID || got.UserID != "u-alice" || got.Email != "a@example.com" || got.ClientID != "web" ||
			!slices.Equal(got.Roles, []string{"user"}) || !got.HasCookie || got.HasTokens || got.IP != "192.0.2.1" {
			t.Fatalf("Authenticate = %+v", got)
		}
		now := e.clk.Now()
		if !got.IdleExpiresAt.Equal(now.Add(30*time.Minute)) || !got.AbsoluteExpiresAt.Equal(now.Add(12*time.Hour)) {
			t.Fatalf("deadlines %v / %v", got.IdleExpiresAt, got.AbsoluteExpiresAt)
		}
	}},
	{name: "token-only login has no cookie", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Tokens: true})
		if cookie != "" || s.HasCookie || !s.HasTokens || !s.IdleExpiresAt.IsZero() {
			t.Fatalf("token-only login: cookie %q, %+v", cookie, s)
		}
		got, err := e.m.Get(ctx, s.SID)
		mustOK(t, err)
		if got.HasCookie || !got.HasTokens {
			t.Fatalf("Get = %+v", got)
		}
	}},
	{name: "the store keeps no usable cookie", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Cookie: true})
		h, err := e.st.HGetAll(ctx, sessionKey(s.SID))
		mustOK(t, err)
		secret := cookie[strings.IndexByte(cookie, '.')+1:]
		for f, v := range h {
			if strings.Contains(string(v), secret) {
				t.Fatalf("field %q holds the cookie secret", f)
			}
		}
		l, err := decodeLogin(s.SID, h)
		mustOK(t, err)
		if len(l.secretHash) != storedHashLen {
			t.Fatalf("the cookie hash is %d bytes; want %d of a SHA-256", len(l.secretHash), storedHashLen)
		}
	}},
	{name: "login destroys the presented session (fixation)", run: func(t *testing.T, e *env) {
		old, oldCookie := e.create(t, NewSession{Cookie: true, Tokens: true})
		s, newCookie := e.create(t, NewSession{Cookie: true, Replace: oldCookie})
		if !slices.Equal(s.Evicted, []string{old.SID}) {
			t.Fatalf("Evicted = %q; want the replaced sid", s.Evicted)
		}
		if newCookie == oldCookie || s.SID == old.SID {
			t.Fatal("login reused the presented session")
		}
		_, err := e.m.Authenticate(ctx, oldCookie)
		wantErr(t, err, auth.ErrInvalid)
		_, err = e.m.Get(ctx, old.SID)
		wantErr(t, err, auth.ErrNotFound)
		_, err = e.m.Authenticate(ctx, newCookie)
		mustOK(t, err)
	}},
	{name: "Replace with a forged secret destroys nothing", run: func(t *testing.T, e *env) {
		victim, victimCookie := e.create(t, NewSession{Cookie: true})
		forged := victim.SID + "." + strings.Repeat("A", secretLen)
		s, _ := e.create(t, NewSession{UserID: "u-mallory", Cookie: true, Replace: forged})
		if len(s.Evicted) != 0 {
			t.Fatalf("Evicted = %q", s.Evicted)
		}
		_, err := e.m.Authenticate(ctx, victimCookie)
		mustOK(t, err)
	}},
	{name: "forged cookie with a real sid is invalid, even when expired", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Cookie: true, Tokens: true})
		forged := s.SID + "." + strings.Repeat("A", secretLen)
		_, err := e.m.Authenticate(ctx, forged)
		wantErr(t, err, auth.ErrInvalid)
		e.clk.Advance(time.Hour)
		_, err = e.m.Authenticate(ctx, forged)
		wantErr(t, err, auth.ErrInvalid)
		if errors.Is(err, auth.ErrExpired) {
			t.Fatal("a forged cookie learnt that the session expired")
		}
		// The forgery changed nothing: the real cookie still gets "expired", not "invalid".
		_, err = e.m.Authenticate(ctx, cookie)
		wantErr(t, err, auth.ErrExpired)
	}},
	{name: "idle timeout ends the cookie session", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Cookie: true})
		e.clk.Advance(30*time.Minute - time.Second)
		_, err := e.m.Authenticate(ctx, cookie)
		mustOK(t, err)
		e.clk.Advance(30 * time.Minute) // touched at 29m59s, so now past 59m58s
		_, err = e.m.Authenticate(ctx, cookie)
		wantErr(t, err, auth.ErrExpired)
		_, err = e.m.Get(ctx, s.SID)
		wantErr(t, err, auth.ErrNotFound)
	}},
	{name: "an expired cookie stays expired while its record exists", run: func(t *testing.T, e *env) {
		tokensDead, deadCookie := e.create(t, NewSession{Cookie: true})
		_, liveTokensCookie := e.create(t, NewSession{Cookie: true, Tokens: true})
		e.clk.Advance(31 * time.Minute) // past the idle timeout, tokens still live for the second
		for _, cookie := range []string{deadCookie, liveTokensCookie} {
			for i := range 3 {
				_, err := e.m.Verify(ctx, cookie)
				wantErr(t, err, auth.ErrExpired)
				if errors.Is(err, auth.ErrInvalid) {
					t.Fatalf("request %d with the same expired cookie: %v; want expired, not invalid", i+1, err)
				}
			}
		}
		// An admin listing prunes the index but keeps the record.
		_, err := e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		_, err = e.m.Authenticate(ctx, deadCookie)
		wantErr(t, err, auth.ErrExpired)
		_, err = e.m.Get(ctx, tokensDead.SID)
		wantErr(t, err, auth.ErrNotFound)
	}},
	{name: "activity keeps the session past the idle timeout", run: func(t *testing.T, e *env) {
		_, cookie := e.create(t, NewSession{Cookie: true})
		for range 5 {
			e.clk.Advance(20 * time.Minute)
			_, err := e.m.Authenticate(ctx, cookie)
			mustOK(t, err)
		}
	}},
	{name: "absolute timeout ends even a constantly used session", run: func(t *testing.T, e *env) {
		_, cookie := e.create(t, NewSession{Cookie: true})
		for elapsed := time.Duration(0); elapsed < 12*time.Hour-5*time.Minute; elapsed += 5 * time.Minute {
			e.clk.Advance(5 * time.Minute)
			if _, err := e.m.Authenticate(ctx, cookie); err != nil {
				t.Fatalf("at %v: %v", elapsed+5*time.Minute, err)
			}
		}
		e.clk.Advance(5 * time.Minute)
		_, err := e.m.Authenticate(ctx, cookie)
		wantErr(t, err, auth.ErrExpired)
	}},
	{name: "expired cookie part with live tokens: Authenticate expired, Get finds the login", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Cookie: true, Tokens: true})
		e.clk.Advance(31 * time.Minute)
		_, err := e.m.Authenticate(ctx, cookie)
		wantErr(t, err, auth.ErrExpired)
		got, err := e.m.Get(ctx, s.SID)
		mustOK(t, err)
		if got.HasCookie || !got.HasTokens || !got.IdleExpiresAt.IsZero() {
			t.Fatalf("Get = %+v; want tokens only", got)
		}
	}},
	{name: "TouchFamily keeps a token login alive; without it the login ends", run: func(t *testing.T, e *env) {
		s, _ := e.create(t, NewSession{Tokens: true})
		e.clk.Advance(100 * time.Hour)
		mustOK(t, e.m.TouchFamily(ctx, s.SID))
		e.clk.Advance(100 * time.Hour) // 200h after login, 100h after the touch
		_, err := e.m.Get(ctx, s.SID)
		mustOK(t, err)
		e.clk.Advance(69 * time.Hour)
		_, err = e.m.Get(ctx, s.SID)
		wantErr(t, err, auth.ErrNotFound)
		wantErr(t, e.m.TouchFamily(ctx, s.SID), auth.ErrNotFound)
	}},
	{name: "TouchFamily gives a cookie login tokens (exchange)", run: func(t *testing.T, e *env) {
		s, _ := e.create(t, NewSession{Cookie: true})
		mustOK(t, e.m.TouchFamily(ctx, s.SID))
		got, err := e.m.Get(ctx, s.SID)
		mustOK(t, err)
		if !got.HasCookie || !got.HasTokens {
			t.Fatalf("Get = %+v", got)
		}
	}},
	{name: "reads are not writes: last-seen is throttled", run: func(t *testing.T, e *env) {
		_, cookie := e.create(t, NewSession{Cookie: true})
		before := e.st.writes.Load()
		for range 10 {
			e.clk.Advance(5 * time.Second)
			_, err := e.m.Authenticate(ctx, cookie)
			mustOK(t, err)
		}
		if w := e.st.writes.Load() - before; w != 0 {
			t.Fatalf("%d writes within the touch interval; want 0", w)
		}
		e.clk.Advance(time.Minute)
		got, err := e.m.Authenticate(ctx, cookie)
		mustOK(t, err)
		if w := e.st.writes.Load() - before; w != 1 {
			t.Fatalf("%d writes after the touch interval; want 1", w)
		}
		if !got.LastSeenAt.Equal(e.clk.Now()) {
			t.Fatalf("LastSeenAt = %v; want now", got.LastSeenAt)
		}
		for range 3 {
			_, err := e.m.Authenticate(ctx, cookie)
			mustOK(t, err)
		}
		if w := e.st.writes.Load() - before; w != 1 {
			t.Fatalf("%d writes; want still 1", w)
		}
	}},
	{name: "Verify records no use; Touch does, once per interval", run: func(t *testing.T, e *env) {
		_, cookie := e.create(t, NewSession{Cookie: true})
		before := e.st.writes.Load()
		// Verified again and again but never touched (every request refused
		// by the phase): the idle deadline does not move and the session
		// times out.
		for range 29 {
			e.clk.Advance(time.Minute)
			s, err := e.m.Verify(ctx, cookie)
			mustOK(t, err)
			if !e.m.TouchDue(s) {
				t.Fatalf("no touch due %v after the last use", s.LastSeenAt)
			}
		}
		if w := e.st.writes.Load() - before; w != 0 {
			t.Fatalf("Verify wrote %d times; want 0", w)
		}
		s, err := e.m.Verify(ctx, cookie)
		mustOK(t, err)
		e.m.Touch(ctx, s)
		if w := e.st.writes.Load() - before; w != 1 || !s.LastSeenAt.Equal(e.clk.Now()) {
			t.Fatalf("Touch: %d writes, LastSeenAt %v; want 1 write, now", w, s.LastSeenAt)
		}
		e.m.Touch(ctx, s) // not due any more
		e.m.Touch(ctx, &Session{SID: s.SID})
		if w := e.st.writes.Load() - before; w != 1 {
			t.Fatalf("%d writes; want still 1", w)
		}
		e.clk.Advance(29 * time.Minute)
		_, err = e.m.Verify(ctx, cookie)
		mustOK(t, err)
		e.clk.Advance(time.Minute)
		_, err = e.m.Verify(ctx, cookie)
		wantErr(t, err, auth.ErrExpired)
	}},
	{name: "per-user index: list oldest first, delete one, delete all", run: func(t *testing.T, e *env) {
		var mine []string
		for range 3 {
			s, _ := e.create(t, NewSession{Cookie: true, Tokens: true})
			mine = append(mine, s.SID)
			e.clk.Advance(time.Second)
		}
		bob, bobCookie := e.create(t, NewSession{UserID: "u-bob", Cookie: true})
		list, err := e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		if !slices.Equal(sids(list), mine) {
			t.Fatalf("ListByUser = %q; want %q oldest first", sids(list), mine)
		}
		mustOK(t, e.m.Delete(ctx, mine[1]))
		mustOK(t, e.m.Delete(ctx, mine[1])) // idempotent
		mustOK(t, e.m.Delete(ctx, "not a sid"))
		list, err = e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		if want := []string{mine[0], mine[2]}; !slices.Equal(sids(list), want) {
			t.Fatalf("after Delete: %q; want %q", sids(list), want)
		}
		deleted, err := e.m.DeleteByUser(ctx, "u-alice")
		mustOK(t, err)
		want := []string{mine[0], mine[2]}
		slices.Sort(want)
		if !slices.Equal(deleted, want) {
			t.Fatalf("DeleteByUser = %q; want %q", deleted, want)
		}
		list, err = e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		if len(list) != 0 {
			t.Fatalf("after DeleteByUser: %q", sids(list))
		}
		for _, sid := range mine {
			_, err := e.m.Get(ctx, sid)
			wantErr(t, err, auth.ErrNotFound)
		}
		got, err := e.m.Authenticate(ctx, bobCookie)
		mustOK(t, err)
		if got.SID != bob.SID {
			t.Fatal("another user's session was touched")
		}
	}},
	{name: "ListByUser drops dead logins and prunes the index", run: func(t *testing.T, e *env) {
		dead, _ := e.create(t, NewSession{Cookie: true})
		e.clk.Advance(40 * time.Minute)
		alive, _ := e.create(t, NewSession{Cookie: true})
		list, err := e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		if !slices.Equal(sids(list), []string{alive.SID}) {
			t.Fatalf("ListByUser = %q; want only %q", sids(list), alive.SID)
		}
		members, err := e.st.SMembers(ctx, userKey("u-alice"))
		mustOK(t, err)
		if slices.Contains(members, dead.SID) {
			t.Fatal("dead sid still in the index")
		}
	}},
	{name: "abandoned logins leave the index at the next login", run: func(t *testing.T, e *env) {
		for range pruneBatch {
			e.create(t, NewSession{Cookie: true})
			e.create(t, NewSession{Tokens: true})
		}
		e.clk.Advance(170 * time.Hour) // past the idle timeout and the family TTL
		alive, _ := e.create(t, NewSession{Cookie: true})
		// 2*pruneBatch dead entries: one login reads at most pruneBatch of
		// them, so a few logins are needed; each removes what it read.
		members, err := e.st.SMembers(ctx, userKey("u-alice"))
		mustOK(t, err)
		if len(members) < pruneBatch+1 || len(members) > pruneBatch+2 {
			t.Fatalf("index holds %d entries after one login; want %d or %d (pruneBatch removed)", len(members), pruneBatch+1, pruneBatch+2)
		}
		live := []string{alive.SID}
		for range 10 {
			s, _ := e.create(t, NewSession{Tokens: true})
			live = append(live, s.SID)
			members, err = e.st.SMembers(ctx, userKey("u-alice"))
			mustOK(t, err)
			if len(members) == len(live) {
				break
			}
		}
		slices.Sort(live)
		slices.Sort(members)
		if !slices.Equal(members, live) {
			t.Fatalf("index holds %d entries after %d live logins; want only the live ones", len(members), len(live))
		}
	}},
	{name: "one more login prunes a few abandoned ones entirely", run: func(t *testing.T, e *env) {
		for range 10 {
			e.create(t, NewSession{Cookie: true})
		}
		e.clk.Advance(2 * time.Hour)
		alive, _ := e.create(t, NewSession{Cookie: true})
		members, err := e.st.SMembers(ctx, userKey("u-alice"))
		mustOK(t, err)
		if !slices.Equal(members, []string{alive.SID}) {
			t.Fatalf("index = %d entries; want only the new login", len(members))
		}
	}},
	{name: "limit evicts the oldest login", cfg: Options{MaxPerUser: 2}, run: func(t *testing.T, e *env) {
		first, firstCookie := e.create(t, NewSession{Cookie: true})
		e.clk.Advance(time.Second)
		second, _ := e.create(t, NewSession{Cookie: true})
		e.clk.Advance(time.Second)
		third, _ := e.create(t, NewSession{Cookie: true})
		if !slices.Equal(third.Evicted, []string{first.SID}) {
			t.Fatalf("Evicted = %q; want %q", third.Evicted, first.SID)
		}
		_, err := e.m.Authenticate(ctx, firstCookie)
		wantErr(t, err, auth.ErrInvalid)
		list, err := e.m.ListByUser(ctx, "u-alice")
		mustOK(t, err)
		if !slices.Equal(sids(list), []string{second.SID, third.SID}) {
			t.Fatalf("ListByUser = %q", sids(list))
		}
		e.create(t, NewSession{UserID: "u-bob", Cookie: true}) // other users are not counted
	}},
	{name: "limit refuses when asked to", cfg: Options{MaxPerUser: 2, OnLimit: LimitRefuse}, run: func(t *testing.T, e *env) {
		first, _ := e.create(t, NewSession{Cookie: true})
		e.create(t, NewSession{Tokens: true})
		_, _, err := e.m.Create(ctx, NewSession{UserID: "u-alice", Cookie: true})
		wantErr(t, err, ErrLimitReached)
		mustOK(t, e.m.Delete(ctx, first.SID))
		e.create(t, NewSession{Cookie: true})
	}},
	{name: "garbage cookies are invalid", run: func(t *testing.T, e *env) {
		s, cookie := e.create(t, NewSession{Cookie: true})
		unknown := strings.Repeat("B", sidLen) + cookie[sidLen:]
		for _, c := range []string{"", ".", "x", cookie + "x", cookie[:len(cookie)-1], s.SID, strings.Replace(cookie, ".", "_", 1),
			strings.ToUpper(cookie), unknown, cookie[:sidLen] + "." + strings.Repeat("=", secretLen)} {
			if c == cookie {
				continue
			}
			_, err := e.m.Authenticate(ctx, c)
			if !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("Authenticate(%q) = %v; want ErrInvalid", c, err)
			}
		}
	}},
}

func TestManager(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range keyCases {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newEnv(t, be.open, tc.cfg))
				})
			}
		})
	}
}

func TestStoreDownIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	mustOK(t, err)
	defer r.Close()
	m, err := New(r, Options{})
	mustOK(t, err)
	s, cookie, err := m.Create(ctx, NewSession{UserID: "u", Cookie: true, Tokens: true})
	mustOK(t, err)

	srv.Stop()
	_, err = m.Authenticate(ctx, cookie)
	wantErr(t, err, auth.ErrUnavailable)
	_, err = m.Get(ctx, s.SID)
	wantErr(t, err, auth.ErrUnavailable)
	_, _, err = m.Create(ctx, NewSession{UserID: "u", Cookie: true})
	wantErr(t, err, auth.ErrUnavailable)
	wantErr(t, m.TouchFamily(ctx, s.SID), auth.ErrUnavailable)
	wantErr(t, m.Delete(ctx, s.SID), auth.ErrUnavailable)
	_, err = m.ListByUser(ctx, "u")
	wantErr(t, err, auth.ErrUnavailable)
	_, err = m.DeleteByUser(ctx, "u")
	wantErr(t, err, auth.ErrUnavailable)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

func TestCreateRefusesBadInput(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	m, err := New(st, Options{Rand: failingReader{}})
	mustOK(t, err)
	tests := []struct {
		name string
		ns   NewSession
	}{
		{name: "no user", ns: NewSession{Cookie: true}},
		{name: "neither cookie nor tokens", ns: NewSession{UserID: "u"}},
		{name: "random source fails", ns: NewSession{UserID: "u", Cookie: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c, err := m.Create(ctx, tt.ns)
			if err == nil || s != nil || c != "" {
				t.Fatalf("Create = %v, %q, %v; want an error", s, c, err)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	st := store.NewMemory(nil)
	defer st.Close()
	tests := []struct {
		name    string
		cfg     Options
		wantErr string
	}{
		{name: "zero config takes defaults", cfg: Options{}},
		{name: "negative idle", cfg: Options{IdleTimeout: -time.Second}, wantErr: "IdleTimeout"},
		{name: "touch not below idle", cfg: Options{IdleTimeout: time.Minute, TouchInterval: time.Minute}, wantErr: "TouchInterval"},
		{name: "negative limit", cfg: Options{MaxPerUser: -1}, wantErr: "MaxPerUser"},
		{name: "unknown policy", cfg: Options{OnLimit: "drop_newest"}, wantErr: "OnLimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(st, tt.cfg)
			if tt.wantErr == "" {
				mustOK(t, err)
				if m.cfg.IdleTimeout != 30*time.Minute || m.cfg.AbsoluteTimeout != 12*time.Hour || m.cfg.FamilyTTL != 168*time.Hour ||
					m.cfg.TouchInterval != time.Minute || m.cfg.OnLimit != LimitEvictOldest || m.cfg.Clock == nil || m.cfg.Rand == nil {
					t.Fatalf("defaults not applied: %+v", m.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v; want an error naming %s", err, tt.wantErr)
			}
		})
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil store) succeeded")
	}
}

func TestSplitCookie(t *testing.T) {
	sid := strings.Repeat("a", sidLen-1) + "Q" // canonical: "Q" has zero low bits
	secret := strings.Repeat("b", secretLen-1) + "Q"
	tests := []struct {
		name   string
		value  string
		wantOK bool
	}{
		{name: "well formed", value: sid + "." + secret, wantOK: true},
		{name: "empty", value: ""},
		{name: "no dot", value: sid + "x" + secret},
		{name: "padding", value: sid + "." + secret[:secretLen-1] + "="},
		{name: "standard base64 alphabet", value: "+" + sid[1:] + "." + secret},
		{name: "non-canonical trailing bits", value: sid + "." + strings.Repeat("b", secretLen)},
		{name: "non-canonical sid of before", value: strings.Repeat("a", sidLenV1) + "." + secret},
		{name: "sid of a length neither", value: strings.Repeat("a", sidLen-1) + "." + secret},
		{name: "too long", value: sid + "." + secret + "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SplitCookie(tt.value)
			if ok != tt.wantOK || (ok && got != sid) {
				t.Fatalf("SplitCookie = %q, %v; want ok=%v", got, ok, tt.wantOK)
			}
		})
	}
}
