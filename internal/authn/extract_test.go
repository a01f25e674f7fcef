package authn

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// extractTwoPass is how extract read the cookies before its single pass:
// DuplicateCookie, then a lookup per cookie. The single pass must agree with
// it on every request.
func extractTwoPass(c *fiber.Ctx, sessionCookie, accessCookie string) Credentials {
	var cr Credentials
	if cr.Duplicate = DuplicateCookie(c, sessionCookie, accessCookie); cr.Duplicate != "" {
		return cr
	}
	cr.Session = c.Cookies(sessionCookie)
	cr.JWTCookie = c.Cookies(accessCookie)
	cr.Bearer, cr.BearerMalformed = splitBearer(c.Get(fiber.HeaderAuthorization))
	return cr
}

func TestExtractOnePassAgreesWithLookups(t *testing.T) {
	tests := []struct {
		name            string
		cookies         []string
		authorization   string
		session, access string
	}{
		{name: "none"},
		{name: "session", cookies: []string{"ts_session=s1"}},
		{name: "access", cookies: []string{"a=b; ts_access=t1"}},
		{name: "both and others", cookies: []string{"x=1; ts_access=t1; y=2; ts_session=s1"}, authorization: "Bearer abc"},
		{name: "session twice", cookies: []string{"ts_session=s1; ts_session=s2"}},
		{name: "session twice across lines", cookies: []string{"ts_session=s1", "x=0; ts_session=s2"}},
		{name: "session twice, one empty", cookies: []string{"ts_session=; ts_session=s2"}},
		{name: "access twice", cookies: []string{"ts_access=t1; ts_session=s1; ts_access=t2"}},
		{name: "both twice: session named first", cookies: []string{"ts_access=t1; ts_access=t2; ts_session=s1; ts_session=s2"}},
		{name: "empty value", cookies: []string{"ts_session="}},
		{name: "look-alikes", cookies: []string{"ts_session_old=x; Ts_session=y; ts_sessio=z"}},
		{name: "other cookie twice", cookies: []string{"theme=a; ts_session=s1; theme=b"}},
		{name: "one name for both", cookies: []string{"c=v"}, session: "c", access: "c"},
		{name: "one name for both, twice", cookies: []string{"c=v; c=w"}, session: "c", access: "c"},
		{name: "malformed bearer", cookies: []string{"ts_session=s1"}, authorization: "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sn, an := tt.session, tt.access
			if sn == "" {
				sn, an = "ts_session", "ts_access"
			}
			var ran bool
			app := fiber.New()
			app.Get("/", func(c *fiber.Ctx) error {
				// Compared here: the values are views of the request.
				got, want := extract(c, sn, an), extractTwoPass(c, sn, an)
				if got != want {
					t.Errorf("one pass %+v, lookups %+v", got, want)
				}
				ran = true
				return nil
			})
			r := httptest.NewRequest("GET", "/", nil)
			for _, h := range tt.cookies {
				r.Header.Add("Cookie", h)
			}
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			if _, err := app.Test(r); err != nil {
				t.Fatal(err)
			}
			if !ran {
				t.Fatal("the handler did not run")
			}
		})
	}
}
