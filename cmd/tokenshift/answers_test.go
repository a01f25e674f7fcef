package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
)

// TestAnswersInTheServersTypes: the CLI prints what the server's own types
// encode, with times as they travel (the offset they were sent with), and
// refuses an answer those types do not accept instead of printing whatever
// a field held.
func TestAnswersInTheServersTypes(t *testing.T) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 500, time.FixedZone("", 2*3600))
	sunset := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	dual := featureflags.State{Version: 1, Phase: featureflags.PhaseDual, UpdatedAt: at, UpdatedBy: "ops@example.com"}
	next := dual.Clone()
	next.Version, next.Sunset = 2, &sunset
	next.Clients["web"] = featureflags.ClientRule{Phase: featureflags.PhaseJWTOnly}
	tests := []struct {
		name  string
		print func(*bytes.Buffer, json.RawMessage) error
		value any    // encoded as the server encodes it
		raw   string // or the answer as text
		want  []string
		err   string
	}{
		{name: "flags", print: func(b *bytes.Buffer, r json.RawMessage) error { return printFlags(b, r) },
			value: admin.FlagsView{State: next, Effective: map[string]string{"web": "jwt-only", "spa": "dual"}},
			want:  []string{"version 2, global phase dual, rollout 0%, updated 2026-05-04T03:02:01.0000005+02:00 by ops@example.com", "sunset 2027-06-30T00:00:00Z", "web     jwt-only         override", "spa     dual             global"}},
		{name: "audit", print: func(b *bytes.Buffer, r json.RawMessage) error { return printAudit(b, r) },
			value: map[string]any{"entries": []featureflags.AuditEntry{
				{At: at, Actor: "ops@example.com", Action: featureflags.ActionSet, From: dual, To: next, Reason: "web moved"},
				{At: at, Actor: "config", Action: featureflags.ActionInit, To: dual}}},
			want: []string{"2026-05-04T03:02:01.0000005+02:00", "web: (global) → jwt-only; sunset: none → 2027-06-30T00:00:00Z", "init    1        no      phase dual"}},
		{name: "account", print: func(b *bytes.Buffer, r json.RawMessage) error { return printAccount(b, r) },
			value: auth.AccountInfo{UserID: "u-alice", Suspended: true, SuspendedAt: &at, SuspendedBy: "ops@example.com", Reason: "fraud", PasswordChangedAt: &sunset},
			want:  []string{"user u-alice: SUSPENDED since 2026-05-04T03:02:01.0000005+02:00 by ops@example.com: fraud", "password changed through tokenshift at 2027-06-30T00:00:00Z"}},
		{name: "sessions", print: func(b *bytes.Buffer, r json.RawMessage) error { return printSessions(b, r) },
			value: map[string]any{"user_id": "u-alice", "sessions": []auth.LoginInfo{{SID: "s1", ClientID: "web", CreatedAt: at, LastSeenAt: at.UTC(), Session: true}}},
			want:  []string{"s1   web     2026-05-04T03:02:01.0000005+02:00  2026-05-04T01:02:01.0000005Z  true"}},

		{name: "text in a time field", print: func(b *bytes.Buffer, r json.RawMessage) error { return printAccount(b, r) },
			raw: `{"user_id":"u-alice","suspended":true,"suspended_at":"yesterday\u001b[2J"}`, err: "unexpected answer: "},
		{name: "a phase the server does not have", print: func(b *bytes.Buffer, r json.RawMessage) error { return printAudit(b, r) },
			raw: `{"entries":[{"at":"2026-01-01T00:00:00Z","action":"set","from":null,"to":{"version":2,"phase":"prefer-jwt\u001b[0m"}}]}`, err: "unexpected audit answer: "},
		{name: "a count that is not a number", print: func(b *bytes.Buffer, r json.RawMessage) error { return printUsage(b, r) },
			raw: `{"window":"1h","requests":"many"}`, err: "unexpected usage report: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			if tt.value != nil {
				var err error
				if raw, err = json.Marshal(tt.value); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			err := tt.print(&out, raw)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) || out.Len() > 0 {
					t.Fatalf("err = %v, output %q; want %q... and nothing printed", err, out.String(), tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestProblemAnswers: error answers are read as the server's problem type;
// a guard refusal's figures come with them, and a body that is no problem
// is kept as text.
func TestProblemAnswers(t *testing.T) {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	refusal, _ := json.Marshal(map[string]any{"type": "about:blank", "title": "Conflict", "status": 409, "code": "guard_refused", "detail": "refused",
		"figures": featureflags.GuardFigures{Window: "24h", SessionRequests: 20, TotalRequests: 1_000_000, SessionShare: 0.00002, MaxShare: 0.01,
			Clients: []string{"web"}, DataSince: &since, Covered: "24h", Reasons: []string{"too many"}}})
	tests := []struct {
		name       string
		status     int
		body       string
		wantCode   auth.Code
		wantDetail string
		wantFig    bool
	}{
		{name: "guard refusal", status: 409, body: string(refusal), wantCode: auth.CodeGuardRefused, wantDetail: "refused", wantFig: true},
		{name: "plain problem", status: 404, body: `{"type":"about:blank","title":"Not Found","status":404,"code":"not_found","detail":"no such user"}`, wantCode: auth.CodeNotFound, wantDetail: "no such user"},
		{name: "a field of the wrong type is skipped", status: 400, body: `{"status":"400","code":"invalid_request","detail":"bad"}`, wantCode: auth.CodeInvalidRequest, wantDetail: "bad"},
		{name: "not a problem", status: 502, body: "<html>bad gateway</html>\n", wantCode: "http_error", wantDetail: "<html>bad gateway</html>"},
		{name: "a code that is not text", status: 500, body: `{"code":7}`, wantCode: "http_error", wantDetail: `{"code":7}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := problemError(tt.status, []byte(tt.body))
			if e.Status != tt.status || e.Code != tt.wantCode || e.Detail != tt.wantDetail || (e.Figures != nil) != tt.wantFig {
				t.Fatalf("got %+v", e)
			}
		})
	}
	var out bytes.Buffer
	_ = guardMessage(&out, problemError(409, refusal))
	for _, w := range []string{"window:           24h\n", "clients:          web\n", "session requests: 20 of 1000000\n", "session share:    0.00% (allowed: 1.00%)\n", "data covers:      24h of 24h\n", "  - too many\n"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("refusal lacks %q:\n%s", w, out.String())
		}
	}
}
