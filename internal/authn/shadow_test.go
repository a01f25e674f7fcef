package authn

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
)

func TestShadowCheck(t *testing.T) {
	aliceMobile := &auth.Principal{UserID: "u-alice", Email: "alice@example.com", ClientID: "mobile", SID: "sid-m"}
	sessions := fakeVerifier{
		"s-alice":   alice,
		"s-bob":     bob,
		"s-expired": fmt.Errorf("idle: %w", auth.ErrExpired),
		"s-revoked": fmt.Errorf("logged out: %w", auth.ErrRevoked),
	}
	tokens := fakeVerifier{
		"t-alice":        alice,
		"t-alice-mobile": aliceMobile,
		"t-expired":      fmt.Errorf("exp: %w", auth.ErrExpired),
		"t-revoked":      fmt.Errorf("jti: %w", auth.ErrRevoked),
	}
	// mm abbreviates the mismatch reported against alice's valid credential.
	mm := func(kind string, phase featureflags.Phase, scheme, other auth.Scheme) ShadowMismatch {
		return ShadowMismatch{Kind: kind, Phase: phase, Scheme: scheme, UserID: "u-alice", ClientID: "web", OtherScheme: other}
	}
	tests := []struct {
		name       string
		flags      Decider
		shadow     bool
		session    string
		bearer     string
		jwtCookie  string
		wantStatus int
		want       []ShadowMismatch
	}{
		{name: "agreeing credentials", flags: dual, shadow: true, session: "s-alice", bearer: "t-alice", wantStatus: 200},
		{name: "one credential only", flags: dual, shadow: true, session: "s-alice", wantStatus: 200},
		{name: "expired session next to a token", flags: dual, shadow: true, session: "s-expired", bearer: "t-alice", wantStatus: 200,
			want: []ShadowMismatch{mm(ShadowExpired, featureflags.PhaseDual, auth.SchemeBearer, auth.SchemeSession)}},
		{name: "revoked session next to a jwt cookie", flags: prefer, shadow: true, session: "s-revoked", jwtCookie: "t-alice", wantStatus: 200,
			want: []ShadowMismatch{mm(ShadowRevoked, featureflags.PhasePreferJWT, auth.SchemeJWTCookie, auth.SchemeSession)}},
		{name: "expired bearer next to a session is still refused", flags: dual, shadow: true, session: "s-alice", bearer: "t-expired", wantStatus: 401,
			want: []ShadowMismatch{mm(ShadowExpired, featureflags.PhaseDual, auth.SchemeSession, auth.SchemeBearer)}},
		{name: "revoked bearer next to a session", flags: dual, shadow: true, session: "s-alice", bearer: "t-revoked", wantStatus: 401,
			want: []ShadowMismatch{mm(ShadowRevoked, featureflags.PhaseDual, auth.SchemeSession, auth.SchemeBearer)}},
		{name: "forged jwt cookie next to a session", flags: dual, shadow: true, session: "s-alice", jwtCookie: "forged", wantStatus: 200,
			want: []ShadowMismatch{mm(ShadowInvalid, featureflags.PhaseDual, auth.SchemeSession, auth.SchemeJWTCookie)}},
		{name: "different users: counted and still refused", flags: dual, shadow: true, session: "s-bob", bearer: "t-alice", wantStatus: 401,
			want: []ShadowMismatch{{Kind: ShadowDifferentSubject, Phase: featureflags.PhaseDual, Scheme: auth.SchemeBearer, UserID: "u-alice", ClientID: "web",
				OtherScheme: auth.SchemeSession, OtherUserID: "u-bob", OtherClientID: "mobile"}}},
		{name: "same user, other client", flags: prefer, shadow: true, session: "s-alice", bearer: "t-alice-mobile", wantStatus: 200,
			want: []ShadowMismatch{{Kind: ShadowClient, Phase: featureflags.PhasePreferJWT, Scheme: auth.SchemeBearer, UserID: "u-alice", ClientID: "mobile",
				OtherScheme: auth.SchemeSession, OtherUserID: "u-alice", OtherClientID: "web"}}},
		{name: "both invalid: nothing to compare", flags: dual, shadow: true, session: "s-expired", bearer: "t-revoked", wantStatus: 401},
		{name: "off by default", flags: dual, session: "s-expired", bearer: "t-alice", wantStatus: 200},
		{name: "not in legacy", flags: legacy, shadow: true, session: "s-alice", jwtCookie: "forged", wantStatus: 200},
		{name: "not in retiring", flags: retiring, shadow: true, session: "s-expired", bearer: "t-alice", wantStatus: 200},
		{name: "not in jwt-only", flags: jwtOnly, shadow: true, session: "s-bob", bearer: "t-alice", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []ShadowMismatch
			app := newApp(Config{Sessions: sessions, Tokens: tokens, Flags: tt.flags, Shadow: tt.shadow,
				OnShadowMismatch: func(_ *fiber.Ctx, m ShadowMismatch) { got = append(got, m) }})
			req := httptest.NewRequest("GET", "/me", nil)
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			if tt.session != "" {
				req.Header.Add("Cookie", "ts_session="+tt.session)
			}
			if tt.jwtCookie != "" {
				req.Header.Add("Cookie", "ts_access="+tt.jwtCookie)
			}
			resp, err := app.Test(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d: the shadow check must not change the decision", resp.StatusCode, tt.wantStatus)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("mismatches = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
