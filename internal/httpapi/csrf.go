package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// CSRF issues and checks tokens bound to a login's sid: the token is
// HMAC-SHA256(key, "csrf|"+sid), so it needs no storage, differs per login, and
// one session's token is worthless for another. The key is shared by all
// instances through the store (created once with SET NX).
type CSRF struct {
	key     []byte
	origins map[string]bool
}

const csrfKeyName = "ts:csrf:key"

// HeaderCSRF is the header cookie-authenticated unsafe requests send.
const HeaderCSRF = "X-CSRF-Token"

// NewCSRF loads (or creates) the shared key and records the allowed origins.
func NewCSRF(ctx context.Context, st store.Store, allowedOrigins []string) (*CSRF, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := st.SetNX(ctx, csrfKeyName, fresh, 0); err != nil {
		return nil, fmt.Errorf("csrf key: %w", err)
	}
	key, err := st.GetCtx(ctx, csrfKeyName)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("csrf key: unreadable (%v)", err)
	}
	o := map[string]bool{}
	for _, a := range allowedOrigins {
		o[strings.TrimRight(strings.ToLower(a), "/")] = true
	}
	return &CSRF{key: key, origins: o}, nil
}

// Token is the CSRF token of a login.
func (x *CSRF) Token(sid string) string {
	m := hmac.New(sha256.New, x.key)
	m.Write([]byte("csrf|"))
	m.Write([]byte(sid))
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
	if !hmac.Equal([]byte(got), []byte(x.Token(p.SID))) {
		return auth.Errorf(auth.CodeCSRF, "the %s header does not belong to this session", HeaderCSRF)
	}
	return nil
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

// rateLimiter counts failed logins per account and per IP in the store, so all
// instances share the budget. Any store error fails closed: the login is
// refused with 503, never let through unlimited (Fiber v2's limiter ignores
// storage errors, so it is not used here).
type rateLimiter struct {
	st         store.Store
	perAccount int64
	perIP      int64
	window     time.Duration
}

type limitState struct {
	limited    bool
	retryAfter time.Duration
}

func (r *rateLimiter) keys(login, ip string) (string, string) {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(login))))
	return "ts:rl:acct:" + base64.RawURLEncoding.EncodeToString(h[:16]), "ts:rl:ip:" + ip
}

// check reports whether either budget is spent, without spending any.
func (r *rateLimiter) check(ctx context.Context, login, ip string) (limitState, error) {
	acct, ipk := r.keys(login, ip)
	for _, k := range []struct {
		key   string
		limit int64
	}{{acct, r.perAccount}, {ipk, r.perIP}} {
		v, err := r.st.GetCtx(ctx, k.key)
		if err != nil {
			return limitState{}, err
		}
		n, _ := strconv.ParseInt(string(v), 10, 64)
		if n >= k.limit {
			// Reading the exact TTL would cost another round trip; the full
			// window is a safe upper bound for Retry-After.
			return limitState{limited: true, retryAfter: r.window}, nil
		}
	}
	return limitState{}, nil
}

// fail spends one unit of both budgets after a failed login.
func (r *rateLimiter) fail(ctx context.Context, login, ip string) (limitState, error) {
	acct, ipk := r.keys(login, ip)
	na, ta, err := r.st.Incr(ctx, acct, r.window)
	if err != nil {
		return limitState{}, err
	}
	ni, ti, err := r.st.Incr(ctx, ipk, r.window)
	if err != nil {
		return limitState{}, err
	}
	switch {
	case na > r.perAccount:
		return limitState{limited: true, retryAfter: ta}, nil
	case ni > r.perIP:
		return limitState{limited: true, retryAfter: ti}, nil
	}
	return limitState{}, nil
}

// succeed clears the account budget after a correct password.
func (r *rateLimiter) succeed(ctx context.Context, login string) error {
	acct, _ := r.keys(login, "")
	return r.st.DeleteCtx(ctx, acct)
}
