package admin_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/tokenshift/tokenshift/internal/store"
	"github.com/tokenshift/tokenshift/internal/testutil/logbuf"
	"github.com/tokenshift/tokenshift/internal/token"
)

var (
	opsPrincipal   = &auth.Principal{UserID: "u-ops", Email: "ops@example.com", Roles: []string{auth.RoleAdmin}, Scheme: auth.SchemeBearer}
	alicePrincipal = &auth.Principal{UserID: "u-alice", Email: "alice@example.com", Roles: []string{"user"}, Scheme: auth.SchemeBearer}
)

// keysApp (an external test package: httpapi imports admin) mounts the admin routes with a stand-in authenticator that makes
// the principal of the X-Test-User header the caller, and the problem+json
// status mapping of httpapi.
func keysApp(t *testing.T, km admin.KeyManager, logs io.Writer) *fiber.App {
	t.Helper()
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		code := auth.ErrorCode(err)
		var fe *fiber.Error
		status := httpapi.Status(code)
		if errors.As(err, &fe) {
			status = fe.Code
		}
		var ae *auth.Error
		detail := ""
		if errors.As(err, &ae) {
			detail = ae.Message
		}
		return c.Status(status).JSON(fiber.Map{"code": code, "detail": detail})
	}})
	h := admin.New(admin.Options{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Authn: func(c *fiber.Ctx) error {
			if c.Get("X-Test-User") == "alice" {
				authn.SetPrincipal(c, alicePrincipal)
			} else {
				authn.SetPrincipal(c, opsPrincipal)
			}
			return c.Next()
		},
		Keys: km,
	})
	h.Mount(app)
	return app
}

func newTestRotator(t *testing.T, now func() time.Time) (*token.Rotator, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := token.GenerateKeyFile(dir, "k1", token.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory(now)
	t.Cleanup(func() { _ = st.Close() })
	rot, err := token.NewRotator(st, token.RotatorOptions{Dir: dir, PublishDelay: time.Minute, ReloadInterval: time.Second, Clock: now, InstanceID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rot.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rot, dir
}

type answer struct {
	status int
	body   map[string]any
}

func call(t *testing.T, app *fiber.App, method, path, user, ctype, body string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	return a
}

func TestKeysAPI(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	rot, dir := newTestRotator(t, clock)
	for kid, alg := range map[string]string{"k2": token.AlgEdDSA, "k3": token.AlgEdDSA, "ec": token.AlgES256} {
		if _, err := token.GenerateKeyFile(dir, kid, alg); err != nil {
			t.Fatal(err)
		}
	}
	logs := &logbuf.Buffer{}
	app := keysApp(t, rot, logs)
	const js = "application/json"

	// Steps run in order: the rotation state carries over.
	steps := []struct {
		name       string
		method     string
		path       string
		user       string
		ctype      string
		body       string
		wantStatus int
		wantCode   string
		check      func(t *testing.T, body map[string]any)
	}{
		{name: "list", method: "GET", path: "/admin/keys", wantStatus: 200, check: func(t *testing.T, b map[string]any) {
			if b["signing"] != "k1" || b["version"] != float64(1) {
				t.Fatalf("list: %v", b)
			}
			states := map[string]any{}
			for _, k := range b["keys"].([]any) {
				k := k.(map[string]any)
				states[k["kid"].(string)] = k["state"]
			}
			if states["k1"] != "signing" || states["k3"] != "available" {
				t.Fatalf("states: %v", states)
			}
		}},
		{name: "not an admin", method: "POST", path: "/admin/keys/rotate", user: "alice", ctype: js, body: `{}`, wantStatus: 403, wantCode: "forbidden"},
		{name: "not JSON", method: "POST", path: "/admin/keys/rotate", ctype: "text/plain", body: `kid=k2`, wantStatus: 415, wantCode: "unsupported_media_type"},
		{name: "malformed JSON", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "invalid kid", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"../../etc/passwd"}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "kid not in keys_dir", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k9"}`, wantStatus: 400, wantCode: "unknown_key"},
		{name: "algorithm not allowed", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"ec"}`, wantStatus: 400, wantCode: "key_algorithm_not_allowed"},
		{name: "already signing", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k1"}`, wantStatus: 400, wantCode: "invalid_request"},
		{name: "force without reason", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2","force":true}`, wantStatus: 400, wantCode: "invalid_request"},
		// The reason is stored in the rotation audit that `keys list` prints.
		{name: "escape sequence in the reason", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2","reason":"ok\u001b[2J"}`, wantStatus: 400, wantCode: "invalid_request", check: wantDetail("U+001B")},
		{name: "line forged in the reason", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2","reason":"ok\r\nforged"}`, wantStatus: 400, wantCode: "invalid_request", check: wantDetail("U+000D")},
		{name: "bidi override in the reason", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2","reason":"abc\u202edef"}`, wantStatus: 400, wantCode: "invalid_request", check: wantDetail("U+202E")},
		{name: "invalid UTF-8 in the reason", method: "POST", path: "/admin/keys/rotate", ctype: js, body: "{\"kid\":\"k2\",\"reason\":\"a\xffb\"}", wantStatus: 400, wantCode: "invalid_request", check: wantDetail("not valid UTF-8")},
		{name: "rotate to the newest key", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"reason":"yearly"}`, wantStatus: 202, check: func(t *testing.T, b map[string]any) {
			r := b["rotation"].(map[string]any)
			if r["kid"] != "k3" || r["from"] != "k1" || r["actor"] != "ops@example.com" || r["reason"] != "yearly" {
				t.Fatalf("rotation: %v", r)
			}
			if r["signs_at"] != now.Add(61*time.Second).Format(time.RFC3339) {
				t.Fatalf("signs_at = %v", r["signs_at"])
			}
			if b["rotation_in_progress"] != true {
				t.Fatalf("not in progress: %v", b)
			}
		}},
		{name: "second rotation refused", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2"}`, wantStatus: 409, wantCode: "rotation_in_progress", check: func(t *testing.T, b map[string]any) {
			if !strings.Contains(b["detail"].(string), "k3 is next") {
				t.Fatalf("detail: %v", b["detail"])
			}
		}},
		{name: "forced", method: "POST", path: "/admin/keys/rotate", ctype: js, body: `{"kid":"k2","force":true,"reason":"k3 went to the wrong place"}`, wantStatus: 202, check: func(t *testing.T, b map[string]any) {
			if r := b["rotation"].(map[string]any); r["kid"] != "k2" || r["cancelled"] != "k3" || r["forced"] != true {
				t.Fatalf("rotation: %v", r)
			}
		}},
		{name: "audit in the listing", method: "GET", path: "/admin/keys", wantStatus: 200, check: func(t *testing.T, b map[string]any) {
			audit := b["audit"].([]any)
			if len(audit) != 3 || audit[0].(map[string]any)["kid"] != "k2" || audit[1].(map[string]any)["actor"] != "ops@example.com" {
				t.Fatalf("audit: %v", audit)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			a := call(t, app, st.method, st.path, st.user, st.ctype, st.body)
			if a.status != st.wantStatus {
				t.Fatalf("status = %d, want %d: %v", a.status, st.wantStatus, a.body)
			}
			if st.wantCode != "" && a.body["code"] != st.wantCode {
				t.Fatalf("code = %v, want %s: %v", a.body["code"], st.wantCode, a.body)
			}
			if st.check != nil {
				st.check(t, a.body)
			}
		})
	}
	out := logs.String()
	for _, want := range []string{`msg="signing key rotation started" by=ops@example.com`, `reason="k3 went to the wrong place"`, `msg="signing key rotation refused"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// wantDetail checks that a refusal's detail names what was wrong.
func wantDetail(part string) func(t *testing.T, body map[string]any) {
	return func(t *testing.T, b map[string]any) {
		if d, _ := b["detail"].(string); !strings.Contains(d, part) {
			t.Fatalf("detail %q does not name %q", d, part)
		}
	}
}

func TestKeysAPIWithoutKeysDir(t *testing.T) {
	ring, err := token.NewEphemeralKeyRing("")
	if err != nil {
		t.Fatal(err)
	}
	app := keysApp(t, token.StaticKeys{Ring: func() *token.KeyRing { return ring }}, io.Discard)
	if a := call(t, app, "GET", "/admin/keys", "", "", ""); a.status != 200 || a.body["signing"] != ring.SigningKID() {
		t.Fatalf("list: %d %v", a.status, a.body)
	}
	a := call(t, app, "POST", "/admin/keys/rotate", "", "application/json", `{}`)
	if a.status != 400 || a.body["code"] != "unknown_key" || !strings.Contains(a.body["detail"].(string), "jwt.keys_dir is not set") {
		t.Fatalf("rotate without keys_dir: %d %v", a.status, a.body)
	}
}
