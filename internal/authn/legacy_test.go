package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// fakeLegacy reads cookie "connect.sid": "s:forged" is a forgery (decided
// without a load), anything else is loaded from its map; loads are counted.
type fakeLegacy struct {
	sessions map[string]any // id -> *auth.Principal or error
	loads    int
}

func (f *fakeLegacy) CookieNames() []string { return []string{"connect.sid"} }

func (f *fakeLegacy) ParseLegacy(cookies Cookies) (LegacyCredential, bool, error) {
	v := cookies.Cookies("connect.sid")
	if v == "" {
		return LegacyCredential{}, false, nil
	}
	cred := LegacyCredential{Source: "shop", ID: v}
	if v == "s:forged" {
		return cred, true, fmt.Errorf("signature: %w", auth.ErrInvalid)
	}
	return cred, true, nil
}

func (f *fakeLegacy) VerifyLegacy(_ context.Context, cred LegacyCredential) (*auth.Principal, error) {
	f.loads++
	switch v := f.sessions[cred.ID].(type) {
	case *auth.Principal:
		cp := *v
		return &cp, nil
	case error:
		return nil, v
	}
	return nil, fmt.Errorf("legacy session %w", auth.ErrNotFound)
}

type sourceEvent struct {
	source  string
	client  string
	outcome auth.Outcome
}

type sourceRecorder struct {
	recorder
	sources []sourceEvent
}

func (r *sourceRecorder) RecordSource(source string, _ auth.Scheme, client, _ string, o auth.Outcome) {
	r.sources = append(r.sources, sourceEvent{source, client, o})
}

func TestLegacySession(t *testing.T) {
	carol := &auth.Principal{UserID: "u-carol", ClientID: "web", SID: "h-carol"}
	aliceLegacy := &auth.Principal{UserID: "u-alice", ClientID: "web", SID: "h-alice"}
	sessions := fakeVerifier{"s-alice": alice, "s-down": fmt.Errorf("redis: %w", auth.ErrUnavailable)}
	tests := []struct {
		name       string
		flags      Decider
		legacy     string
		session    string
		bearer     string
		wantStatus int
		wantCode   auth.Code
		wantUser   string
		wantSource string
		wantLoads  int
		wantEvent  *sourceEvent
		// wantAlongside is the SID of LegacyAlongside on an accepted
		// request: the legacy session next to the credential that won.
		wantAlongside string
	}{
		{name: "accepted as a session of its client", legacy: "s:carol", wantStatus: 200, wantUser: "u-carol", wantSource: "shop", wantLoads: 1,
			wantEvent: &sourceEvent{"shop", "web", auth.OutcomeAccepted}},
		{name: "forged: refused without a load", legacy: "s:forged", wantStatus: 401, wantCode: auth.CodeInvalidSession, wantLoads: 0,
			wantEvent: &sourceEvent{"shop", auth.ClientUnknown, auth.OutcomeInvalid}},
		{name: "not in the store", legacy: "s:gone", wantStatus: 401, wantCode: auth.CodeInvalidSession, wantLoads: 1},
		{name: "user refused", legacy: "s:suspended", wantStatus: 401, wantCode: auth.CodeInvalidSession, wantLoads: 1},
		{name: "user revoked", legacy: "s:revoked", wantStatus: 401, wantCode: auth.CodeInvalidSession, wantLoads: 1,
			wantEvent: &sourceEvent{"shop", auth.ClientUnknown, auth.OutcomeRevoked}},
		{name: "legacy store down, only credential: 503", legacy: "s:down", wantStatus: 503, wantCode: auth.CodeStoreUnavailable, wantLoads: 1,
			wantEvent: &sourceEvent{"shop", auth.ClientUnknown, auth.OutcomeUnavailable}},
		{name: "legacy store down, own session decides", legacy: "s:down", session: "s-alice", wantStatus: 200, wantUser: "u-alice", wantLoads: 1},
		{name: "legacy store down, bearer decides", legacy: "s:down", bearer: "Bearer t-alice", wantStatus: 200, wantUser: "u-alice", wantLoads: 1},
		{name: "own session store down still 503", legacy: "s:carol", session: "s-down", wantStatus: 503, wantCode: auth.CodeStoreUnavailable, wantLoads: 1},
		{name: "two users: conflict", legacy: "s:carol", session: "s-alice", wantStatus: 401, wantCode: auth.CodeCredentialConflict, wantLoads: 1},
		{name: "same user next to own session", legacy: "s:alice", session: "s-alice", wantStatus: 200, wantUser: "u-alice", wantLoads: 1, wantAlongside: "h-alice"},
		{name: "same user next to a bearer", legacy: "s:alice", bearer: "Bearer t-alice", wantStatus: 200, wantUser: "u-alice", wantLoads: 1, wantAlongside: "h-alice"},
		{name: "retiring refuses it like an own session", flags: retiring, legacy: "s:carol", wantStatus: 401, wantCode: auth.CodeSessionRetired, wantLoads: 1,
			wantEvent: &sourceEvent{"shop", "web", auth.OutcomeRetired}},
		{name: "jwt-only refuses it", flags: jwtOnly, legacy: "s:carol", wantStatus: 401, wantCode: auth.CodeSessionRetired, wantLoads: 1},
		{name: "legacy phase accepts it", flags: legacy, legacy: "s:carol", wantStatus: 200, wantUser: "u-carol", wantSource: "shop", wantLoads: 1},
		{name: "retiring: a token next to it is used", flags: retiring, legacy: "s:carol", bearer: "Bearer t-carol", wantStatus: 200, wantUser: "u-carol", wantLoads: 1, wantAlongside: "h-carol"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lv := &fakeLegacy{sessions: map[string]any{
				"s:carol":     carol,
				"s:alice":     aliceLegacy,
				"s:suspended": fmt.Errorf("user: %w", auth.ErrInvalid),
				"s:revoked":   fmt.Errorf("user: %w", auth.ErrRevoked),
				"s:down":      fmt.Errorf("legacy redis: %w", auth.ErrUnavailable),
			}}
			rec := &sourceRecorder{}
			cfg := Config{Sessions: sessions, Tokens: fakeVerifier{"t-alice": alice, "t-carol": carol}, Legacy: lv, Usage: rec}
			if tc.flags != nil {
				cfg.Flags = tc.flags
			}
			app := newLegacyApp(cfg)
			req := httptest.NewRequest("GET", "/me", nil)
			cookie := "connect.sid=" + tc.legacy
			if tc.session != "" {
				cookie += "; ts_session=" + tc.session
			}
			req.Header.Set("Cookie", cookie)
			if tc.bearer != "" {
				req.Header.Set("Authorization", tc.bearer)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantCode != "" && body["code"] != string(tc.wantCode) {
				t.Fatalf("code %v, want %s", body["code"], tc.wantCode)
			}
			if tc.wantUser != "" && body["user_id"] != tc.wantUser {
				t.Fatalf("user %v, want %s", body["user_id"], tc.wantUser)
			}
			if tc.wantSource != "" && (body["source"] != tc.wantSource || body["scheme"] != "session" || body["client_id"] != "web") {
				t.Fatalf("body %v, want source %s, scheme session, client web", body, tc.wantSource)
			}
			if tc.wantStatus == 200 && body["alongside"] != tc.wantAlongside {
				t.Fatalf("legacy session alongside = %v, want %q", body["alongside"], tc.wantAlongside)
			}
			if lv.loads != tc.wantLoads {
				t.Fatalf("%d loads, want %d", lv.loads, tc.wantLoads)
			}
			if tc.wantEvent != nil && (len(rec.sources) != 1 || rec.sources[0] != *tc.wantEvent) {
				t.Fatalf("source events %v, want [%v]", rec.sources, *tc.wantEvent)
			}
		})
	}
}

func newLegacyApp(cfg Config) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		code := auth.ErrorCode(err)
		status := 401
		switch code {
		case auth.CodeStoreUnavailable:
			status = 503
		case auth.CodeDuplicateCookie:
			status = 400
		}
		return c.Status(status).JSON(fiber.Map{"code": code})
	}})
	app.All("/me", New(cfg), func(c *fiber.Ctx) error {
		p := Principal(c)
		along := ""
		if lp := LegacyAlongside(c); lp != nil {
			along = lp.SID
		}
		return c.JSON(fiber.Map{"user_id": p.UserID, "scheme": p.Scheme.String(), "client_id": p.ClientID, "source": p.Source, "alongside": along})
	})
	return app
}

// A request without a legacy cookie never asks the legacy verifier to
// load, and a duplicated legacy cookie is refused like an own one.
func TestLegacyCookieAbsentOrDuplicate(t *testing.T) {
	lv := &fakeLegacy{}
	app := newLegacyApp(Config{Sessions: fakeVerifier{"s-alice": alice}, Legacy: lv})
	for _, tc := range []struct {
		cookie string
		want   int
	}{{"ts_session=s-alice", 200}, {"connect.sid=s:a; connect.sid=s:b", 400}, {"", 401}} {
		req := httptest.NewRequest("GET", "/me", nil)
		if tc.cookie != "" {
			req.Header.Set("Cookie", tc.cookie)
		}
		resp, err := app.Test(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want {
			t.Fatalf("cookie %q: status %d, want %d", tc.cookie, resp.StatusCode, tc.want)
		}
	}
	if lv.loads != 0 {
		t.Fatalf("%d loads", lv.loads)
	}
}
