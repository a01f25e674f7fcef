package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

var testClients = []auth.Client{{ID: "web"}, {ID: "spa"}, {ID: "mobile"}}

// flagsApp serves the admin API of one instance over m, with every request
// authenticated as an operator and errors shaped as the service shapes them.
func flagsApp(t *testing.T, m *featureflags.Manager) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		var ae *auth.Error
		if !errors.As(err, &ae) {
			return c.Status(500).SendString(err.Error())
		}
		body := fiber.Map{"code": ae.Code, "detail": ae.Message}
		for k, v := range ae.Extra {
			body[k] = v
		}
		status := map[auth.Code]int{auth.CodeVersionConflict: 409, auth.CodeGuardRefused: 409, auth.CodeInvalidRequest: 400, auth.CodeUnsupportedMediaType: 415}[ae.Code]
		if status == 0 {
			status = 500
		}
		return c.Status(status).JSON(body)
	}})
	operator := func(c *fiber.Ctx) error {
		authn.SetPrincipal(c, &auth.Principal{UserID: "u-ops", Email: "ops@example.com", ClientID: "web", Roles: []string{auth.RoleAdmin}})
		return c.Next()
	}
	New(Options{Logger: slog.New(slog.DiscardHandler), Authn: operator, Flags: m, Clients: testClients,
		Usage: func(context.Context, time.Duration, string) (any, error) { return fiber.Map{}, nil }}).Mount(app)
	return app
}

func call(t *testing.T, app *fiber.App, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d %q is not JSON", method, path, res.StatusCode, raw)
	}
	return res.StatusCode, m
}

func newManager(t *testing.T, b featureflags.Backend, guard featureflags.Guard) *featureflags.Manager {
	t.Helper()
	m, err := featureflags.NewManager(context.Background(), featureflags.Options{
		Backend: b, Initial: featureflags.State{Phase: featureflags.PhaseDual, RolloutSeed: "s"},
		KnownClients: []string{"web", "spa", "mobile"}, Guard: guard,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPutFlagsDoesNotRevertAnotherInstance: instance B has not yet seen A's
// change (its watcher is not running). An operator who read the new version
// from A sends a partial update to B: the fields A changed must survive.
func TestPutFlagsDoesNotRevertAnotherInstance(t *testing.T) {
	backend := featureflags.NewMemoryBackend()
	a := newManager(t, backend, nil)
	b := newManager(t, backend, nil) // never Run: its snapshot lags
	appA, appB := flagsApp(t, a), flagsApp(t, b)

	status, got := call(t, appA, "PUT", "/admin/flags", map[string]any{
		"version": 1, "exempt_clients": []string{"spa"}, "rollout": 25, "reason": "exempt the spa",
	})
	if status != 200 || got["version"] != 2.0 {
		t.Fatalf("PUT on A: %d %v", status, got)
	}
	if v := b.Flags().Current().Version; v != 1 {
		t.Fatalf("B should lag at version 1, has %d", v)
	}

	status, got = call(t, appB, "PUT", "/admin/flags", map[string]any{"version": 2, "phase": "prefer-jwt", "reason": "announce"})
	if status != 200 {
		t.Fatalf("PUT on B with the current version: %d %v", status, got)
	}
	if got["phase"] != "prefer-jwt" || got["rollout"] != 25.0 || !reflect.DeepEqual(got["exempt_clients"], []any{"spa"}) {
		t.Errorf("B's change reverted A's fields: %v", got)
	}

	// A moves on; B's snapshot is at 3, the store at 4. A stale PUT on B is
	// refused with the stored version, not B's.
	if status, got := call(t, appA, "PUT", "/admin/flags", map[string]any{"version": 3, "rollout": 30}); status != 200 {
		t.Fatalf("PUT on A: %d %v", status, got)
	}
	status, got = call(t, appB, "PUT", "/admin/flags", map[string]any{"version": 3, "phase": "legacy"})
	if status != 409 || got["code"] != "version_conflict" || got["current_version"] != 4.0 {
		t.Errorf("stale PUT on B = %d %v, want 409 version_conflict with current_version 4", status, got)
	}
	if st, _, _ := backend.Load(context.Background()); st.Version != 4 || st.Phase != featureflags.PhasePreferJWT {
		t.Errorf("stored state after the refused PUT: version %d phase %v", st.Version, st.Phase)
	}
}

func TestGetFlagsListsSunsetWhenUnset(t *testing.T) {
	app := flagsApp(t, newManager(t, featureflags.NewMemoryBackend(), nil))
	status, got := call(t, app, "GET", "/admin/flags", nil)
	if status != 200 {
		t.Fatalf("GET: %d %v", status, got)
	}
	for _, k := range []string{"version", "phase", "clients", "rollout", "exempt_clients", "sunset", "effective"} {
		if _, ok := got[k]; !ok {
			t.Errorf("GET /admin/flags lacks %q: %v", k, got)
		}
	}
	if got["sunset"] != nil {
		t.Errorf("sunset = %v, want null", got["sunset"])
	}
	// Setting and clearing it round-trips.
	if _, got := call(t, app, "PUT", "/admin/flags", map[string]any{"version": 1, "sunset": "2027-06-30T00:00:00Z"}); got["sunset"] != "2027-06-30T00:00:00Z" {
		t.Errorf("sunset after setting = %v", got["sunset"])
	}
	if _, got := call(t, app, "PUT", "/admin/flags", map[string]any{"version": 2, "sunset": ""}); got["sunset"] != nil {
		t.Errorf("sunset after clearing = %v, want null", got["sunset"])
	}
	if status, got := call(t, app, "PUT", "/admin/flags", map[string]any{"version": 3, "sunset": "next year"}); status != 400 || got["code"] != "invalid_request" {
		t.Errorf("bad sunset = %d %v", status, got)
	}
}

// TestGuardRefusalInAuditAPI: the refusal answers 409 with the figures and
// leaves an audit entry with them.
func TestGuardRefusalInAuditAPI(t *testing.T) {
	guard := func(context.Context, []string, time.Duration) (featureflags.GuardFigures, error) {
		return featureflags.GuardFigures{SessionRequests: 30, TotalRequests: 100, SessionShare: 0.3}, nil
	}
	app := flagsApp(t, newManager(t, featureflags.NewMemoryBackend(), guard))
	status, got := call(t, app, "PUT", "/admin/flags", map[string]any{"version": 1, "phase": "jwt-only", "reason": "try"})
	fig, _ := got["figures"].(map[string]any)
	if status != 409 || got["code"] != "guard_refused" || fig == nil || fig["session_share"] != 0.3 || fig["window"] != "24h" {
		t.Fatalf("guarded PUT = %d %v, want 409 guard_refused with the figures", status, got)
	}
	_, audit := call(t, app, "GET", "/admin/audit", nil)
	entries, _ := audit["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("audit = %v, want the refusal and the init", audit)
	}
	e := entries[0].(map[string]any)
	to, _ := e["to"].(map[string]any)
	if e["action"] != "refused" || e["figures"] == nil || e["actor"] != "ops@example.com" || to["phase"] != "jwt-only" || to["version"] != 1.0 {
		t.Errorf("refusal entry = %v", e)
	}
}

// TestAuditTextRefused: an actor or reason with control characters is a
// 400 naming the character, for PUT and for rollback, and nothing changes.
func TestAuditTextRefused(t *testing.T) {
	app := flagsApp(t, newManager(t, featureflags.NewMemoryBackend(), nil))
	status, got := call(t, app, "PUT", "/admin/flags", map[string]any{"version": 1, "phase": "prefer-jwt", "reason": "ok\x1b[2J\r\nforged line"})
	if status != 400 || got["code"] != "invalid_request" || !strings.Contains(got["detail"].(string), "U+001B") {
		t.Fatalf("PUT with an escape sequence in the reason = %d %v", status, got)
	}
	status, got = call(t, app, "POST", "/admin/flags/rollback", map[string]any{"reason": "bell\a"})
	if status != 400 || got["code"] != "invalid_request" {
		t.Fatalf("rollback with a control character = %d %v", status, got)
	}
	// The rollout seed is stored and shown in the audit too.
	status, got = call(t, app, "PUT", "/admin/flags", map[string]any{"version": 1, "rollout_seed": "seed\u202e\x1b]0;x\a", "reason": "reseed"})
	if status != 400 || got["code"] != "invalid_request" || !strings.Contains(got["detail"].(string), "rollout_seed") || !strings.Contains(got["detail"].(string), "U+202E") {
		t.Fatalf("PUT with a bidi override in the rollout seed = %d %v", status, got)
	}
	status, got = call(t, app, "PUT", "/admin/flags", map[string]any{"version": 1, "sunset": "0000-01-01T00:00:00Z", "reason": "typo"})
	if status != 400 || !strings.Contains(got["detail"].(string), "before 2000-01-01") {
		t.Fatalf("PUT with sunset in year 0 = %d %v", status, got)
	}
	if _, got := call(t, app, "GET", "/admin/flags", nil); got["version"] != 1.0 {
		t.Fatalf("refused changes moved the state: %v", got)
	}
}
