package authn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
)

// fakeVerifier maps raw credential strings to principals or errors.
type fakeVerifier map[string]any

func (f fakeVerifier) lookup(raw string) (*auth.Principal, error) {
	switch v := f[raw].(type) {
	case *auth.Principal:
		cp := *v
		return &cp, nil
	case error:
		return nil, v
	}
	return nil, fmt.Errorf("unknown: %w", auth.ErrInvalid)
}

func (f fakeVerifier) VerifySession(_ context.Context, raw string) (*auth.Principal, Touch, error) {
	p, err := f.lookup(raw)
	return p, nil, err
}

// touchingVerifier is a session verifier whose every session is due for a
// touch; it counts the touches the middleware makes.
type touchingVerifier struct {
	fakeVerifier
	touched *int
}

func (v touchingVerifier) VerifySession(ctx context.Context, raw string) (*auth.Principal, Touch, error) {
	p, _, err := v.fakeVerifier.VerifySession(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	return p, func(context.Context) { *v.touched++ }, nil
}
func (f fakeVerifier) VerifyToken(raw string) (*auth.Principal, error) { return f.lookup(raw) }

type phaseDecider featureflags.Decision

func (d phaseDecider) Decide(string, string) featureflags.Decision { return featureflags.Decision(d) }

type event struct {
	scheme  auth.Scheme
	client  string
	outcome auth.Outcome
}

type recorder struct{ events []event }

func (r *recorder) Record(s auth.Scheme, client, _ string, o auth.Outcome) {
	r.events = append(r.events, event{s, client, o})
}

var (
	alice = &auth.Principal{UserID: "u-alice", Email: "alice@example.com", ClientID: "web", SID: "sid-a"}
	bob   = &auth.Principal{UserID: "u-bob", Email: "bob@example.com", ClientID: "mobile", SID: "sid-b"}

	dual     = phaseDecider{Phase: featureflags.PhaseDual, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	legacy   = phaseDecider{Phase: featureflags.PhaseLegacy, AcceptSession: true}
	jwtOnly  = phaseDecider{Phase: featureflags.PhaseJWTOnly, AcceptTokens: true}
	retiring = phaseDecider{Phase: featureflags.PhaseRetiring, AcceptTokens: true, AllowExchange: true}
	prefer   = phaseDecider{Phase: featureflags.PhasePreferJWT, AcceptSession: true, AcceptTokens: true, AllowExchange: true, Deprecate: true,
		DeprecationHeader: "@1767225600", SunsetHeader: "Wed, 30 Jun 2027 00:00:00 GMT", LinkHeader: `<https://docs.example/m>; rel="deprecation"; type="text/html"`}
)

func newApp(cfg Config) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		code := auth.ErrorCode(err)
		status := 401
		switch code {
		case auth.CodeStoreUnavailable:
			status = 503
		case auth.CodeCSRF:
			status = 403
		}
		return c.Status(status).JSON(fiber.Map{"code": code})
	}})
	app.All("/me", New(cfg), func(c *fiber.Ctx) error {
		p := Principal(c)
		if p == nil {
			return c.JSON(fiber.Map{"anonymous": true})
		}
		return c.JSON(fiber.Map{"user_id": p.UserID, "scheme": p.Scheme.String(), "client_id": p.ClientID})
	})
	return app
}

func TestMiddleware(t *testing.T) {
	sessions := fakeVerifier{
		"s-alice":   alice,
		"s-bob":     bob,
		"s-expired": fmt.Errorf("idle: %w", auth.ErrExpired),
		"s-down":    fmt.Errorf("redis: %w", auth.ErrUnavailable),
	}
	tokens := fakeVerifier{
		"t-alice":   alice,
		"t-bob":     bob,
		"t-revoked": fmt.Errorf("jti: %w", auth.ErrRevoked),
		"t-expired": fmt.Errorf("exp: %w", auth.ErrExpired),
	}
	tests := []struct {
		name       string
		flags      Decider
		session    string
		bearer     string // full Authorization header
		jwtCookie  string
		optional   bool
		wantStatus int
		wantCode   auth.Code
		wantScheme string
		wantUser   string
		wantWWW    string
		wantEvent  *event
		// wantNoEvent: the request must not be counted at all.
		wantNoEvent bool
	}{
		{name: "no credential", flags: dual, wantStatus: 401, wantCode: auth.CodeUnauthenticated, wantWWW: "Bearer",
			wantEvent: &event{auth.SchemeNone, auth.ClientUnknown, auth.OutcomeMissing}},
		{name: "no credential optional", flags: dual, optional: true, wantStatus: 200, wantNoEvent: true},
		{name: "session", flags: dual, session: "s-alice", wantStatus: 200, wantScheme: "session", wantUser: "u-alice",
			wantEvent: &event{auth.SchemeSession, "web", auth.OutcomeAccepted}},
		{name: "bearer", flags: dual, bearer: "Bearer t-alice", wantStatus: 200, wantScheme: "bearer", wantUser: "u-alice",
			wantEvent: &event{auth.SchemeBearer, "web", auth.OutcomeAccepted}},
		{name: "bearer scheme case-insensitive", flags: dual, bearer: "bEaReR t-alice", wantStatus: 200, wantScheme: "bearer"},
		{name: "jwt cookie", flags: dual, jwtCookie: "t-alice", wantStatus: 200, wantScheme: "jwt_cookie",
			wantEvent: &event{auth.SchemeJWTCookie, "web", auth.OutcomeAccepted}},
		{name: "basic auth is not ours", flags: dual, bearer: "Basic YTpi", wantStatus: 401, wantCode: auth.CodeUnauthenticated,
			wantEvent: &event{auth.SchemeNone, auth.ClientUnknown, auth.OutcomeMissing}},
		{name: "bearer without token", flags: dual, bearer: "Bearer", wantStatus: 401, wantCode: auth.CodeInvalidToken, wantWWW: `Bearer error="invalid_request"`},
		{name: "bearer with space in token", flags: dual, bearer: "Bearer a b", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		// Any spacing of the Bearer scheme other than SP is malformed, never
		// "another scheme": next to a valid session it would otherwise go
		// unchecked (and the reverse proxy strips it as a bearer).
		{name: "bearer with a tab", flags: dual, session: "s-alice", bearer: "Bearer\tt-bob", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "bearer with a comma", flags: dual, session: "s-alice", bearer: "bearer,t-bob", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "bearer with a vertical tab", flags: dual, session: "s-alice", bearer: "BEARER\vt-bob", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "another scheme next to a session", flags: dual, session: "s-alice", bearer: "BearerX t-bob", wantStatus: 200, wantScheme: "session", wantUser: "u-alice"},
		// The characters are checked after verification fails (middleware.go):
		// the answer must be the same as checking them first, with a
		// session next to the bad header too.
		{name: "bearer with a byte outside b64token", flags: dual, bearer: "Bearer t-alice$", wantStatus: 401, wantCode: auth.CodeInvalidToken, wantWWW: `Bearer error="invalid_request"`,
			wantEvent: &event{auth.SchemeBearer, auth.ClientUnknown, auth.OutcomeInvalid}},
		{name: "malformed bearer beats good session", flags: dual, session: "s-alice", bearer: "Bearer t-alice\x01", wantStatus: 401, wantCode: auth.CodeInvalidToken, wantWWW: `Bearer error="invalid_request"`},
		{name: "bearer garbage", flags: dual, bearer: "Bearer zzz", wantStatus: 401, wantCode: auth.CodeInvalidToken, wantWWW: `Bearer error="invalid_token"`,
			wantEvent: &event{auth.SchemeBearer, auth.ClientUnknown, auth.OutcomeInvalid}},
		{name: "bearer revoked", flags: dual, bearer: "Bearer t-revoked", wantStatus: 401, wantCode: auth.CodeInvalidToken,
			wantEvent: &event{auth.SchemeBearer, auth.ClientUnknown, auth.OutcomeRevoked}},
		{name: "bad bearer beats good session", flags: dual, session: "s-alice", bearer: "Bearer t-expired", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "stale session cookie ignored next to bearer", flags: dual, session: "s-expired", bearer: "Bearer t-alice", wantStatus: 200, wantScheme: "bearer"},
		{name: "session expired", flags: dual, session: "s-expired", wantStatus: 401, wantCode: auth.CodeInvalidSession,
			wantEvent: &event{auth.SchemeSession, auth.ClientUnknown, auth.OutcomeExpired}},
		{name: "session never issued", flags: dual, session: "forged", wantStatus: 401, wantCode: auth.CodeInvalidSession},
		{name: "store down", flags: dual, session: "s-down", wantStatus: 503, wantCode: auth.CodeStoreUnavailable},
		{name: "two users", flags: dual, session: "s-bob", bearer: "Bearer t-alice", wantStatus: 401, wantCode: auth.CodeCredentialConflict,
			wantEvent: &event{auth.SchemeNone, auth.ClientUnknown, auth.OutcomeConflict}},
		{name: "same user both: bearer wins", flags: dual, session: "s-alice", bearer: "Bearer t-alice", wantStatus: 200, wantScheme: "bearer"},
		{name: "legacy refuses bearer", flags: legacy, bearer: "Bearer t-alice", wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "legacy accepts session", flags: legacy, session: "s-alice", wantStatus: 200, wantScheme: "session"},
		{name: "jwt-only retires session", flags: jwtOnly, session: "s-alice", wantStatus: 401, wantCode: auth.CodeSessionRetired,
			wantEvent: &event{auth.SchemeSession, "web", auth.OutcomeRetired}},
		{name: "jwt-only bearer ok", flags: jwtOnly, bearer: "Bearer t-alice", wantStatus: 200, wantScheme: "bearer"},
		{name: "retiring session with token falls to token", flags: retiring, session: "s-alice", jwtCookie: "t-alice", wantStatus: 200, wantScheme: "jwt_cookie"},
		{name: "retiring session alone", flags: retiring, session: "s-alice", wantStatus: 401, wantCode: auth.CodeSessionRetired},
		{name: "optional still refuses bad credential", flags: dual, optional: true, bearer: "Bearer zzz", wantStatus: 401, wantCode: auth.CodeInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			app := newApp(Config{Sessions: sessions, Tokens: tokens, Flags: tt.flags, Usage: rec, Optional: tt.optional})
			req := httptest.NewRequest("GET", "/me", nil)
			if tt.bearer != "" {
				req.Header.Set("Authorization", tt.bearer)
			}
			var cookies []string
			if tt.session != "" {
				cookies = append(cookies, "ts_session="+tt.session)
			}
			if tt.jwtCookie != "" {
				cookies = append(cookies, "ts_access="+tt.jwtCookie)
			}
			for _, ck := range cookies {
				req.Header.Add("Cookie", ck)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if tt.wantCode != "" && got["code"] != string(tt.wantCode) {
				t.Errorf("code = %v, want %s", got["code"], tt.wantCode)
			}
			if tt.wantScheme != "" && got["scheme"] != tt.wantScheme {
				t.Errorf("scheme = %v, want %s", got["scheme"], tt.wantScheme)
			}
			if tt.wantUser != "" && got["user_id"] != tt.wantUser {
				t.Errorf("user_id = %v, want %s", got["user_id"], tt.wantUser)
			}
			if tt.wantWWW != "" && resp.Header.Get("WWW-Authenticate") != tt.wantWWW {
				t.Errorf("WWW-Authenticate = %q, want %q", resp.Header.Get("WWW-Authenticate"), tt.wantWWW)
			}
			if tt.wantEvent != nil {
				if len(rec.events) != 1 || rec.events[0] != *tt.wantEvent {
					t.Errorf("usage events = %+v, want exactly %+v", rec.events, *tt.wantEvent)
				}
			}
			if tt.wantNoEvent && len(rec.events) != 0 {
				t.Errorf("usage events = %+v, want none", rec.events)
			}
		})
	}
}

func TestDeprecationHeadersOnlyOnSessions(t *testing.T) {
	sessions := fakeVerifier{"s-alice": alice}
	tokens := fakeVerifier{"t-alice": alice}
	app := newApp(Config{Sessions: sessions, Tokens: tokens, Flags: prefer})
	for _, tc := range []struct {
		name   string
		header string
		cookie string
		want   bool
	}{
		{name: "session", cookie: "ts_session=s-alice", want: true},
		{name: "bearer", header: "Bearer t-alice", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/me", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			resp, err := app.Test(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %v err %v", resp.StatusCode, err)
			}
			got := resp.Header.Get("Deprecation") != ""
			if got != tc.want {
				t.Fatalf("Deprecation header present = %v, want %v", got, tc.want)
			}
			if tc.want {
				if resp.Header.Get("Sunset") != prefer.SunsetHeader || resp.Header.Get("Link") != prefer.LinkHeader {
					t.Errorf("Sunset %q Link %q", resp.Header.Get("Sunset"), resp.Header.Get("Link"))
				}
			}
		})
	}
}

type csrfFunc func(c *fiber.Ctx, p *auth.Principal) error

func (f csrfFunc) CheckCSRF(c *fiber.Ctx, p *auth.Principal) error { return f(c, p) }

func TestCSRFOnlyForCookieUnsafe(t *testing.T) {
	calls := 0
	deny := csrfFunc(func(*fiber.Ctx, *auth.Principal) error {
		calls++
		return auth.Errorf(auth.CodeCSRF, "no")
	})
	app := newApp(Config{Sessions: fakeVerifier{"s-alice": alice}, Tokens: fakeVerifier{"t-alice": alice}, Flags: dual, CSRF: deny})
	for _, tc := range []struct {
		name, method, auth, cookie string
		wantStatus                 int
	}{
		{name: "GET with session", method: "GET", cookie: "ts_session=s-alice", wantStatus: 200},
		{name: "POST with session", method: "POST", cookie: "ts_session=s-alice", wantStatus: 403},
		{name: "POST with jwt cookie", method: "POST", cookie: "ts_access=t-alice", wantStatus: 403},
		{name: "POST with bearer", method: "POST", auth: "Bearer t-alice", wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/me", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
	if calls != 2 {
		t.Fatalf("CSRF checker called %d times, want 2", calls)
	}
}

func TestExchangeRouteAdmitsRetiredSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags Decider
		want  int
	}{
		{name: "retiring allows exchange", flags: retiring, want: 200},
		{name: "jwt-only does not", flags: jwtOnly, want: 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(Config{Sessions: fakeVerifier{"s-alice": alice}, Flags: tc.flags, AllowRetiredSession: true})
			req := httptest.NewRequest("GET", "/me", nil)
			req.Header.Set("Cookie", "ts_session=s-alice")
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// TestIgnorePhase: the credential proves who calls whatever the phase says;
// CSRF still applies.
func TestIgnorePhase(t *testing.T) {
	allow := csrfFunc(func(*fiber.Ctx, *auth.Principal) error { return nil })
	deny := csrfFunc(func(*fiber.Ctx, *auth.Principal) error { return auth.Errorf(auth.CodeCSRF, "no") })
	for _, tc := range []struct {
		name           string
		flags          Decider
		ignore         bool
		csrf           CSRFChecker
		method, cookie string
		bearer         string
		wantStatus     int
		wantCode       auth.Code
		wantScheme     string
	}{
		{name: "jwt-only session refused without it", flags: jwtOnly, method: "POST", cookie: "ts_session=s-alice", csrf: allow,
			wantStatus: 401, wantCode: auth.CodeSessionRetired},
		{name: "jwt-only session admitted", flags: jwtOnly, ignore: true, method: "POST", cookie: "ts_session=s-alice", csrf: allow,
			wantStatus: 200, wantScheme: "session"},
		{name: "retiring session admitted", flags: retiring, ignore: true, method: "DELETE", cookie: "ts_session=s-alice", csrf: allow,
			wantStatus: 200, wantScheme: "session"},
		{name: "CSRF still applies", flags: jwtOnly, ignore: true, method: "POST", cookie: "ts_session=s-alice", csrf: deny,
			wantStatus: 403, wantCode: auth.CodeCSRF},
		{name: "legacy bearer refused without it", flags: legacy, method: "POST", bearer: "Bearer t-alice",
			wantStatus: 401, wantCode: auth.CodeInvalidToken},
		{name: "legacy bearer admitted", flags: legacy, ignore: true, method: "POST", bearer: "Bearer t-alice",
			wantStatus: 200, wantScheme: "bearer"},
		{name: "bad credential still refused", flags: jwtOnly, ignore: true, method: "POST", cookie: "ts_session=forged",
			wantStatus: 401, wantCode: auth.CodeInvalidSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(Config{Sessions: fakeVerifier{"s-alice": alice}, Tokens: fakeVerifier{"t-alice": alice}, Flags: tc.flags, CSRF: tc.csrf, IgnorePhase: tc.ignore})
			req := httptest.NewRequest(tc.method, "/me", nil)
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", tc.bearer)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&got)
			if resp.StatusCode != tc.wantStatus || (tc.wantCode != "" && got["code"] != string(tc.wantCode)) ||
				(tc.wantScheme != "" && got["scheme"] != tc.wantScheme) {
				t.Fatalf("%d %v; want %d %s %s", resp.StatusCode, got, tc.wantStatus, tc.wantCode, tc.wantScheme)
			}
		})
	}
}

// TestSessionTouchedOnlyWhenAccepted: a refused request, or one admitted
// only to exchange or end a retired session, does not move the session's idle
// deadline.
func TestSessionTouchedOnlyWhenAccepted(t *testing.T) {
	allow := csrfFunc(func(*fiber.Ctx, *auth.Principal) error { return nil })
	deny := csrfFunc(func(*fiber.Ctx, *auth.Principal) error { return auth.Errorf(auth.CodeCSRF, "no") })
	for _, tc := range []struct {
		name        string
		cfg         Config
		method      string
		bearer      string
		jwtCookie   string
		wantStatus  int
		wantTouches int
	}{
		{name: "accepted", cfg: Config{Flags: dual}, wantStatus: 200, wantTouches: 1},
		{name: "accepted unsafe with CSRF", cfg: Config{Flags: dual, CSRF: allow}, method: "POST", wantStatus: 200, wantTouches: 1},
		{name: "refused by CSRF", cfg: Config{Flags: dual, CSRF: deny}, method: "POST", wantStatus: 403},
		{name: "refused by the phase", cfg: Config{Flags: jwtOnly}, wantStatus: 401},
		{name: "admitted for exchange only", cfg: Config{Flags: retiring, AllowRetiredSession: true}, wantStatus: 200},
		{name: "admitted to end itself only", cfg: Config{Flags: jwtOnly, IgnorePhase: true}, wantStatus: 200},
		{name: "refused: two users", cfg: Config{Flags: dual}, bearer: "Bearer t-bob", wantStatus: 401},
		{name: "refused: bad bearer", cfg: Config{Flags: dual}, bearer: "Bearer t-expired", wantStatus: 401},
		{name: "used next to a token of the same user", cfg: Config{Flags: dual}, jwtCookie: "t-alice", wantStatus: 200, wantTouches: 1},
		{name: "retired next to a token", cfg: Config{Flags: retiring}, jwtCookie: "t-alice", wantStatus: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			touched := 0
			cfg := tc.cfg
			cfg.Sessions = touchingVerifier{fakeVerifier{"s-alice": alice}, &touched}
			cfg.Tokens = fakeVerifier{"t-alice": alice, "t-bob": bob, "t-expired": fmt.Errorf("exp: %w", auth.ErrExpired)}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req := httptest.NewRequest(method, "/me", nil)
			req.Header.Add("Cookie", "ts_session=s-alice")
			if tc.jwtCookie != "" {
				req.Header.Add("Cookie", "ts_access="+tc.jwtCookie)
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", tc.bearer)
			}
			resp, err := newApp(cfg).Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || touched != tc.wantTouches {
				t.Fatalf("status %d, %d touches; want %d, %d", resp.StatusCode, touched, tc.wantStatus, tc.wantTouches)
			}
		})
	}
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer abc.def.ghi", "bearer x", "Basic abc", "Bearer a b", "BearerX y", "Bearer ===", "Bearer \x00", "Bearer\tx", "\tBearer x", "Bearer,x", "Bearer-x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, malformed := ParseBearer(h)
		if tok != "" && malformed {
			t.Fatalf("both token and malformed for %q", h)
		}
		// authn and the proxy agree: whatever authn reads as a bearer
		// (valid or malformed) the proxy strips, and the other way round.
		if (tok != "" || malformed) != IsBearerScheme(h) {
			t.Fatalf("ParseBearer(%q) = %q, %v but IsBearerScheme = %v", h, tok, malformed, IsBearerScheme(h))
		}
		for i := 0; i < len(tok); i++ {
			if !isB64Token(tok[i]) {
				t.Fatalf("token %q has byte %q outside b64token", tok, tok[i])
			}
		}
	})
}

// TestMethodHookDecidesCSRF: with Method set (forward-auth), the CSRF decision
// follows the method it returns, not the method of the request tokenshift
// received.
func TestMethodHookDecidesCSRF(t *testing.T) {
	deny := csrfFunc(func(*fiber.Ctx, *auth.Principal) error { return auth.Errorf(auth.CodeCSRF, "no") })
	fromHeader := func(c *fiber.Ctx) string { return c.Get("X-Original-Method") }
	for _, tc := range []struct {
		name, method, original string
		wantStatus             int
	}{
		{name: "GET check of a POST", method: "GET", original: "POST", wantStatus: 403},
		{name: "GET check of a DELETE", method: "GET", original: "DELETE", wantStatus: 403},
		{name: "GET check of a GET", method: "GET", original: "GET", wantStatus: 200},
		{name: "POST check of a HEAD", method: "POST", original: "HEAD", wantStatus: 200},
		{name: "lower-case get is not GET", method: "GET", original: "get", wantStatus: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(Config{Sessions: fakeVerifier{"s-alice": alice}, Flags: dual, CSRF: deny, Method: fromHeader})
			req := httptest.NewRequest(tc.method, "/me", nil)
			req.Header.Set("Cookie", "ts_session=s-alice")
			req.Header.Set("X-Original-Method", tc.original)
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

// TestDuplicateCredentialCookie: a session or access cookie sent twice is
// refused (duplicate_cookie) whichever copy is valid, even on an optional
// route, since which one this host set cannot be told.
func TestDuplicateCredentialCookie(t *testing.T) {
	verifier := fakeVerifier{"s-alice": alice, "s-bob": bob, "t-alice": alice}
	tests := []struct {
		name     string
		cookie   string
		optional bool
		wantCode auth.Code
	}{
		{name: "session twice, planted first", cookie: "ts_session=s-bob; ts_session=s-alice", wantCode: auth.CodeDuplicateCookie},
		{name: "session twice, same value", cookie: "ts_session=s-alice; ts_session=s-alice", wantCode: auth.CodeDuplicateCookie},
		{name: "session twice, one empty", cookie: "ts_session=; ts_session=s-alice", wantCode: auth.CodeDuplicateCookie},
		{name: "access cookie twice", cookie: "ts_access=t-alice; a=b; ts_access=forged", wantCode: auth.CodeDuplicateCookie},
		{name: "session twice on an optional route", cookie: "ts_session=s-bob; ts_session=s-alice", optional: true, wantCode: auth.CodeDuplicateCookie},
		{name: "another cookie twice", cookie: "theme=dark; ts_session=s-alice; theme=light"},
		{name: "look-alike names", cookie: "ts_session=s-alice; ts_session_old=x; Ts_session=y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			app := newApp(Config{Sessions: verifier, Tokens: verifier, Flags: dual, Usage: rec, Optional: tt.optional})
			r := httptest.NewRequest("GET", "/me", nil)
			r.Header.Set("Cookie", tt.cookie)
			res, err := app.Test(r)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(res.Body).Decode(&body)
			if tt.wantCode == "" {
				if res.StatusCode != 200 || body["user_id"] != "u-alice" {
					t.Fatalf("%d %v; want alice", res.StatusCode, body)
				}
				return
			}
			if body["code"] != string(tt.wantCode) {
				t.Fatalf("%d %v; want %s", res.StatusCode, body, tt.wantCode)
			}
			if len(rec.events) != 1 || rec.events[0].outcome != auth.OutcomeInvalid || rec.events[0].client != auth.ClientUnknown {
				t.Fatalf("usage events %+v; want one invalid, unknown client", rec.events)
			}
		})
	}
}

func TestDuplicateCookieFunc(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		names   []string
		want    string
	}{
		{name: "none", headers: []string{"a=1; b=2"}, names: []string{"a", "b"}},
		{name: "first name twice", headers: []string{"a=1; b=2; a=3"}, names: []string{"a", "b"}, want: "a"},
		{name: "second name twice", headers: []string{"b=1; a=2; b=3"}, names: []string{"a", "b"}, want: "b"},
		{name: "across two Cookie lines", headers: []string{"a=1", "c=0; a=2"}, names: []string{"a"}, want: "a"},
		{name: "unlisted name twice", headers: []string{"x=1; x=2; a=1"}, names: []string{"a"}},
		{name: "empty name ignored", headers: []string{"=1; =2"}, names: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := fiber.New()
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString(DuplicateCookie(c, tt.names...)) })
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.headers {
				r.Header.Add("Cookie", h)
			}
			res, err := app.Test(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			if string(b) != tt.want {
				t.Fatalf("DuplicateCookie = %q, want %q", b, tt.want)
			}
		})
	}
}

// BenchmarkParseBearer: every bearer request runs it over its whole token.
func BenchmarkParseBearer(b *testing.B) {
	h := "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEiLCJ0eXAiOiJhdCtqd3QifQ." + strings.Repeat("eyJpc3MiOiJodHRwOi8vbG9jYWxob3N0OjgwODAi", 9) + "." + strings.Repeat("bgNf83ntb5Cb3aIURKD1Z2VB0Lj89B2z", 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := ParseBearer(h); bad {
			b.Fatal("malformed")
		}
	}
}
