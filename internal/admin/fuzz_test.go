package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
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

// FuzzParseWindow: a window is either refused with invalid_request or a
// positive duration; "Nd" is exactly N days (no overflow wrapping).
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"", "24h", "90m", "7d", "1d", "0d", "-1d", "d", "1.5d", "36500d", "36501d",
		"106752d", "9223372036854775807d", "1h30m", "-24h", "0", "1e3h", "+5h", "5µs", "24 h", "7D", "\x00d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWindow(s)
		if err != nil {
			var ae *auth.Error
			if !errors.As(err, &ae) || ae.Code != auth.CodeInvalidRequest {
				t.Fatalf("ParseWindow(%q) error %v is not an invalid_request problem", s, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("ParseWindow(%q) = %v, want a positive window", s, d)
		}
		if n, ok := strings.CutSuffix(s, "d"); ok {
			days, err := strconv.Atoi(n)
			if err != nil || d != time.Duration(days)*24*time.Hour || d/(24*time.Hour) != time.Duration(days) {
				t.Fatalf("ParseWindow(%q) = %v, not %s days", s, d, n)
			}
		}
	})
}
