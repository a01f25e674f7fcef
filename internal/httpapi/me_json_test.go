package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

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
	f.Fuzz(func(t *testing.T, user, email, client, role, sid string, expNS int64, off int) {
		p := auth.Principal{UserID: user, Email: email, ClientID: client, Roles: []string{role}, SID: sid, Scheme: auth.SchemeBearer}
		if expNS != 0 {
			p.ExpiresAt = time.Unix(0, expNS).In(time.FixedZone("z", off%(24*3600)))
		}
		got, fast := appendMe(nil, &p)
		if !fast {
			return
		}
		want, err := json.Marshal(meResponseOf(&p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendMe:\n got %s\nwant %s (%v)", got, want, err)
		}
	})
}
