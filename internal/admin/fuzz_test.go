package admin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/tokenshift/tokenshift/featureflags"
)

// FuzzPutFlags feeds arbitrary bodies to PUT /admin/flags: whatever arrives,
// the answer is 200 (a valid change), 400, 409 or 415 with a JSON problem,
// never a 500 or a panic, and a refused body changes nothing.
func FuzzPutFlags(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"phase":"prefer-jwt","reason":"announce"}`,
		`{"version":1,"phase":"jwt-only","force":true,"reason":"ok"}`,
		`{"version":1,"clients":{"web":{"phase":"retiring"}},"rollout":50,"rollout_seed":"s2"}`,
		`{"version":1,"exempt_clients":["spa","spa"]}`,
		`{"version":1,"sunset":"2027-06-30T00:00:00Z","docs_url":"https://docs.example/m"}`,
		`{"version":1,"sunset":"0000-01-01T00:00:00Z"}`,
		`{"version":1,"sunset":"9999-12-31T23:59:59Z"}`,
		`{"version":1,"sunset":""}`,
		`{"version":1,"sunset":null,"clients":null,"phase":null}`,
		`{"version":1,"reason":"a\u001b[2Jb"}`,
		`{"version":1,"rollout":1e309}`,
		`{"version":1,"rollout":-1}`,
		`{"version":1,"phase":"nope"}`,
		`{"version":1,"phase":3}`,
		`{"version":-5}`,
		`{"version":9223372036854775807}`,
		`{"version":"1"}`,
		`{"phase":"dual"}`,
		`{"version":1,"clients":{"":{"phase":"dual"}}}`,
		`{"version":1,"docs_url":"javascript:alert(1)"}`,
		`[]`, `null`, `{`, ``, `"x"`,
	} {
		f.Add([]byte(s), true)
	}
	f.Add([]byte(`{"version":1}`), false) // wrong content type
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		m := newManager(t, featureflags.NewMemoryBackend(), nil)
		app := flagsApp(t, m)
		req := httptest.NewRequest("PUT", "/admin/flags", bytes.NewReader(body))
		if asJSON {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "text/plain")
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		var answer map[string]any
		if err := json.Unmarshal(raw, &answer); err != nil {
			t.Fatalf("%d %q is not a JSON object", res.StatusCode, raw)
		}
		switch res.StatusCode {
		case 200:
			if v := m.Flags().Current().Version; v != 2 {
				t.Fatalf("200 but version %d", v)
			}
		case 400, 409, 415:
			if answer["code"] == nil || answer["code"] == "" {
				t.Fatalf("%d without a code: %s", res.StatusCode, raw)
			}
			if v := m.Flags().Current().Version; v != 1 {
				t.Fatalf("refused (%d %s) but the state moved to version %d", res.StatusCode, raw, v)
			}
		default:
			t.Fatalf("status %d for %q: %s", res.StatusCode, body, raw)
		}
	})
}
