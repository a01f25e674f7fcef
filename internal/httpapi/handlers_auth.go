package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/logins"
)

// noStore marks every /auth answer uncacheable: they carry credentials or
// identity (RFC 6749 section 5.1 asks the same of token responses).
func noStore(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.SetCanonical(keyCacheControl, valueNoStore)
	h.SetCanonical(keyPragma, valueNoCache)
	return c.Next()
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	ClientID string `json:"client_id"`
	ReturnTo string `json:"-"`
}

// parseBody reads a JSON object or an HTML form into dst's fields through get.
// Anything else is 415; a malformed body is 400.
func parseForm(c *fiber.Ctx, fields map[string]*string) (isForm bool, err error) {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]))
	switch ct {
	case fiber.MIMEApplicationJSON:
		var m map[string]any
		if err := json.Unmarshal(c.Body(), &m); err != nil || m == nil {
			return false, auth.Errorf(auth.CodeInvalidRequest, "the body is not a JSON object")
		}
		for k, p := range fields {
			v, ok := m[k]
			if !ok || v == nil {
				continue
			}
			str, ok := v.(string)
			if !ok {
				return false, auth.Errorf(auth.CodeInvalidRequest, "field %q must be a string", k)
			}
			*p = str
		}
		return false, nil
	case fiber.MIMEApplicationForm:
		for k, p := range fields {
			*p = c.FormValue(k)
		}
		return true, nil
	case "":
		if len(c.Body()) == 0 {
			return false, nil
		}
	}
	return false, auth.Errorf(auth.CodeUnsupportedMediaType, "send application/json or application/x-www-form-urlencoded")
}

type loginResponse struct {
	UserID           string   `json:"user_id"`
	Email            string   `json:"email"`
	ClientID         string   `json:"client_id"`
	Roles            []string `json:"roles"`
	Phase            string   `json:"phase"`
	SID              string   `json:"sid"`
	Session          bool     `json:"session"`
	CSRFToken        string   `json:"csrf_token,omitempty"`
	TokenTransport   string   `json:"token_transport,omitempty"`
	AccessToken      string   `json:"access_token,omitempty"`
	TokenType        string   `json:"token_type,omitempty"`
	ExpiresIn        int64    `json:"expires_in,omitempty"`
	RefreshToken     string   `json:"refresh_token,omitempty"`
	RefreshExpiresIn int64    `json:"refresh_expires_in,omitempty"`
}

func (s *Server) login(c *fiber.Ctx) error {
	var req loginRequest
	var csrfToken string
	isForm, err := parseForm(c, map[string]*string{"email": &req.Email, "password": &req.Password, "client_id": &req.ClientID, "return_to": &req.ReturnTo, FieldCSRF: &csrfToken})
	if err != nil {
		return err
	}
	switch {
	case req.Email == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"email\" is required")
	case req.Password == "":
		return auth.Errorf(auth.CodeInvalidRequest, "field \"password\" is required")
	case len(req.Email) > 320 || len(req.Password) > 1024:
		return auth.Errorf(auth.CodeInvalidRequest, "email or password too long")
	}
	// From here on every attempt is counted once, under the outcome its
	// error names (auth.LoginOutcomeOf).
	clientID, resp, err := s.loginAs(c, req, isForm, csrfToken)
	s.opts.Usage.Login(clientID, auth.LoginOutcomeOf(err))
	if err != nil {
		return setRetryAfter(c, err)
	}
	if isForm && safeReturnTo(req.ReturnTo) {
		return c.Redirect(req.ReturnTo, fiber.StatusSeeOther)
	}
	return c.JSON(resp)
}

// loginAs runs a login and sets its cookies. clientID is the client to
// count it under: auth.ClientOther for an unregistered one.
func (s *Server) loginAs(c *fiber.Ctx, req loginRequest, isForm bool, csrfToken string) (clientID string, _ loginResponse, _ error) {
	client, err := s.logins.Client(req.ClientID)
	if err != nil {
		return auth.ClientOther, loginResponse{}, err
	}
	// Login CSRF (csrf.go) and the client's origins (origins.go): checked
	// before any budget is spent.
	preSession := c.Cookies(s.opts.Cookies.preSessionCookie())
	if err := s.csrf.CheckLogin(c, isForm, csrfToken, preSession, s.opts.Clock()); err != nil {
		return client.ID, loginResponse{}, auth.WithLoginOutcome(err, auth.LoginCSRFFailed)
	}
	if err := checkClientOrigin(c, client); err != nil {
		return client.ID, loginResponse{}, err
	}
	lr := logins.LoginRequest{
		Client: client, Email: req.Email, Password: req.Password,
		IP: s.ClientIP(c), UserAgent: cleanUserAgent(c.Get(fiber.HeaderUserAgent)),
		Replace: c.Cookies(s.opts.Cookies.SessionCookie()),
	}
	if isForm {
		// The form's pre-session is spent by this login (csrf.go), once the
		// password is known to be right.
		lr.PasswordChecked = func(ctx context.Context) error { return s.spendPreSession(ctx, preSession) }
	}
	l, err := s.logins.Login(c.UserContext(), lr)
	if err != nil {
		if errors.Is(err, logins.ErrOvertaken) {
			s.opts.Cookies.clear(c)
		}
		return client.ID, loginResponse{}, err
	}
	resp := loginResponse{UserID: l.UserID, Email: l.Email, ClientID: l.ClientID, Roles: nonNil(l.Roles), Phase: l.Phase.String(), SID: l.SID}
	if l.Cookie != "" {
		if err := s.setSessionCookie(c, client, l.Cookie, l.CookieExpiresAt); err != nil {
			return client.ID, loginResponse{}, err
		}
		resp.Session = true
	}
	if l.Tokens != nil {
		if err := s.fillTokens(c, client, *l.Tokens, &resp); err != nil {
			return client.ID, loginResponse{}, err
		}
	}
	if resp.Session || resp.TokenTransport == string(auth.TransportCookie) {
		resp.CSRFToken = s.csrf.Token(l.SID)
	}
	s.clearPreSession(c)
	return client.ID, resp, nil
}

// spendPreSession marks the login form's pre-session used: a second login
// with the same form is refused.
func (s *Server) spendPreSession(ctx context.Context, preSession string) error {
	consumed, err := s.csrf.consumePreSession(ctx, preSession, s.opts.Clock())
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
	}
	if !consumed {
		return auth.Errorf(auth.CodeCSRF, "this login form was already used to log in; reload it")
	}
	return nil
}

func (s *Server) fillTokens(c *fiber.Ctx, client auth.Client, pair logins.Pair, resp *loginResponse) error {
	now := s.opts.Clock()
	resp.ExpiresIn = ceilSeconds(pair.AccessExpiresAt.Sub(now))
	resp.RefreshExpiresIn = ceilSeconds(pair.RefreshExpiresAt.Sub(now))
	resp.TokenType = "Bearer"
	if client.TokenTransport == auth.TransportCookie {
		resp.TokenTransport = string(auth.TransportCookie)
		return s.setTokenCookies(c, client, pair)
	}
	resp.TokenTransport = string(auth.TransportBody)
	resp.AccessToken = pair.AccessToken
	resp.RefreshToken = pair.RefreshToken
	return nil
}

// setRetryAfter adds Retry-After to the answers that tell the client to
// come back: a rate limit (its figure) and a full password-check queue.
func setRetryAfter(c *fiber.Ctx, err error) error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Code {
	case auth.CodeRateLimited:
		if secs, ok := ae.Extra["retry_after"].(int); ok {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
		}
	case auth.CodeLoginBusy:
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	return err
}

type meResponse struct {
	UserID    string     `json:"user_id"`
	Email     string     `json:"email"`
	ClientID  string     `json:"client_id"`
	Roles     []string   `json:"roles"`
	Scheme    string     `json:"scheme"`
	SID       string     `json:"sid"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Source names the legacy.sources entry whose session proved the
	// request; own credentials have none.
	Source string `json:"source,omitempty"`
}

func (s *Server) me(c *fiber.Ctx) error {
	return s.writeMe(c, authn.Principal(c))
}

func (s *Server) csrfToken(c *fiber.Ctx) error {
	p := authn.Principal(c)
	if p == nil {
		return s.preSessionCSRF(c)
	}
	return c.JSON(fiber.Map{"csrf_token": s.csrf.Token(csrfBinding(p))})
}

// logout revokes a whole login: the session and every token of its sid, on
// every instance. It accepts any credential, or a refresh token alone (an
// expired access token should not stop a client from logging out).
func (s *Server) logout(c *fiber.Ctx) error {
	ctx := c.UserContext()
	all := c.Query("all") == "true"
	p := authn.Principal(c)
	var userID, sid string
	switch {
	case p != nil && p.Source != "":
		// A legacy session: ended in its own store, so the legacy app
		// refuses it too.
		if err := s.logins.LogoutLegacy(ctx, p, all); err != nil {
			return err
		}
		s.opts.Cookies.clear(c)
		return c.SendStatus(fiber.StatusNoContent)
	case p != nil:
		userID, sid = p.UserID, p.SID
	default:
		raw, err := s.refreshFromRequest(c)
		if err != nil {
			return err
		}
		if raw == "" {
			c.Set(fiber.HeaderWWWAuthenticate, "Bearer")
			return auth.Errorf(auth.CodeUnauthenticated, "log out with the session cookie, an access token or a refresh token")
		}
		owner, err := s.logins.RefreshOwner(ctx, raw)
		if err != nil {
			return err
		}
		userID, sid = owner.UserID, owner.SID
	}
	if err := s.logins.Logout(ctx, userID, sid, all); err != nil {
		return err
	}
	s.opts.Cookies.clear(c)
	// The legacy session the browser still sends next to its tokenshift
	// login (exchanged with on_exchange keep) ends with it: otherwise
	// that cookie alone would keep the user logged in. After the own
	// logout, so a legacy store outage leaves a retry that the legacy
	// cookie alone authenticates.
	if lp := authn.LegacyAlongside(c); lp != nil && lp.UserID == userID {
		if err := s.logins.LogoutLegacy(ctx, lp, false); err != nil {
			return err
		}
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) refreshFromRequest(c *fiber.Ctx) (string, error) {
	var raw string
	if len(c.Body()) > 0 || c.Get(fiber.HeaderContentType) != "" {
		if _, err := parseForm(c, map[string]*string{"refresh_token": &raw}); err != nil {
			return "", err
		}
	}
	if raw == "" {
		if v := c.Cookies(s.opts.Cookies.RefreshCookie()); v != "" {
			// A cookie arrives by itself with cross-site requests: only a
			// same-origin caller may use it.
			if err := s.csrf.CheckOrigin(c); err != nil {
				return "", err
			}
			raw = v
		}
	}
	if len(raw) > 512 {
		return "", auth.Errorf(auth.CodeInvalidToken, "the refresh token is not valid")
	}
	return raw, nil
}

func (s *Server) refresh(c *fiber.Ctx) error {
	raw, err := s.refreshFromRequest(c)
	if err != nil {
		return err
	}
	if raw == "" {
		return auth.Errorf(auth.CodeInvalidRequest, "field \"refresh_token\" is required")
	}
	r, err := s.logins.Refresh(c.UserContext(), raw, func(client auth.Client) error {
		return s.checkIssueOrigin(c, client, client.TokenTransport == auth.TransportCookie)
	})
	if err != nil {
		return err
	}
	var resp loginResponse
	if err := s.fillTokens(c, r.Client, r.Pair, &resp); err != nil {
		return err
	}
	return c.JSON(refreshResponse{
		AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken, TokenType: resp.TokenType,
		ExpiresIn: resp.ExpiresIn, RefreshExpiresIn: resp.RefreshExpiresIn, TokenTransport: resp.TokenTransport,
		SID: r.SID,
	})
}

// refreshResponse is the new pair. Clients with token_transport cookie get
// their tokens as cookies only, so the token fields are left out, not sent
// empty.
type refreshResponse struct {
	AccessToken      string `json:"access_token,omitempty"`
	RefreshToken     string `json:"refresh_token,omitempty"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int64  `json:"expires_in"`
	RefreshExpiresIn int64  `json:"refresh_expires_in"`
	TokenTransport   string `json:"token_transport"`
	SID              string `json:"sid"`
}

// exchange gives a session holder a token pair bound to the same sid, so a
// legacy client moves to tokens without asking for the password again. A
// legacy session (issue 12) gets a new login instead: its sid, a token pair
// and, where the phase issues sessions, tokenshift's session cookie.
func (s *Server) exchange(c *fiber.Ctx) error {
	p := authn.Principal(c)
	// A session cookie carried the request, so authn's CSRF check ran; the
	// client's origins are checked before the family is touched.
	x, err := s.logins.Exchange(c.UserContext(), logins.ExchangeRequest{
		Principal: p, IP: s.ClientIP(c), UserAgent: cleanUserAgent(c.Get(fiber.HeaderUserAgent)),
		Check: func(client auth.Client) error { return s.checkIssueOrigin(c, client, true) },
	})
	if err != nil {
		return err
	}
	resp := loginResponse{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: nonNil(p.Roles), Phase: x.Phase.String(), SID: x.SID, Session: x.AcceptSession}
	if p.Source != "" {
		resp.Session = x.Cookie != ""
		if x.Cookie != "" {
			if err := s.setSessionCookie(c, x.Client, x.Cookie, x.CookieExpiresAt); err != nil {
				return err
			}
		}
	}
	if err := s.fillTokens(c, x.Client, x.Pair, &resp); err != nil {
		return err
	}
	if p.Source != "" && (resp.Session || resp.TokenTransport == string(auth.TransportCookie)) {
		// The new login's cookies need their own token: the legacy one is
		// bound to the legacy session.
		resp.CSRFToken = s.csrf.Token(x.SID)
	}
	return c.JSON(resp)
}

// safeReturnTo accepts only a local absolute path: no scheme, no host, no
// protocol-relative "//" or "/\" (open-redirect tricks). Control characters
// and backslashes are refused anywhere: browsers drop tabs and newlines and
// read "\" as "/", so "/\t/evil.example" would become "//evil.example".
func safeReturnTo(p string) bool {
	if len(p) == 0 || len(p) >= 512 || p[0] != '/' || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < 0x20 || b == 0x7f || b == '\\' {
			return false
		}
	}
	return true
}

// ceilSeconds rounds a lifetime up: exp is stored in whole seconds, so a
// 15-minute token is 899.x seconds from now and must still read as 900.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// cleanUserAgent is the User-Agent as the login records it for operators'
// listings: control characters (ESC, BEL, CR, LF, ...), Unicode format
// characters (bidirectional overrides) and bytes that are not UTF-8 are
// dropped, since the value is the client's to choose and ends up in
// terminals and pages; at most 256 bytes, cut on a character boundary.
func cleanUserAgent(ua string) string {
	const maxLen = 256
	var b strings.Builder
	for i := 0; i < len(ua) && b.Len() < maxLen; {
		r, n := utf8.DecodeRuneInString(ua[i:])
		i += n
		if (r == utf8.RuneError && n == 1) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		if b.Len()+n > maxLen {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
