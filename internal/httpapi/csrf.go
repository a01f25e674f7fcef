package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/logins"
	"github.com/tokenshift/tokenshift/internal/store"
)

// CSRF issues and checks tokens bound to a login's sid: the token is
// HMAC-SHA256(key, "csrf|"+sid), so it needs no storage, differs per login, and
// one session's token is worthless for another. The key is shared by all
// instances through the store (csrfkeys.go keeps it there).
type CSRF struct {
	keys    *csrfKeyring
	origins map[string]bool
}

// HeaderCSRF is the header cookie-authenticated unsafe requests send.
const HeaderCSRF = "X-CSRF-Token"

// CSRFOptions configure NewCSRF. Zero values take the documented defaults.
type CSRFOptions struct {
	// Store holds the shared key. Required.
	Store store.Store
	// AllowedOrigins may make cookie-authenticated requests besides the
	// request's own origin (server.public_url and cors.allowed_origins).
	AllowedOrigins []string
	// Grace is how long a key replaced by another instance's stays valid for
	// checking: as long as a token made with it may still be presented, i.e.
	// the longest life of a login. Default 24h.
	Grace time.Duration
	// SyncInterval is how often the key is written back to the store and
	// compared with the store's. Default 30s.
	SyncInterval time.Duration
	Clock        func() time.Time
	Logger       *slog.Logger
}

// NewCSRF loads (or creates) the shared key and records the allowed origins.
// Call Run to keep the key in the store.
func NewCSRF(ctx context.Context, cfg CSRFOptions) (*CSRF, error) {
	if cfg.Store == nil {
		return nil, errors.New("csrf: nil store")
	}
	kr, err := newCSRFKeyring(ctx, cfg.withDefaults())
	if err != nil {
		return nil, err
	}
	o := map[string]bool{}
	for _, a := range cfg.AllowedOrigins {
		o[strings.TrimRight(strings.ToLower(a), "/")] = true
	}
	return &CSRF{keys: kr, origins: o}, nil
}

// withDefaults fills zero fields.
func (cfg CSRFOptions) withDefaults() CSRFOptions {
	if cfg.Grace <= 0 {
		cfg.Grace = 24 * time.Hour
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Run keeps the shared key alive in the store until ctx is done (see
// csrfKeyring.run). It blocks.
func (x *CSRF) Run(ctx context.Context) { x.keys.run(ctx) }

// Token is the CSRF token of a login, made with the current key.
func (x *CSRF) Token(sid string) string {
	return csrfMAC(x.keys.load().current, "csrf|", sid)
}

// ValidToken reports whether got is the CSRF token of the login sid under the
// current key or a recently replaced one, in constant time per key.
func (x *CSRF) ValidToken(sid, got string) bool {
	return x.keys.verify("csrf|", sid, got)
}

func csrfMAC(key []byte, purpose, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF implements authn.CSRFChecker: same origin first, then the token.
func (x *CSRF) CheckCSRF(c *fiber.Ctx, p *auth.Principal) error {
	if err := x.CheckOrigin(c); err != nil {
		return err
	}
	got := c.Get(HeaderCSRF)
	if got == "" {
		return auth.Errorf(auth.CodeCSRF, "cookie-authenticated %s requests need the %s header (from the login response or GET /auth/csrf)", c.Method(), HeaderCSRF)
	}
	if b := csrfBinding(p); b == "" || !x.ValidToken(b, got) {
		return auth.Errorf(auth.CodeCSRF, "the %s header does not belong to this session", HeaderCSRF)
	}
	return nil
}

// csrfBinding is what a principal's CSRF token is bound to: its login's
// sid, or for a legacy session (issue 12) its handle (logins.LegacyHandle:
// a hash of source and id, so the token needs no storage either, and a
// token of one legacy session is worthless for another). authn sets a
// legacy principal's SID to that handle; it is derived here again so the
// binding does not rest on it. "" (no binding) for a legacy principal
// without its id.
func csrfBinding(p *auth.Principal) string {
	if p.Source != "" {
		if p.LegacyID == "" {
			return ""
		}
		return logins.LegacyHandle(p.Source, p.LegacyID)
	}
	return p.SID
}

// CheckOrigin refuses cross-site requests: a present Origin must be ours or
// allowed; without Origin, Sec-Fetch-Site (sent by every current browser) must
// not say cross-site. Non-browser clients send neither and pass on the token.
func (x *CSRF) CheckOrigin(c *fiber.Ctx) error {
	if o := c.Get(fiber.HeaderOrigin); o != "" {
		if !x.sameOrigin(c, o) {
			return auth.Errorf(auth.CodeCSRF, "origin %q is not allowed to make cookie-authenticated requests", o)
		}
		return nil
	}
	switch c.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return nil
	}
	return auth.Errorf(auth.CodeCSRF, "cross-site cookie-authenticated requests are refused")
}

// AllowedOrigin reports whether origin is one of the configured origins
// (server.public_url and cors.allowed_origins).
func (x *CSRF) AllowedOrigin(origin string) bool {
	return x.origins[strings.TrimRight(strings.ToLower(origin), "/")]
}

func (x *CSRF) sameOrigin(c *fiber.Ctx, origin string) bool {
	if origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	norm := strings.ToLower(u.Scheme + "://" + u.Host)
	if x.origins[norm] {
		return true
	}
	return norm == strings.ToLower(c.Protocol()+"://"+c.Hostname())
}

// Login CSRF. Without a defence, a foreign page can post a login form with the
// attacker's credentials and the victim's browser ends up logged into the
// attacker's account. There is no session to bind a token to yet, so GET
// /auth/csrf hands an anonymous caller a pre-session cookie (random, HttpOnly,
// SameSite=Strict, short-lived) and a token that is HMAC(key, "login|"+cookie).
// A foreign page can neither read the token nor set the cookie (__Host- in
// production stops sibling subdomains from planting one).

// preSessionTTL bounds how long a login form stays usable without reloading.
const preSessionTTL = 30 * time.Minute

// preSessionCookieName is the base name; the __Host- prefix is added with
// secure cookies.
const preSessionCookieName = "ts_login_csrf"

// FieldCSRF is the form field a login form carries the pre-session token in.
const FieldCSRF = "csrf_token"

func (o CookieOptions) preSessionCookie() string { return o.hostPrefixed(preSessionCookieName) }

// newPreSession makes a cookie value that carries its own expiry (so the
// server, not only the browser, enforces the short life) and its token.
func (x *CSRF) newPreSession(now time.Time) (value, token string, expires time.Time, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", time.Time{}, err
	}
	expires = now.Add(preSessionTTL).Truncate(time.Second)
	value = base64.RawURLEncoding.EncodeToString(b[:]) + "." + strconv.FormatInt(expires.Unix(), 10)
	return value, x.preSessionToken(value), expires, nil
}

func (x *CSRF) preSessionToken(cookieValue string) string {
	return csrfMAC(x.keys.load().current, "login|", cookieValue)
}

// preSessionExpiry reads the expiry a cookie value claims; ok is false for
// anything not shaped like our values. The HMAC check makes the claim
// trustworthy: a client cannot change it without invalidating the token.
func preSessionExpiry(value string) (time.Time, bool) {
	i := strings.LastIndexByte(value, '.')
	if i != 32 || len(value) > 64 { // 24 bytes are 32 base64url characters
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(value[i+1:], 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// checkPreSession verifies a login form's token against its pre-session cookie.
func (x *CSRF) checkPreSession(cookieValue, token string, now time.Time) error {
	if cookieValue == "" || token == "" {
		return auth.Errorf(auth.CodeCSRF, "form logins need the %s field (or %s header) and the cookie from GET /auth/csrf", FieldCSRF, HeaderCSRF)
	}
	exp, ok := preSessionExpiry(cookieValue)
	if !ok || !x.keys.verify("login|", cookieValue, token) {
		return auth.Errorf(auth.CodeCSRF, "the login CSRF token does not belong to this browser; reload the login form")
	}
	if !now.Before(exp) || exp.After(now.Add(preSessionTTL+time.Minute)) {
		return auth.Errorf(auth.CodeCSRF, "the login form has expired; reload it")
	}
	return nil
}

// CheckLogin applies the login CSRF rules. A form-encoded body is what a
// foreign page can send without a CORS preflight, so it needs both the
// pre-session token and a same-origin request. A JSON body cannot be sent
// cross-site without a preflight, which CORS refuses to unlisted origins, so
// the origin check suffices.
func (x *CSRF) CheckLogin(c *fiber.Ctx, isForm bool, formToken, cookieValue string, now time.Time) error {
	if err := x.CheckOrigin(c); err != nil {
		return err
	}
	if !isForm {
		return nil
	}
	if formToken == "" {
		formToken = c.Get(HeaderCSRF)
	}
	if err := x.checkPreSession(cookieValue, formToken, now); err != nil {
		return err
	}
	used, err := x.preSessionUsed(c.UserContext(), cookieValue)
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "login is unavailable: the store cannot be reached")
	}
	if used {
		return auth.Errorf(auth.CodeCSRF, "this login form was already used to log in; reload it")
	}
	return nil
}

// A pre-session is single-use: the successful login it allowed marks it used
// in the store until it expires (SET NX, so of two submissions racing with
// the right password only one logs in), and a marked one is refused. The
// browser drops the cookie at login anyway; the mark is for a copied cookie
// and token. A failed attempt does not use it up: the user corrects a typo
// without reloading the form.
func preSessionUsedKey(cookieValue string) string {
	h := sha256.Sum256([]byte(cookieValue))
	return "ts:lcsrf:used:" + base64.RawURLEncoding.EncodeToString(h[:16])
}

func (x *CSRF) preSessionUsed(ctx context.Context, cookieValue string) (bool, error) {
	v, err := x.keys.st.GetCtx(ctx, preSessionUsedKey(cookieValue))
	return v != nil, err
}

// consumePreSession marks a checked pre-session used; false when another
// login consumed it first.
func (x *CSRF) consumePreSession(ctx context.Context, cookieValue string, now time.Time) (bool, error) {
	exp, ok := preSessionExpiry(cookieValue)
	if !ok {
		return false, nil
	}
	// A minute more than the cookie claims: checkPreSession tolerates that
	// much clock difference between instances.
	return x.keys.st.SetNX(ctx, preSessionUsedKey(cookieValue), []byte{1}, exp.Sub(now)+time.Minute)
}
