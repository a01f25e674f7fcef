package admin

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/authn"
)

// FlagsView is the answer of GET and PUT /admin/flags and of the rollback:
// the state plus each registered client's effective phase, so operators need
// not resolve overrides in their head. The CLI decodes it too.
type FlagsView struct {
	featureflags.State
	Effective map[string]string `json:"effective"`
}

func (h *Handlers) view(s featureflags.State) FlagsView {
	v := FlagsView{State: s, Effective: map[string]string{}}
	if v.Clients == nil {
		v.Clients = map[string]featureflags.ClientRule{}
	}
	if v.ExemptClients == nil {
		v.ExemptClients = []string{}
	}
	for _, c := range h.o.Clients {
		v.Effective[c.ID] = s.EffectivePhase(c.ID).String()
	}
	return v
}

func (h *Handlers) getFlags(c *fiber.Ctx) error {
	return c.JSON(h.view(h.o.Flags.Flags().Current().Clone()))
}

// putFlagsRequest: absent fields keep their current value; version is
// required so a change never silently overwrites someone else's.
type putFlagsRequest struct {
	Version       *int64                              `json:"version"`
	Phase         *featureflags.Phase                 `json:"phase"`
	Clients       *map[string]featureflags.ClientRule `json:"clients"`
	Rollout       *float64                            `json:"rollout"`
	RolloutSeed   *string                             `json:"rollout_seed"`
	ExemptClients *[]string                           `json:"exempt_clients"`
	Sunset        *string                             `json:"sunset"`
	DocsURL       *string                             `json:"docs_url"`
	Reason        string                              `json:"reason"`
	Force         bool                                `json:"force"`
}

func (h *Handlers) putFlags(c *fiber.Ctx) error {
	var req putFlagsRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Version == nil {
		return auth.Errorf(auth.CodeInvalidRequest, "field \"version\" is required (read it from GET /admin/flags)")
	}
	if len(req.Reason) > 500 {
		return auth.Errorf(auth.CodeInvalidRequest, "reason is longer than 500 characters")
	}
	// The reason is checked by the flag Manager with the actor; the seed is
	// stored and shown in the audit, and the Manager does not check it
	// (stored states must stay loadable), so it is checked here, on input.
	if req.RolloutSeed != nil {
		if err := checkText("rollout_seed", *req.RolloutSeed); err != nil {
			return err
		}
	}
	var sunset *time.Time
	if req.Sunset != nil && *req.Sunset != "" {
		t, err := time.Parse(time.RFC3339, *req.Sunset)
		if err != nil {
			return auth.Errorf(auth.CodeInvalidRequest, "sunset %q must be an RFC 3339 time like 2027-06-30T00:00:00Z", truncate(*req.Sunset, 64))
		}
		sunset = &t
	}
	// The patch is applied to the stored state at the version the operator
	// named, not to this instance's snapshot: the snapshot may lag behind a
	// change made on another instance, whose fields would then be reverted
	// without any version conflict.
	edit := func(next *featureflags.State) error {
		if req.Phase != nil {
			next.Phase = *req.Phase
		}
		if req.Clients != nil {
			next.Clients = *req.Clients
		}
		if req.Rollout != nil {
			next.Rollout = *req.Rollout
		}
		if req.RolloutSeed != nil {
			next.RolloutSeed = *req.RolloutSeed
		}
		if req.ExemptClients != nil {
			next.ExemptClients = *req.ExemptClients
		}
		if req.DocsURL != nil {
			next.DocsURL = *req.DocsURL
		}
		if req.Sunset != nil {
			next.Sunset = sunset
		}
		return nil
	}
	p := authn.Principal(c)
	st, err := h.o.Flags.Apply(c.UserContext(), featureflags.Change{
		Expect: *req.Version, Edit: edit, Actor: p.Email, Reason: req.Reason, Force: req.Force,
	})
	if err != nil {
		return h.flagsError(err)
	}
	h.log.Info("migration flags changed", "by", p.Email, "version", st.Version, "phase", st.Phase.String(), "forced", req.Force, "reason", req.Reason)
	if h.o.OnFlagsChanged != nil {
		h.o.OnFlagsChanged(st)
	}
	return c.JSON(h.view(st))
}

func (h *Handlers) rollback(c *fiber.Ctx) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if len(c.Body()) > 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	p := authn.Principal(c)
	st, err := h.o.Flags.Rollback(c.UserContext(), p.Email, req.Reason)
	if err != nil {
		return h.flagsError(err)
	}
	h.log.Warn("migration flags rolled back", "by", p.Email, "version", st.Version, "phase", st.Phase.String(), "reason", req.Reason)
	if h.o.OnFlagsChanged != nil {
		h.o.OnFlagsChanged(st)
	}
	return c.JSON(h.view(st))
}

func (h *Handlers) audit(c *fiber.Ctx) error {
	n := 50
	if s := c.Query("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 1000 {
			return auth.Errorf(auth.CodeInvalidRequest, "limit must be a whole number between 1 and 1000")
		}
		n = v
	}
	entries, err := h.o.Flags.Audit(c.UserContext(), n)
	if err != nil {
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the audit log cannot be read right now")
	}
	if entries == nil {
		entries = []featureflags.AuditEntry{}
	}
	return c.JSON(fiber.Map{"entries": entries})
}

func (h *Handlers) flagsError(err error) error {
	var ge *featureflags.GuardError
	switch {
	case errors.As(err, &ge):
		return &auth.Error{Code: auth.CodeGuardRefused, Err: err,
			Message: "refused by the usage guard: " + guardWhy(ge.Figures) + "; wait, or force with a reason",
			Extra:   map[string]any{"figures": ge.Figures}}
	case errors.Is(err, featureflags.ErrVersionConflict):
		// The stored version, from the back end's answer: this instance's
		// snapshot may not have caught up yet.
		current := h.o.Flags.Flags().Current().Version
		var vc *featureflags.VersionConflictError
		if errors.As(err, &vc) {
			current = vc.Current
		}
		return &auth.Error{Code: auth.CodeVersionConflict, Err: err,
			Message: "the flags changed since you read them; reload and retry",
			Extra:   map[string]any{"current_version": current}}
	case errors.Is(err, featureflags.ErrInvalidState), errors.Is(err, featureflags.ErrNoHistory):
		return auth.Wrap(err, auth.CodeInvalidRequest, err.Error())
	case errors.Is(err, featureflags.ErrGuardUnavailable), errors.Is(err, auth.ErrUnavailable):
		return auth.Wrap(err, auth.CodeStoreUnavailable, "the flag store or the usage figures are unavailable; nothing was changed")
	}
	return err
}

// guardWhy is the refusal's reasons in one line.
func guardWhy(f featureflags.GuardFigures) string {
	if len(f.Reasons) == 0 {
		return "the affected clients' session share is above the threshold"
	}
	return strings.Join(f.Reasons, "; ")
}

func decodeJSON(c *fiber.Ctx, dst any) error {
	if ct := string(c.Request().Header.ContentType()); len(ct) < 16 || ct[:16] != fiber.MIMEApplicationJSON {
		return auth.Errorf(auth.CodeUnsupportedMediaType, "send application/json")
	}
	// encoding/json would turn bytes that are not UTF-8 into U+FFFD and
	// store a text the operator did not write; JSON is UTF-8 (RFC 8259
	// §8.1), so such a body is refused instead.
	if !utf8.Valid(c.Body()) {
		return auth.Errorf(auth.CodeInvalidRequest, "the body is not valid UTF-8 (byte %d)", firstInvalidUTF8(c.Body()))
	}
	if err := json.Unmarshal(c.Body(), dst); err != nil {
		return auth.Errorf(auth.CodeInvalidRequest, "malformed JSON body: %s", truncate(err.Error(), 200))
	}
	return nil
}
