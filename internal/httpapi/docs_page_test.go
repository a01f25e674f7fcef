package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
)

func TestMigrationDocsPage(t *testing.T) {
	sunset := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	dep := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	early := dep.Add(-48 * time.Hour)
	tests := []struct {
		name   string
		state  featureflags.State
		has    []string
		hasNot []string
	}{
		{name: "no dates", state: featureflags.State{Phase: featureflags.PhaseDual},
			has: []string{"No sunset date has been announced yet", "POST /auth/exchange", "X-CSRF-Token", "session_retired"}, hasNot: []string{"deprecated for some applications"}},
		{name: "sunset and deprecation", state: featureflags.State{Phase: featureflags.PhasePreferJWT, Sunset: &sunset, DeprecatedAt: &dep,
			ClientsDeprecatedAt: map[string]time.Time{"mobile": early}},
			has: []string{`<time datetime="2027-06-30T00:00:00Z">Wed, 30 Jun 2027 00:00:00 GMT</time>`,
				`<time datetime="2026-08-30T12:00:00Z">Sun, 30 Aug 2026 12:00:00 GMT</time>`}, hasNot: []string{"No sunset date"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, err := featureflags.NewFlags(tt.state)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{opts: Options{Flags: flags}}
			app := fiber.New()
			app.Get("/docs/migration", s.migrationDocs)
			res, err := app.Test(httptest.NewRequest("GET", "/docs/migration", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			body := string(raw)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("%d %q", res.StatusCode, res.Header.Get("Content-Type"))
			}
			for _, want := range tt.has {
				if !strings.Contains(body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			for _, not := range tt.hasNot {
				if strings.Contains(body, not) {
					t.Errorf("page has %q", not)
				}
			}
			// CSP-safe: no script at all, and the one style block is the one
			// the policy's hash allows, byte for byte.
			if strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
				t.Error("the page carries script")
			}
			m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
			if m == nil {
				t.Fatal("no style block")
			}
			sum := sha256.Sum256([]byte(m[1]))
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || !strings.HasPrefix(csp, "default-src 'none'") {
				t.Errorf("CSP %q does not allow exactly the page's style block", csp)
			}
		})
	}
}
