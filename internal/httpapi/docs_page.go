package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
)

// The migration guide for client developers, served at /docs/migration: the
// default target of the Link rel="deprecation" header, so following it never
// ends in a 404. The home page at / points to it and shares its style. The page is static apart from the sunset and deprecation
// dates, read from the flag state at each request.
var (
	//go:embed docs/migration.html
	migrationHTML string
	//go:embed docs/migration.css
	migrationCSS string
	//go:embed docs/home.html
	homeHTML string

	migrationPage = template.Must(template.New("migration").Parse(migrationHTML))
	homePage      = mustRender(template.Must(template.New("home").Parse(homeHTML)), struct{ CSS template.CSS }{template.CSS(migrationCSS)})
	// The pages have no script at all; their one inline style block is
	// allowed by hash, so the policy needs no 'unsafe-inline'.
	migrationCSP = func() string {
		sum := sha256.Sum256([]byte(migrationCSS))
		return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	}()
)

// stateReader is implemented by *featureflags.Flags; a Decider without it
// (tests) gives a page without dates.
type stateReader interface {
	Current() *featureflags.State
}

type migrationPageData struct {
	CSS                       template.CSS
	Sunset, SunsetISO         string
	Deprecated, DeprecatedISO string
}

func (s *Server) migrationDocs(c *fiber.Ctx) error {
	d := migrationPageData{CSS: template.CSS(migrationCSS)}
	if sr, ok := s.opts.Flags.(stateReader); ok {
		if st := sr.Current(); st != nil {
			if st.Sunset != nil {
				d.Sunset, d.SunsetISO = st.Sunset.UTC().Format(http.TimeFormat), st.Sunset.UTC().Format(time.RFC3339)
			}
			if t := earliestDeprecation(st); !t.IsZero() {
				d.Deprecated, d.DeprecatedISO = t.UTC().Format(http.TimeFormat), t.UTC().Format(time.RFC3339)
			}
		}
	}
	var buf bytes.Buffer
	if err := migrationPage.Execute(&buf, d); err != nil {
		return err
	}
	return sendDocsPage(c, buf.Bytes())
}

// home answers GET / with a page that names where to go: a newcomer who
// opens the service's address is an operator (the dashboard), a client
// developer (the migration guide) or another service (the JWKS), so a
// redirect to any one of them would strand the others.
func (s *Server) home(c *fiber.Ctx) error { return sendDocsPage(c, homePage) }

// sendDocsPage sends one of the static documentation pages with their
// policy: no script, the shared style block by hash, never framed.
func sendDocsPage(c *fiber.Ctx, page []byte) error {
	c.Set(fiber.HeaderContentSecurityPolicy, migrationCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(page)
}

// mustRender renders a page that has no per-request data once, at start.
func mustRender(t *template.Template, data any) []byte {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		panic(err) // the embedded template and its data are fixed at build time
	}
	return buf.Bytes()
}

// earliestDeprecation is the first date any client's sessions were
// deprecated, zero when none are.
func earliestDeprecation(st *featureflags.State) time.Time {
	var first time.Time
	if st.DeprecatedAt != nil {
		first = *st.DeprecatedAt
	}
	for _, t := range st.ClientsDeprecatedAt {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}
