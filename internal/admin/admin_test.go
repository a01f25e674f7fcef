package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/httpapi"
)

// usageCall is what the handler asked the report function for.
type usageCall struct {
	window time.Duration
	client string
}

// usageApp mounts the admin API behind a stand-in for authn that takes the
// principal from a test header, with the real status mapping (an external
// test package: httpapi imports admin).
func usageApp(t *testing.T, logs io.Writer) (*fiber.App, *[]usageCall) {
	t.Helper()
	principals := map[string]*auth.Principal{
		"alice": {UserID: "u-alice", Email: "alice@example.com", ClientID: "web", Roles: []string{"user"}, Scheme: auth.SchemeSession},
		"ops":   {UserID: "u-ops", Email: "ops@example.com", ClientID: "mobile", Roles: []string{"admin"}, Scheme: auth.SchemeBearer},
	}
	fakeAuthn := func(c *fiber.Ctx) error {
		p, ok := principals[c.Get("X-Test-User")]
		if !ok {
			return auth.Errorf(auth.CodeUnauthenticated, "authentication required")
		}
		authn.SetPrincipal(c, p)
		return c.Next()
	}
	var calls []usageCall
	h := admin.New(admin.Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Authn:  fakeAuthn,
		Usage: func(_ context.Context, w time.Duration, client string) (any, error) {
			calls = append(calls, usageCall{w, client})
			return map[string]any{"window": w.String(), "client_id": client}, nil
		},
		Clients:   []auth.Client{{ID: "web"}, {ID: "spa"}, {ID: "mobile"}},
		MaxWindow: 840 * time.Hour,
	})
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		return c.Status(httpapi.Status(auth.ErrorCode(err))).JSON(fiber.Map{"code": auth.ErrorCode(err)})
	}})
	h.Mount(app)
	return app, &calls
}

func TestUsageEndpoint(t *testing.T) {
	tests := []struct {
		name       string
		user       string
		query      string
		wantStatus int
		wantCode   auth.Code
		wantCall   *usageCall
	}{
		{name: "anonymous", query: "window=1h", wantStatus: 401, wantCode: auth.CodeUnauthenticated},
		{name: "not an admin", user: "alice", query: "window=1h", wantStatus: 403, wantCode: auth.CodeForbidden},
		{name: "admin", user: "ops", query: "window=1h", wantStatus: 200, wantCall: &usageCall{time.Hour, ""}},
		{name: "default window", user: "ops", wantStatus: 200, wantCall: &usageCall{24 * time.Hour, ""}},
		{name: "days", user: "ops", query: "window=7d", wantStatus: 200, wantCall: &usageCall{7 * 24 * time.Hour, ""}},
		{name: "registered client", user: "ops", query: "window=1h&client=spa", wantStatus: 200, wantCall: &usageCall{time.Hour, "spa"}},
		{name: "label other", user: "ops", query: "window=1h&client=other", wantStatus: 200, wantCall: &usageCall{time.Hour, auth.ClientOther}},
		{name: "label unknown", user: "ops", query: "window=1h&client=unknown", wantStatus: 200, wantCall: &usageCall{time.Hour, auth.ClientUnknown}},
		{name: "unregistered client", user: "ops", query: "window=1h&client=evil", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "label case differs", user: "ops", query: "window=1h&client=Other", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "bad window", user: "ops", query: "window=soon", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "window beyond retention", user: "ops", query: "window=36d", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "window under a minute", user: "ops", query: "window=30s", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "whole retention in days", user: "ops", query: "window=35d", wantStatus: 200, wantCall: &usageCall{840 * time.Hour, ""}},
		{name: "days that overflow", user: "ops", query: "window=281474976710657d", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "days at int64 max", user: "ops", query: "window=9223372036854775807d", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "days beyond int64", user: "ops", query: "window=99999999999999999999d", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
		{name: "hours that overflow", user: "ops", query: "window=9999999999999h", wantStatus: 400, wantCode: auth.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			app, calls := usageApp(t, &logs)
			req := httptest.NewRequest("GET", "/admin/usage?"+tt.query, nil)
			if tt.user != "" {
				req.Header.Set("X-Test-User", tt.user)
			}
			res, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", res.StatusCode, tt.wantStatus, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if tt.wantCode != "" && got["code"] != string(tt.wantCode) {
				t.Errorf("code = %v, want %s", got["code"], tt.wantCode)
			}
			switch {
			case tt.wantCall == nil && len(*calls) != 0:
				t.Errorf("report built for a refused request: %+v", *calls)
			case tt.wantCall != nil && (len(*calls) != 1 || (*calls)[0] != *tt.wantCall):
				t.Errorf("report calls = %+v, want exactly %+v", *calls, *tt.wantCall)
			}
			if tt.wantStatus == 200 && res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", res.Header.Get("Cache-Control"))
			}
		})
	}
}

// Every admin request is logged with who made it; a refused one too.
func TestAdminRequestsAreLogged(t *testing.T) {
	var logs bytes.Buffer
	app, _ := usageApp(t, &logs)
	for _, user := range []string{"ops", "alice"} {
		req := httptest.NewRequest("GET", "/admin/usage?window=2h&client=web", nil)
		req.Header.Set("X-Test-User", user)
		if _, err := app.Test(req, -1); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines = %q, want one per request", lines)
	}
	for i, want := range [][]string{
		{`msg="admin request"`, "user_id=u-ops", "email=ops@example.com", "scheme=bearer", "method=GET", "path=/admin/usage", `query="window=2h&client=web"`},
		{`msg="admin access refused"`, "user_id=u-alice", "client_id=web", "path=/admin/usage"},
	} {
		for _, part := range want {
			if !strings.Contains(lines[i], part) {
				t.Errorf("log line %d %q lacks %q", i, lines[i], part)
			}
		}
	}
}
