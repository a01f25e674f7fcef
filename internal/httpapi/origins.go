package httpapi

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Two origin rules guard every answer that issues credentials (login,
// refresh, exchange):
//
//   - An answer that sets credential cookies passes the same-origin check
//     (CSRF.CheckOrigin), whatever carried the request's own credential. A
//     foreign page can auto-submit a form with the attacker's refresh token
//     in its body; answered, the victim's browser would be logged into the
//     attacker's account (login CSRF), exactly as with a forged login form.
//   - A client restricted to origins (clients[].allowed_origins) is used by
//     browsers only from those origins. The phase is decided per client, and
//     the client is the one a login names: without the restriction a page of
//     one application could name another application's client and get what
//     that client's phase still hands out. The restriction binds browsers
//     only (a script or server can send any Origin header, or none); it is
//     not client authentication.

// checkIssueOrigin applies both rules to a request that is about to issue
// credentials for client; setsCookies says whether the answer will carry
// them as cookies. Handlers call it before anything changes state.
func (s *Server) checkIssueOrigin(c *fiber.Ctx, client auth.Client, setsCookies bool) error {
	if setsCookies {
		if err := s.csrf.CheckOrigin(c); err != nil {
			return err
		}
	}
	return checkClientOrigin(c, client)
}

// checkClientOrigin refuses a browser request for a restricted client from an
// origin outside its list. A request is a browser's when it carries Origin or
// Sec-Fetch-Site: browsers send Origin with every POST, so one that sends
// fetch metadata but no Origin cannot prove its origin and is refused too.
// A request with neither is not a browser's, and nothing can be proven about
// it.
func checkClientOrigin(c *fiber.Ctx, client auth.Client) error {
	if len(client.AllowedOrigins) == 0 {
		return nil
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		if c.Get("Sec-Fetch-Site") == "" {
			return nil
		}
		return auth.Errorf(auth.CodeOriginNotAllowed, "client %q accepts browser requests only from its allowed origins, and this request sent no Origin", client.ID)
	}
	if got, ok := normalOrigin(origin); ok {
		for _, a := range client.AllowedOrigins {
			if want, _ := normalOrigin(a); want == got {
				return nil
			}
		}
	}
	return auth.Errorf(auth.CodeOriginNotAllowed, "client %q does not accept browser requests from origin %q", client.ID, truncate(origin, 128))
}

// normalOrigin is origin as scheme://host[:port], lower-cased, without a
// default port (browsers never send one, configs may), so that equal origins
// compare equal. ok is false for anything that is not an http(s) origin
// ("null" included).
func normalOrigin(origin string) (string, bool) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80") {
		host += ":" + p
	}
	return u.Scheme + "://" + host, true
}
