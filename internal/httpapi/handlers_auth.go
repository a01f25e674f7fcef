package httpapi

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
	"github.com/tokenshift/tokenshift/internal/session"
	"github.com/tokenshift/tokenshift/internal/token"
	"github.com/tokenshift/tokenshift/internal/user"
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
	if req.ClientID == "" {
		req.ClientID = s.opts.DefaultClient
	}
	client, ok := s.clients[req.ClientID]
	if !ok {
		s.opts.Usage.Login(auth.ClientOther, "unknown_client")
		return auth.Errorf(auth.CodeUnknownClient, "client_id %q is not registered", truncate(req.ClientID, 64))
	}
	// Login CSRF (csrf.go) and the client's origins (origins.go): checked
	// before any budget is spent.
	if err := s.csrf.CheckLogin(c, isForm, csrfToken, c.Cookies(s.opts.Cookies.preSessionCookie()), s.opts.Clock()); err != nil {
		s.opts.Usage.Login(client.ID, "csrf_failed")
		return err
	}
	if err := checkClientOrigin(c, client); err != nil {
		s.opts.Usage.Login(client.ID, "csrf_failed")
		return err
	}
	ctx := c.UserContext()
	ip := s.ClientIP(c)

	// The attempt is reserved before the password is checked (ratelimit.go).
	rsv, lim, err := s.limiter.reserve(ctx, req.Email, ip)
	if err != nil {
		s.opts.Usage.Login(client.ID, "error")
		return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the rate limiter cannot be reached")
	}
	if lim.limited {
		s.opts.Usage.Login(client.ID, "rate_limited")
		return s.rateLimited(c, lim)
	}

	// The login is dated by the instant before the account state is read
	// (user.Verifier.Verify), not by when it is written: a password change or
	// suspension that lands while the password is being checked revokes the
	// user after this instant, so its not-before ends this login wherever it
	// is checked.
	authAt := s.opts.Clock()
	u, err := s.opts.Users.Verify(ctx, req.Email, req.Password)
	if err != nil {
		if errors.Is(err, user.ErrInvalidCredentials) {
			s.opts.Usage.Login(client.ID, "invalid_credentials")
			return auth.Errorf(auth.CodeInvalidCredentials, "email or password is wrong")
		}
		return s.verifyError(c, client.ID, err, rsv)
	}
	// Refunded at once, before anything else is done for this login, so the
	// units of correct passwords are back before their answers leave and a
	// user's burst of logins (tabs, retries, a script) is limited only while
	// its attempts overlap.
	if err := s.limiter.succeeded(ctx, rsv); err != nil {
		s.opts.Usage.Login(client.ID, "error")
		return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
	}
	if isForm {
		// The form's pre-session is spent by this login (csrf.go).
		consumed, err := s.csrf.consumePreSession(ctx, c.Cookies(s.opts.Cookies.preSessionCookie()), s.opts.Clock())
		if err != nil {
			return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
		}
		if !consumed {
			s.opts.Usage.Login(client.ID, "csrf_failed")
			return auth.Errorf(auth.CodeCSRF, "this login form was already used to log in; reload it")
		}
	}

	dec := s.decide(client.ID, u.ID)
	issueSession := dec.IssueSession
	sess, cookie, err := s.opts.Sessions.Create(ctx, session.NewSession{
		UserID:    u.ID,
		Email:     u.Email,
		ClientID:  client.ID,
		Roles:     u.Roles,
		IP:        ip,
		UserAgent: cleanUserAgent(c.Get(fiber.HeaderUserAgent)),
		Cookie:    issueSession,
		Tokens:    dec.IssueTokens,
		AuthAt:    authAt,
		Replace:   c.Cookies(s.opts.Cookies.SessionCookie()),
	})
	if err != nil {
		s.opts.Usage.Login(client.ID, "error")
		return s.sessionError(err)
	}
	// Logins ended by this one (the replaced cookie's, or the oldest beyond
	// session.max_per_user) must lose their tokens too.
	for _, old := range sess.Evicted {
		if err := s.opts.Tokens.RevokeFamily(ctx, old); err != nil {
			s.opts.Usage.Login(client.ID, "error")
			return s.storeError(err)
		}
	}
	resp := loginResponse{UserID: u.ID, Email: u.Email, ClientID: client.ID, Roles: nonNil(u.Roles), Phase: dec.Phase.String(), SID: sess.SID}
	if issueSession {
		if err := s.setSessionCookie(c, client, cookie, sess.AbsoluteExpiresAt); err != nil {
			return err
		}
		s.opts.Usage.Issued("session")
		resp.Session = true
	}
	if dec.IssueTokens {
		if err := s.issueTokens(c, client, token.Subject{UserID: u.ID, Email: u.Email, ClientID: client.ID, SID: sess.SID, Roles: u.Roles, AuthTime: authAt}, &resp); err != nil {
			s.opts.Usage.Login(client.ID, "error")
			return err
		}
	}
	// Revoked while it was being made: its credentials are dead already (they
	// are dated authAt), so answer that instead of handing them out, and end
	// the record that the revocation's DeleteByUser could not see yet.
	if s.revokedSince(u.ID, authAt) {
		if err := s.revokeLogin(ctx, sess.SID); err != nil {
			s.log.Warn("ending a login overtaken by a revocation failed", "sid", sess.SID, "error", err)
		}
		c.Response().Header.DelAllCookies()
		s.opts.Cookies.clear(c)
		s.opts.Usage.Login(client.ID, "invalid_credentials")
		return auth.Errorf(auth.CodeInvalidCredentials, "every login of this account was ended while this one was being checked; log in again")
	}
	if err := s.durableAnswer(c); err != nil {
		s.opts.Usage.Login(client.ID, "error")
		return err
	}
	if resp.Session || resp.TokenTransport == string(auth.TransportCookie) {
		resp.CSRFToken = s.csrf.Token(sess.SID)
	}
	s.clearPreSession(c)
	s.opts.Usage.Login(client.ID, "success")
	s.log.Info("login", "user_id", u.ID, "client_id", client.ID, "sid", sess.SID, "session", resp.Session, "tokens", dec.IssueTokens, "phase", dec.Phase.String(), "ip", ip)

	if isForm && safeReturnTo(req.ReturnTo) {
		return c.Redirect(req.ReturnTo, fiber.StatusSeeOther)
	}
	return c.JSON(resp)
}

// issueTokens creates a pair for sub and puts it where the client expects it.
func (s *Server) issueTokens(c *fiber.Ctx, client auth.Client, sub token.Subject, resp *loginResponse) error {
	pair, err := s.opts.Tokens.Issue(c.UserContext(), sub)
	if err != nil {
		return s.tokenError(err)
	}
	s.opts.Usage.Issued("access")
	s.opts.Usage.Issued("refresh")
	return s.fillTokens(c, client, pair, resp)
}

func (s *Server) fillTokens(c *fiber.Ctx, client auth.Client, pair token.Pair, resp *loginResponse) error {
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

func (s *Server) rateLimited(c *fiber.Ctx, lim limitState) error {
	secs := int(lim.retryAfter.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	// "attempts", not "failed logins": attempts still being checked hold
	// their unit too (ratelimit.go), so a burst of correct logins can meet
	// this answer without a single failure.
	e := auth.Errorf(auth.CodeRateLimited, "too many login attempts; retry in %d seconds", secs)
	e.Extra = map[string]any{"retry_after": secs}
	return e
}

type meResponse struct {
	UserID    string     `json:"user_id"`
	Email     string     `json:"email"`
	ClientID  string     `json:"client_id"`
	Roles     []string   `json:"roles"`
	Scheme    string     `json:"scheme"`
	SID       string     `json:"sid"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (s *Server) me(c *fiber.Ctx) error {
	return writeMe(c, authn.Principal(c))
}

func (s *Server) csrfToken(c *fiber.Ctx) error {
	p := authn.Principal(c)
	if p == nil {
		return s.preSessionCSRF(c)
	}
	return c.JSON(fiber.Map{"csrf_token": s.csrf.Token(p.SID)})
}

// logout revokes a whole login: the session and every token of its sid, on
// every instance. It accepts any credential, or a refresh token alone (an
// expired access token should not stop a client from logging out).
func (s *Server) logout(c *fiber.Ctx) error {
	ctx := c.UserContext()
	all := c.Query("all") == "true"
	p := authn.Principal(c)
	var userID, sid string
	if p != nil {
		userID, sid = p.UserID, p.SID
	} else {
		raw, err := s.refreshFromRequest(c)
		if err != nil {
			return err
		}
		if raw == "" {
			c.Set(fiber.HeaderWWWAuthenticate, "Bearer")
			return auth.Errorf(auth.CodeUnauthenticated, "log out with the session cookie, an access token or a refresh token")
		}
		sub, err := s.opts.Tokens.LookupRefresh(ctx, raw)
		if err != nil {
			return s.tokenError(err)
		}
		userID, sid = sub.UserID, sub.SID
	}
	if all {
		if err := s.revokeUser(ctx, userID, "logout-all"); err != nil {
			return s.storeError(err)
		}
	} else if err := s.revokeLogin(ctx, sid); err != nil {
		return s.storeError(err)
	}
	s.opts.Cookies.clear(c)
	s.log.Info("logout", "user_id", userID, "sid", sid, "all", all)
	return c.SendStatus(fiber.StatusNoContent)
}

// maxCredentialLife bounds how long a per-user revocation must be remembered:
// past it, every credential issued before the revocation has expired anyway.
func (s *Server) maxCredentialLife() time.Duration { return s.opts.maxCredentialLife() }

func (o *Options) maxCredentialLife() time.Duration {
	if o.MaxCredentialLife > 0 {
		return o.MaxCredentialLife
	}
	return 90 * 24 * time.Hour
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
	ctx := c.UserContext()
	sub, err := s.opts.Tokens.LookupRefresh(ctx, raw)
	if err == nil {
		// Before the token is rotated: a refused request changes nothing.
		client := s.clients[sub.ClientID]
		if err := s.checkIssueOrigin(c, client, client.TokenTransport == auth.TransportCookie); err != nil {
			return err
		}
		if dec := s.decide(sub.ClientID, sub.UserID); !dec.IssueTokens {
			return auth.Errorf(auth.CodeNotAllowedInPhase, "tokens are not issued to this client in phase %s", dec.Phase)
		}
		if err := s.refreshAllowed(ctx, sub); err != nil {
			return err
		}
		// The login record is what lists, revokes and counts a token family
		// (GET /auth/sessions, the operator's revocation, max_per_user). A
		// family whose record is gone can no longer be controlled, so it
		// ends here instead of living on unseen. Checked (and the family's
		// life extended) before rotating, so no pair is minted for it.
		if err := s.opts.Sessions.TouchFamily(ctx, sub.SID); err != nil {
			if !isNotFound(err) {
				return s.storeError(err)
			}
			if err := s.opts.Tokens.RevokeFamily(ctx, sub.SID); err != nil {
				return s.storeError(err)
			}
			s.log.Warn("refresh of a token family whose login is gone: family revoked", "sid", sub.SID, "user_id", sub.UserID)
			return auth.Errorf(auth.CodeInvalidToken, "the login of this refresh token has ended; log in again")
		}
	}
	pair, sub, err := s.opts.Tokens.Refresh(ctx, raw)
	if err != nil {
		if errors.Is(err, token.ErrRefreshReused) {
			// RFC 9700 4.14.2: a replayed refresh token means the family may be
			// stolen; the token package killed the tokens, end the session too.
			s.log.Warn("refresh token reuse: login revoked", "sid", sub.SID, "user_id", sub.UserID)
			if sub.SID != "" {
				_ = s.opts.Sessions.Delete(ctx, sub.SID)
			}
		}
		return s.tokenError(err)
	}
	if err := s.durable(ctx); err != nil {
		return s.storeError(err)
	}
	client := s.clients[sub.ClientID]
	s.opts.Usage.Issued("access")
	s.opts.Usage.Issued("refresh")
	var resp loginResponse
	if err := s.fillTokens(c, client, pair, &resp); err != nil {
		return err
	}
	return c.JSON(refreshResponse{
		AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken, TokenType: resp.TokenType,
		ExpiresIn: resp.ExpiresIn, RefreshExpiresIn: resp.RefreshExpiresIn, TokenTransport: resp.TokenTransport,
		SID: sub.SID,
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
// legacy client moves to tokens without asking for the password again.
func (s *Server) exchange(c *fiber.Ctx) error {
	p := authn.Principal(c)
	if p.Scheme != auth.SchemeSession {
		return auth.Errorf(auth.CodeInvalidRequest, "exchange needs a session cookie; this request was authenticated by %s", p.Scheme)
	}
	dec := s.decide(p.ClientID, p.UserID)
	if !dec.AllowExchange {
		return auth.Errorf(auth.CodeNotAllowedInPhase, "session exchange is not offered in phase %s", dec.Phase)
	}
	// A session cookie carried the request, so authn's CSRF check ran; the
	// client's origins are checked here, before the family is touched.
	if err := s.checkIssueOrigin(c, s.clients[p.ClientID], true); err != nil {
		return err
	}
	// The login gets its token family before any token exists: the record is
	// what lists and revokes the tokens by sid and counts them against
	// max_per_user, and it must now outlive the cookie's idle timeout for as
	// long as the refresh chain lives.
	if err := s.opts.Sessions.TouchFamily(c.UserContext(), p.SID); err != nil {
		if isNotFound(err) {
			return auth.Wrap(err, auth.CodeInvalidSession, "the session has ended; log in again")
		}
		return s.storeError(err)
	}
	client := s.clients[p.ClientID]
	resp := loginResponse{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, Roles: nonNil(p.Roles), Phase: dec.Phase.String(), SID: p.SID, Session: dec.AcceptSession}
	if err := s.issueTokens(c, client, token.Subject{UserID: p.UserID, Email: p.Email, ClientID: p.ClientID, SID: p.SID, Roles: p.Roles}, &resp); err != nil {
		return err
	}
	if err := s.durableAnswer(c); err != nil {
		return err
	}
	s.log.Info("session exchanged for tokens", "user_id", p.UserID, "client_id", p.ClientID, "sid", p.SID)
	return c.JSON(resp)
}

func (s *Server) decide(clientID, userID string) featureflags.Decision {
	if s.opts.Flags == nil {
		return featureflags.Decision{Phase: featureflags.PhaseDual, IssueSession: true, IssueTokens: true, AcceptSession: true, AcceptTokens: true, AllowExchange: true}
	}
	return s.opts.Flags.Decide(clientID, userID)
}

func (s *Server) tokenError(err error) error {
	switch {
	case errors.Is(err, auth.ErrUnavailable):
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the token store is unavailable; retry shortly")
	case errors.Is(err, auth.ErrExpired):
		return auth.Wrap(err, auth.CodeInvalidToken, "the refresh token has expired; log in again")
	case errors.Is(err, auth.ErrRevoked):
		return auth.Wrap(err, auth.CodeInvalidToken, "the refresh token has been revoked; log in again")
	}
	return auth.Wrap(err, auth.CodeInvalidToken, "the refresh token is not valid")
}

func (s *Server) sessionError(err error) error {
	if errors.Is(err, session.ErrLimitReached) {
		return auth.Wrap(err, auth.CodeSessionLimit, "too many active logins for this account; log out elsewhere first")
	}
	return s.storeError(err)
}

func isNotFound(err error) bool { return errors.Is(err, auth.ErrNotFound) }

func (s *Server) storeError(err error) error {
	if errors.Is(err, auth.ErrUnavailable) {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the store is unavailable; retry shortly")
	}
	return err
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
