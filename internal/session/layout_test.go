package session

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// TestOldLayoutLoginsKeepWorking: logins written before the compact layout
// (a JSON rec, ck, seen, fam) are verified, touched, listed, extended by
// token activity and deleted; what is written to them uses the new names.
func TestOldLayoutLoginsKeepWorking(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, be.open, Options{})
			now := e.clk.Now()
			sid := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
			secret := []byte("0123456789abcdef0123456789abcdef")
			cookie := sid + "." + base64.RawURLEncoding.EncodeToString(secret)
			ck := sha256.Sum256(secret)
			rec, _ := json.Marshal(record{UserID: "u-old", Email: "old@example.com", ClientID: "web",
				Roles: []string{"user"}, CreatedAt: now, IP: "192.0.2.1", UserAgent: "Old/1.0"})
			key := sessionKey(sid)
			for _, f := range []struct {
				name string
				val  []byte
			}{
				{name: "ck", val: ck[:]},
				{name: "fam", val: encodeTime(now)},
				{name: "rec", val: rec},
			} {
				mustOK(t, e.st.Store.HSet(ctx, key, time.Hour, f.name, f.val))
			}
			mustOK(t, e.st.Store.SAdd(ctx, userKey("u-old"), time.Hour, sid))

			s, err := e.m.Verify(ctx, cookie)
			mustOK(t, err)
			if s.UserID != "u-old" || s.Email != "old@example.com" || s.UserAgent != "Old/1.0" || !s.HasCookie || !s.HasTokens {
				t.Fatalf("Verify = %+v", s)
			}
			e.clk.Advance(2 * time.Minute)
			e.m.Touch(ctx, s)
			mustOK(t, e.m.TouchFamily(ctx, sid))
			h, err := e.st.HGetAll(ctx, key)
			mustOK(t, err)
			if _, ok := h[fieldSeen]; !ok {
				t.Fatalf("Touch did not write %q: %q", fieldSeen, h)
			}
			if _, ok := h[fieldFamily]; !ok {
				t.Fatalf("TouchFamily did not write %q: %q", fieldFamily, h)
			}
			got, err := e.m.Get(ctx, sid)
			mustOK(t, err)
			if !got.LastSeenAt.Equal(e.clk.Now()) || !got.IdleExpiresAt.Equal(e.clk.Now().Add(DefaultOptions.IdleTimeout)) {
				t.Fatalf("after Touch: %+v", got)
			}
			list, err := e.m.ListByUser(ctx, "u-old")
			mustOK(t, err)
			if len(list) != 1 || list[0].SID != sid {
				t.Fatalf("ListByUser = %+v", list)
			}
			mustOK(t, e.m.Delete(ctx, sid))
			_, err = e.m.Verify(ctx, cookie)
			wantErr(t, err, auth.ErrInvalid)
		})
	}
}

// TestRecordStaysPacked: every field of a login is at most store.ChunkLen
// bytes, whatever the length of what it holds, and reads back whole.
func TestRecordStaysPacked(t *testing.T) {
	e := newEnv(t, backends[0].open, Options{})
	for _, tc := range []struct {
		name      string
		ns        NewSession
		wantParts int // 0: as many as the record needs
	}{
		{name: "no user agent", ns: NewSession{UserID: "u-1", ClientID: "web", Cookie: true, Tokens: true}, wantParts: 1},
		{name: "browser user agent", ns: NewSession{UserID: "u-2", Email: "user2@example.com", ClientID: "web",
			Roles: []string{"user", "admin"}, IP: "2001:db8::1", UserAgent: strings.Repeat("Mozilla/5.0 ", 10), Cookie: true, Tokens: true}},
		{name: "longest user agent", ns: NewSession{UserID: "u-3", Email: strings.Repeat("e", 300) + "@example.com",
			UserAgent: strings.Repeat("ü", 128), Tokens: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := e.create(t, tc.ns)
			h, err := e.st.HGetAll(ctx, sessionKey(s.SID))
			mustOK(t, err)
			parts := 0
			for f, v := range h {
				if len(v) > store.ChunkLen || len(f) > store.ChunkLen {
					t.Fatalf("field %q is %d bytes", f, len(v))
				}
				if strings.HasPrefix(f, fieldRecord) {
					parts++
				}
			}
			l, err := decodeLogin(s.SID, h)
			mustOK(t, err)
			want := tc.wantParts
			if want == 0 {
				want = (len(encodeRecord(l)) + store.ChunkLen - 1) / store.ChunkLen
			}
			if parts != want || parts < 1 {
				t.Fatalf("%d record parts; want %d", parts, want)
			}
			got, err := e.m.Get(ctx, s.SID)
			mustOK(t, err)
			if got.UserID != tc.ns.UserID || got.Email != tc.ns.Email || got.UserAgent != tc.ns.UserAgent ||
				got.IP != tc.ns.IP || !slices.Equal(got.Roles, tc.ns.Roles) || !got.CreatedAt.Equal(s.CreatedAt) {
				t.Fatalf("Get = %+v; want %+v", got, tc.ns)
			}
		})
	}
}

// TestCorruptRecordsAreRefused: a truncated or padded record or identity
// is corrupt, never a login with missing fields.
func TestCorruptRecordsAreRefused(t *testing.T) {
	l := &login{rec: record{UserID: "u-1", Email: "a@b", Roles: []string{"x"}, CreatedAt: time.Unix(1, 0), IP: "192.0.2.1"}, secretHash: make([]byte, storedHashLen)}
	whole := map[string][]byte{}
	for _, f := range loginFields(l) {
		whole[f.Name] = f.Value
	}
	if got, err := decodeLogin("s", whole); err != nil || got.rec.UserID != "u-1" || got.rec.IP != "192.0.2.1" || len(got.secretHash) != storedHashLen {
		t.Fatalf("decodeLogin = %+v, %v", got, err)
	}
	for _, field := range []string{fieldRecord, store.FieldIdentity} {
		enc := whole[field]
		for i := range len(enc) + 1 {
			h := maps.Clone(whole)
			h[field] = enc[:i]
			if i == len(enc) {
				h[field] = append(slices.Clone(enc), 0)
			}
			if _, err := decodeLogin("s", h); err == nil {
				t.Fatalf("field %s cut at %d of %d bytes decoded", field, i, len(enc))
			}
		}
	}
	h := maps.Clone(whole)
	delete(h, store.FieldIdentity)
	if _, err := decodeLogin("s", h); err == nil {
		t.Fatal("a record without identity decoded")
	}
	// Every kind of IP and a User-Agent: a cut anywhere is corrupt too.
	for _, ip := range []string{"192.0.2.1", "2001:db8::1", "fe80::1%eth0"} {
		l := &login{rec: record{UserID: "u-1", CreatedAt: time.Unix(1, 0), IP: ip, UserAgent: "curl/8.5.0"}, secretHash: make([]byte, storedHashLen)}
		enc := encodeRecord(l)
		h := map[string][]byte{store.FieldIdentity: store.EncodeIdentity(l.identity())}
		for i := 9; i < len(enc); i++ {
			h[fieldRecord] = enc[:i]
			if _, err := decodeLogin("s", h); err == nil {
				t.Fatalf("record of IP %s cut at %d of %d bytes decoded", ip, i, len(enc))
			}
		}
		h[fieldRecord] = append(slices.Clone(enc), 'x')
		if _, err := decodeLogin("s", h); err == nil {
			t.Fatalf("record of IP %s with a byte more decoded", ip)
		}
		h[fieldRecord] = enc
		if got, err := decodeLogin("s", h); err != nil || got.rec.IP != ip || got.rec.UserAgent != "curl/8.5.0" {
			t.Fatalf("decodeLogin = %+v, %v", got, err)
		}
	}
	// Unknown flag bits are corrupt, not ignored.
	enc := slices.Clone(whole[fieldRecord])
	enc[9] |= 0x80
	h = maps.Clone(whole)
	h[fieldRecord] = enc
	if _, err := decodeLogin("s", h); err == nil {
		t.Fatal("a record with unknown flags decoded")
	}
}

// TestUserAgentPacking: every User-Agent reads back exactly; browser ones
// shrink to a few bytes.
func TestUserAgentPacking(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ua      string
		maxSize int
	}{
		{name: "edge on windows", ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0", maxSize: 16},
		{name: "safari on iphone", ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", maxSize: 24},
		{name: "firefox on linux", ua: "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", maxSize: 16},
		{name: "chrome on android", ua: "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", maxSize: 16},
		{name: "curl", ua: "curl/8.5.0", maxSize: 10},
		{name: "empty", ua: "", maxSize: 0},
		{name: "utf-8", ua: "Münster-Bot/1.0 (ü)", maxSize: 25},
		{name: "control bytes kept raw", ua: "a\x01b\x00c", maxSize: 6},
		{name: "a phrase cut short", ua: "Mozilla/5.0 (Windows NT 10", maxSize: 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := packUserAgent(tc.ua)
			if len(b) > tc.maxSize {
				t.Fatalf("packed to %d bytes; want at most %d", len(b), tc.maxSize)
			}
			if got, ok := unpackUserAgent(b); !ok || got != tc.ua {
				t.Fatalf("unpack = %q, %v; want %q", got, ok, tc.ua)
			}
		})
	}
	if _, ok := unpackUserAgent([]byte{'a', 0}); ok {
		t.Fatal("a 0x00 byte inside a packed User-Agent was accepted")
	}
}

func FuzzUserAgentPacking(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
	f.Add("\x00\x1f")
	f.Fuzz(func(t *testing.T, ua string) {
		if got, ok := unpackUserAgent(packUserAgent(ua)); !ok || got != ua {
			t.Fatalf("round trip of %q = %q, %v", ua, got, ok)
		}
	})
}

// encodeRecordV2 is r as written before version 3 (creation, then the
// cookie hash, the IP as text and the packed User-Agent, each behind a
// uvarint length), with f written at creation.
func encodeRecordV2(created time.Time, secretHash []byte, ip, ua string) []byte {
	b := []byte{recordVersion2}
	b = binary.BigEndian.AppendUint64(b, uint64(created.UnixNano()))
	b = store.AppendBytes(b, secretHash)
	b = store.AppendString(b, ip)
	return store.AppendBytes(b, packUserAgent(ua))
}

// TestVersion2LoginsKeepWorking: a login of the layout before version 3 (r
// version 2 with the IP as text, f written at creation, a 22-character sid)
// is verified, touched, listed, extended by token activity
// and deleted.
func TestVersion2LoginsKeepWorking(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, be.open, Options{})
			now := e.clk.Now()
			sid := base64.RawURLEncoding.EncodeToString([]byte("fedcba9876543210"))
			secret := []byte("0123456789abcdef0123456789abcdef")
			cookie := sid + "." + base64.RawURLEncoding.EncodeToString(secret)
			key := sessionKey(sid)
			fields := append(store.IdentityFields(store.Identity{UserID: "u-v2", Email: "v2@example.com", ClientID: "web", Roles: []string{"user"}}),
				store.Field{Name: fieldRecord, Value: encodeRecordV2(now, storedHash(secret), "2001:db8::7", "Old/2.0")},
				store.Field{Name: fieldFamily, Value: encodeTime(now)})
			mustOK(t, e.st.Store.HSetFields(ctx, key, time.Hour, fields...))
			mustOK(t, e.st.Store.SAdd(ctx, userKey("u-v2"), time.Hour, sid))

			s, err := e.m.Verify(ctx, cookie)
			mustOK(t, err)
			if s.UserID != "u-v2" || s.IP != "2001:db8::7" || s.UserAgent != "Old/2.0" || !s.HasCookie || !s.HasTokens || !s.CreatedAt.Equal(now) {
				t.Fatalf("Verify = %+v", s)
			}
			e.clk.Advance(2 * time.Minute)
			e.m.Touch(ctx, s)
			mustOK(t, e.m.TouchFamily(ctx, sid))
			got, err := e.m.Get(ctx, sid)
			mustOK(t, err)
			if !got.LastSeenAt.Equal(e.clk.Now()) || !got.HasTokens {
				t.Fatalf("after Touch and TouchFamily: %+v", got)
			}
			list, err := e.m.ListByUser(ctx, "u-v2")
			mustOK(t, err)
			if len(list) != 1 || list[0].SID != sid || list[0].IP != "2001:db8::7" {
				t.Fatalf("ListByUser = %+v", list)
			}
			mustOK(t, e.m.Delete(ctx, sid))
			_, err = e.m.Verify(ctx, cookie)
			wantErr(t, err, auth.ErrInvalid)
		})
	}
}

// TestNewLoginsAreCompact: a new login has a 21-character sid, no f until
// its first token activity after creation, and the IP in raw bytes; and it
// reads back whole.
func TestNewLoginsAreCompact(t *testing.T) {
	e := newEnv(t, backends[0].open, Options{})
	s, cookie := e.create(t, NewSession{UserID: "u-1", ClientID: "web", IP: "192.0.2.1", Cookie: true, Tokens: true})
	if len(s.SID) != sidLen || !ValidSID(s.SID) || len(cookie) != cookieLen {
		t.Fatalf("sid %q, cookie of %d characters", s.SID, len(cookie))
	}
	h, err := e.st.HGetAll(ctx, sessionKey(s.SID))
	mustOK(t, err)
	if _, ok := h[fieldFamily]; ok {
		t.Fatalf("a new login with tokens wrote %q: %q", fieldFamily, h)
	}
	// version, creation, flags, cookie hash, 4 bytes of IPv4, empty User-Agent
	if n := len(h[fieldRecord]); n != 1+8+1+storedHashLen+4+1 {
		t.Fatalf("record of %d bytes: %q", n, h[fieldRecord])
	}
	if got, ok := store.LoginCreated(h); !ok || !got.Equal(s.CreatedAt) {
		t.Fatalf("store.LoginCreated = %v, %v; want %v", got, ok, s.CreatedAt)
	}
	got, err := e.m.Verify(ctx, cookie)
	mustOK(t, err)
	if got.IP != "192.0.2.1" || !got.HasTokens || !got.LastSeenAt.Equal(s.CreatedAt) {
		t.Fatalf("Verify = %+v", got)
	}
	e.clk.Advance(time.Minute)
	mustOK(t, e.m.TouchFamily(ctx, s.SID))
	if got, err = e.m.Get(ctx, s.SID); err != nil || !got.LastSeenAt.Equal(e.clk.Now()) {
		t.Fatalf("after TouchFamily: %+v, %v", got, err)
	}
}

// TestIPPacking: every IP reads back exactly as the login was given it; what
// a raw form would not give back is kept as text.
func TestIPPacking(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		kind byte
	}{
		{"", ipNone},
		{"192.0.2.1", ipV4},
		{"2001:db8::1", ipV6},
		{"::ffff:192.0.2.1", ipV6},
		{"fe80::1%eth0", ipText},
		{"2001:DB8::1", ipText},
		{"2001:db8:0::1", ipText},
		{"unknown", ipText},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			l := &login{rec: record{UserID: "u-1", CreatedAt: time.Unix(1, 0), IP: tc.ip}}
			if kind, _ := packIP(tc.ip); kind != tc.kind {
				t.Fatalf("kind %d; want %d", kind, tc.kind)
			}
			h := map[string][]byte{}
			for _, f := range loginFields(l) {
				h[f.Name] = f.Value
			}
			got, err := decodeLogin("s", h)
			if err != nil || got.rec.IP != tc.ip {
				t.Fatalf("decodeLogin: IP %q, %v", got.rec.IP, err)
			}
		})
	}
}
