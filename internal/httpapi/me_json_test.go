package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// The appended JSON of /auth/me is byte for byte what encoding/json writes.
func TestMeJSONMatchesEncodingJSON(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 600_700_800, time.UTC)
	tests := []struct {
		name     string
		p        auth.Principal
		wantFast bool
	}{
		{name: "bearer", p: auth.Principal{UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Roles: []string{"user"}, Scheme: auth.SchemeBearer, SID: "s1", ExpiresAt: exp}, wantFast: true},
		{name: "legacy session names its source", p: auth.Principal{UserID: "u-alice", ClientID: "web", Scheme: auth.SchemeSession, SID: "legacy:ab12", ExpiresAt: exp, Source: "shop"}, wantFast: true},
		{name: "no roles, no expiry", p: auth.Principal{UserID: "u", Scheme: auth.SchemeSession}, wantFast: true},
		{name: "several roles", p: auth.Principal{UserID: "u", Roles: []string{"user", "admin", ""}, Scheme: auth.SchemeJWTCookie}, wantFast: true},
		{name: "zone offset", p: auth.Principal{UserID: "u", ExpiresAt: exp.In(time.FixedZone("x", -(3*3600 + 30*60)))}, wantFast: true},
		{name: "whole seconds", p: auth.Principal{UserID: "u", ExpiresAt: exp.Truncate(time.Second)}, wantFast: true},
		{name: "html in email", p: auth.Principal{UserID: "u", Email: "<a>&b@example.com"}},
		{name: "quote and backslash", p: auth.Principal{UserID: `u"\`}},
		{name: "unicode", p: auth.Principal{UserID: "u", Email: "jörg@example.com", Roles: []string{"\u2028"}}},
		{name: "control", p: auth.Principal{UserID: "u\n"}},
		{name: "invalid utf-8", p: auth.Principal{UserID: "u\xff"}},
		{name: "offset with seconds", p: auth.Principal{UserID: "u", ExpiresAt: exp.In(time.FixedZone("lmt", 3600+17))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := json.Marshal(meResponseOf(&tc.p))
			got, fast := appendMe(nil, &tc.p)
			if fast != tc.wantFast {
				t.Fatalf("fast path taken = %v; want %v", fast, tc.wantFast)
			}
			if fast && (wantErr != nil || !bytes.Equal(got, want)) {
				t.Fatalf("appendMe:\n got %s\nwant %s (%v)", got, want, wantErr)
			}
		})
	}
}

func FuzzMeJSON(f *testing.F) {
	f.Add("u-alice", "alice@example.com", "web", "user", "sid", int64(1893553445600700800), 0)
	f.Add("<", "\u2028", "\xff", "", "\"", int64(0), 3600)
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	m := newMeCache()
	f.Fuzz(func(t *testing.T, user, email, client, role, sid string, expNS int64, off int) {
		p := auth.Principal{UserID: user, Email: email, ClientID: client, Roles: []string{role}, SID: sid, Scheme: auth.SchemeBearer}
		if expNS != 0 {
			p.ExpiresAt = time.Unix(0, expNS).In(time.FixedZone("z", off%(24*3600)))
		}
		want, err := json.Marshal(meResponseOf(&p))
		// What /auth/me answers, rendered then cached (the cache is shared
		// by every input, so a slot may hold another one's body).
		for range 2 {
			got, gotErr := m.body(c, &p)
			if (gotErr != nil) != (err != nil) || !bytes.Equal(got, want) {
				t.Fatalf("meCache:\n got %s (%v)\nwant %s (%v)", got, gotErr, want, err)
			}
		}
		got, fast := appendMe(nil, &p)
		if !fast {
			return
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendMe:\n got %s\nwant %s (%v)", got, want, err)
		}
	})
}

// tricky are principals whose values need every kind of escaping
// encoding/json does, or none.
func tricky() []auth.Principal {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 600_700_800, time.UTC)
	return []auth.Principal{
		{UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Roles: []string{"user"}, Scheme: auth.SchemeBearer, SID: "s1", ExpiresAt: exp},
		{UserID: `u"q\`, Email: "<a>&b@example.com", ClientID: "web", Roles: []string{"\u2028", "ü"}, Scheme: auth.SchemeSession, SID: "s1", ExpiresAt: exp},
		{UserID: "u\n\t\x00", Email: "jörg@example.com", ClientID: "spa\u2029", Scheme: auth.SchemeJWTCookie, SID: "s1"},
		{UserID: "u\xff", SID: "s1", ExpiresAt: exp.In(time.FixedZone("x", -(3*3600 + 30*60))), Source: "shop<"},
	}
}

// The cached body is always the one encoding/json writes for the principal
// asked about: a slot that last served another identity (same sid, any
// field different) is rendered anew, never served.
func TestMeCacheNeverServesAnotherIdentity(t *testing.T) {
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	base := tricky()[0]
	variants := tricky()
	for _, change := range []func(p *auth.Principal){
		func(p *auth.Principal) { p.UserID = "u-bob" },
		func(p *auth.Principal) { p.Email = "bob@example.com" },
		func(p *auth.Principal) { p.ClientID = "spa" },
		func(p *auth.Principal) { p.Roles = []string{"admin"} },
		func(p *auth.Principal) { p.Roles = []string{"user", "admin"} },
		func(p *auth.Principal) { p.Roles = nil },
		func(p *auth.Principal) { p.Scheme = auth.SchemeSession },
		func(p *auth.Principal) { p.ExpiresAt = p.ExpiresAt.Add(time.Nanosecond) },
		func(p *auth.Principal) { p.ExpiresAt = p.ExpiresAt.In(time.FixedZone("plus1", 3600)) },
		func(p *auth.Principal) { p.ExpiresAt = time.Time{} },
		func(p *auth.Principal) { p.Source = "shop" },
	} {
		p := base
		change(&p)
		variants = append(variants, p)
	}
	m := newMeCache()
	// Every order of two identities in the same slot: a then b, b then a,
	// and each one twice (the hit).
	for i := range variants {
		for j := range variants {
			for _, p := range []*auth.Principal{&variants[i], &variants[j], &variants[j], &variants[i]} {
				want, err := json.Marshal(meResponseOf(p))
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.body(c, p)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("after %d then %d:\n got %s\nwant %s (%v)", i, j, got, want, err)
				}
			}
		}
	}
}

// The cache keeps its own copy of the roles: a caller that changes its
// slice afterwards gets its new roles, not the cached ones.
func TestMeCacheOwnsItsRoles(t *testing.T) {
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	m := newMeCache()
	p := auth.Principal{UserID: "u", Roles: []string{"user"}, SID: "s"}
	if _, err := m.body(c, &p); err != nil {
		t.Fatal(err)
	}
	p.Roles[0] = "admin"
	got, _ := m.body(c, &p)
	if !bytes.Contains(got, []byte(`"roles":["admin"]`)) {
		t.Fatalf("body %s; want the roles as they are now", got)
	}
}

// A hit is served from the cache: the second request of a login renders
// nothing (this is what the benchmark relies on).
func TestMeCacheHitAllocatesNothing(t *testing.T) {
	app := fiber.New()
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	m := newMeCache()
	for _, p := range tricky() {
		if _, err := m.body(c, &p); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() { _, _ = m.body(c, &p) }); n != 0 {
			t.Errorf("%s: %v allocations per hit; want 0", p.UserID, n)
		}
	}
}
