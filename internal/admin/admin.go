// Package admin is the operator surface: the admin API (usage report and
// readiness, migration flags with guard and rollback, audit, session control)
// and the embedded dashboard page. Every API route needs a principal with role
// admin, from any accepted credential, and every request is logged with who
// made it.
package admin

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// ReportFunc builds the usage report for a window, for one client or all ("").
// cmd adapts internal/usage.Recorder.Report to it, so this package does not
// depend on the counting code.
type ReportFunc func(ctx context.Context, window time.Duration, clientID string) (any, error)

// Options are the admin surface's dependencies.
type Options struct {
	Logger *slog.Logger
	// Authn is the standard authentication middleware.
	Authn fiber.Handler
	Usage ReportFunc
	Flags *featureflags.Manager
	// Clients are the registered client ids, for validation and display.
	Clients []auth.Client
	// MaxWindow bounds report windows (usage.retention).
	MaxWindow time.Duration
	// OnFlagsChanged is called after every successful change (metrics gauges).
	OnFlagsChanged func(featureflags.State)
	// Sessions adds the session-control routes when set.
	Sessions SessionControl
	// Keys adds the signing-key routes (list, rotate) when set.
	Keys KeyManager
	// Accounts adds suspension routes when set.
	Accounts AccountControl
}

// Handlers serves the admin routes.
type Handlers struct {
	o   Options
	log *slog.Logger
}

// New builds the handlers.
func New(o Options) *Handlers {
	o = o.withDefaults()
	return &Handlers{o: o, log: o.Logger}
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxWindow == 0 {
		o.MaxWindow = 35 * 24 * time.Hour
	}
	return o
}

// Mount registers the admin routes on app. The dashboard page and its assets
// are public (the page holds its own login form); the API is admin-only.
func (h *Handlers) Mount(app *fiber.App) {
	mountDashboard(app)
	api := app.Group("/admin", onSegment("/admin", h.o.Authn), onSegment("/admin", h.requireAdmin))
	api.Get("/usage", h.usage)
	api.Get("/flags", h.getFlags)
	api.Put("/flags", h.putFlags)
	api.Post("/flags/rollback", h.rollback)
	api.Get("/audit", h.audit)
	if h.o.Sessions != nil {
		h.mountSessions(api)
	}
	if h.o.Keys != nil {
		h.mountKeys(api)
	}
	if h.o.Accounts != nil {
		h.mountUsers(api)
	}
}

// requireAdmin answers 403 to authenticated non-admins (401 was already given
// to anonymous requests by authn) and logs who used the admin API.
func (h *Handlers) requireAdmin(c *fiber.Ctx) error {
	p := authn.Principal(c)
	if p == nil {
		return auth.Errorf(auth.CodeUnauthenticated, "the admin API needs an authenticated operator")
	}
	if !p.HasRole(auth.RoleAdmin) {
		h.log.Warn("admin access refused", "user_id", p.UserID, "client_id", p.ClientID, "method", c.Method(), "path", c.Path())
		return auth.Errorf(auth.CodeForbidden, "the admin API needs the admin role")
	}
	h.log.Info("admin request", "user_id", p.UserID, "email", p.Email, "scheme", p.Scheme.String(), "method", c.Method(), "path", c.Path(), "query", string(c.Request().URI().QueryString()))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// ParseWindow accepts Go durations ("90m", "24h") and days ("7d") from one
// minute up to limit (usage.retention). A day count is checked against limit
// before it is multiplied, so no count, however large, can overflow into an
// accepted window.
func ParseWindow(s string, limit time.Duration) (time.Duration, error) {
	if s == "" {
		return 24 * time.Hour, nil
	}
	var w time.Duration
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n <= 0 {
			return 0, auth.Errorf(auth.CodeInvalidRequest, "window %q: days must be a positive whole number", truncate(s, 64))
		}
		if n > int64(limit/(24*time.Hour)) {
			return 0, windowRange(limit)
		}
		w = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		w, err = time.ParseDuration(s)
		if err != nil || w <= 0 {
			return 0, auth.Errorf(auth.CodeInvalidRequest, "window %q: use a duration like 90m, 24h or 7d", truncate(s, 64))
		}
	}
	if w < time.Minute || w > limit {
		return 0, windowRange(limit)
	}
	return w, nil
}

func windowRange(limit time.Duration) error {
	return auth.Errorf(auth.CodeInvalidRequest, "window must be between 1m and %s (usage.retention)", limit)
}

func (h *Handlers) usage(c *fiber.Ctx) error {
	w, err := ParseWindow(c.Query("window"), h.o.MaxWindow)
	if err != nil {
		return err
	}
	client := c.Query("client")
	if client != "" && !h.known(client) {
		return auth.Errorf(auth.CodeInvalidRequest, "client %q is not registered (nor one of the labels other, unknown)", truncate(client, 64))
	}
	r, err := h.o.Usage(c.UserContext(), w, client)
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the usage figures cannot be read right now")
	}
	return c.JSON(r)
}

// known accepts registered client ids and the two labels usage counts under
// besides them: other (unregistered ids) and unknown (no client established).
func (h *Handlers) known(id string) bool {
	if id == auth.ClientOther || id == auth.ClientUnknown {
		return true
	}
	for _, c := range h.o.Clients {
		if c.ID == id {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
