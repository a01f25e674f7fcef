package main

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
)

const phaseSetLong = `Changes the migration flags through PUT /admin/flags, from the version just read:
if someone else changes them in between, the change is refused (version_conflict)
rather than overwriting theirs. PHASE may be left out when only flags change.

Examples:
  tokenshift phase set prefer-jwt --sunset 2027-06-30T00:00:00Z --reason "announce deprecation"
  tokenshift phase set jwt-only --client mobile --reason "app 5.0 is everywhere"
  tokenshift phase set inherit --client mobile          # drop the client's override
  tokenshift phase set retiring --rollout 5 --reason "first 5% of users"
  tokenshift phase set --rollout 20 --reason "second wave"
  tokenshift phase set --exempt-add kiosk --reason "kiosks cannot move before Q3"
  tokenshift phase set --exempt-remove kiosk --reason "kiosk firmware 2.1 shipped"
  tokenshift phase set --sunset none --reason "date withdrawn"
  tokenshift phase set jwt-only --client web --force --reason "remaining sessions are bots, OPS-42"`

// phaseSetArgs is what `phase set` was asked to change. A nil pointer is a
// flag left out: only what was given goes into the patch.
type phaseSetArgs struct {
	Phase  *string // the PHASE argument; "inherit" drops Client's override
	Client string
	Reason string
	Force  bool

	Rollout *float64
	// Sunset is an RFC 3339 date, or "none" to clear it.
	Sunset *string
	// Exempt: --exempt-add or --exempt-remove was given (even empty).
	Exempt       bool
	ExemptAdd    []string
	ExemptRemove []string
}

// flagsPatch is the body of PUT /admin/flags: an absent (nil) field keeps
// the stored value. Phases travel as the names the operator typed, so the
// server judges them, as it judges every other field.
type flagsPatch struct {
	Version       int64                   `json:"version"`
	Reason        string                  `json:"reason"`
	Force         bool                    `json:"force"`
	Phase         *string                 `json:"phase,omitempty"`
	Clients       *map[string]clientPhase `json:"clients,omitempty"`
	Rollout       *float64                `json:"rollout,omitempty"`
	ExemptClients *[]string               `json:"exempt_clients,omitempty"`
	Sunset        *string                 `json:"sunset,omitempty"`
}

// clientPhase is one client's override in a flagsPatch.
type clientPhase struct {
	Phase string `json:"phase"`
}

// check refuses, before anything is sent, a command that changes nothing.
func (a phaseSetArgs) check() error {
	if a.Phase == nil && a.Rollout == nil && !a.Exempt && a.Sunset == nil {
		return usageError{errors.New("nothing to change: give a PHASE, --rollout, --exempt-add, --exempt-remove or --sunset")}
	}
	if a.Phase == nil && a.Client != "" {
		return usageError{errors.New("--client needs a PHASE (or inherit)")}
	}
	return nil
}

// phasePatch is the change a asks for, made from current (the flags just
// read): their version, so a change in between is refused, and the whole
// override map and exempt list, edited, because the API replaces them.
func phasePatch(current featureflags.State, a phaseSetArgs) (flagsPatch, error) {
	p := flagsPatch{Version: current.Version, Reason: a.Reason, Force: a.Force, Rollout: a.Rollout}
	switch {
	case a.Phase == nil:
	case a.Client != "":
		clients := make(map[string]clientPhase, len(current.Clients)+1)
		for id, r := range current.Clients {
			clients[id] = clientPhase{Phase: r.Phase.String()}
		}
		if *a.Phase == "inherit" {
			delete(clients, a.Client)
		} else {
			clients[a.Client] = clientPhase{Phase: *a.Phase}
		}
		p.Clients = &clients
	case *a.Phase == "inherit":
		return flagsPatch{}, usageError{errors.New("inherit needs --client")}
	default:
		p.Phase = a.Phase
	}
	if a.Exempt {
		exempt := slices.DeleteFunc(slices.Clone(current.ExemptClients), func(id string) bool { return slices.Contains(a.ExemptRemove, id) })
		for _, id := range a.ExemptAdd {
			if !slices.Contains(exempt, id) {
				exempt = append(exempt, id)
			}
		}
		if exempt == nil {
			exempt = []string{}
		}
		p.ExemptClients = &exempt
	}
	if a.Sunset != nil {
		sunset := *a.Sunset
		if sunset == "none" {
			sunset = ""
		}
		p.Sunset = &sunset
	}
	return p, nil
}

func newPhaseSetCmd(o *opsFlags) *cobra.Command {
	var a phaseSetArgs
	var rollout float64
	var sunset string
	cmd := &cobra.Command{
		Use:   "set [PHASE]",
		Short: "Set the global phase, one client's with --client, the rollout, exemptions or the sunset",
		Long:  phaseSetLong,
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := cmd.Flags().Changed
			if len(args) == 1 {
				a.Phase = &args[0]
			}
			if changed("rollout") {
				a.Rollout = &rollout
			}
			if changed("sunset") {
				a.Sunset = &sunset
			}
			a.Exempt = changed("exempt-add") || changed("exempt-remove")
			if err := a.check(); err != nil {
				return err
			}
			return o.withClient(cmd, func(c *opsClient) error { return setPhase(cmd, c, a) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&a.Client, "client", "", "change only this client's phase (an override; PHASE inherit drops it)")
	f.Float64Var(&rollout, "rollout", 0, "percent of users (0-100) whose sessions retiring refuses")
	f.StringSliceVar(&a.ExemptAdd, "exempt-add", nil, "clients whose sessions retiring keeps (comma-separated)")
	f.StringSliceVar(&a.ExemptRemove, "exempt-remove", nil, "clients to take off the exempt list (comma-separated)")
	f.StringVar(&sunset, "sunset", "", "RFC 3339 date announced in the Sunset header, or none to clear it")
	f.StringVar(&a.Reason, "reason", "", "why; written to the audit log (required with --force)")
	f.BoolVar(&a.Force, "force", false, "override the usage guard (needs --reason)")
	return cmd
}

// setPhase reads the flags, sends the patch made from them, and prints the
// new flags, or the guard's figures when it refuses.
func setPhase(cmd *cobra.Command, c *opsClient, a phaseSetArgs) error {
	var cur admin.FlagsView
	if err := c.call(cmd.Context(), "GET", "/admin/flags", nil, &cur); err != nil {
		return err
	}
	patch, err := phasePatch(cur.State, a)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	err = c.call(cmd.Context(), "PUT", "/admin/flags", patch, &raw)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == auth.CodeGuardRefused {
		return guardMessage(cmd.ErrOrStderr(), ae)
	}
	if err != nil {
		return err
	}
	outln(cmd.OutOrStdout(), "changed:")
	return printFlags(cmd.OutOrStdout(), raw)
}

// guardMessage explains a guard refusal with its figures and returns the
// error the command exits with.
func guardMessage(w io.Writer, ae *apiError) error {
	outln(w, "REFUSED by the usage guard: sessions are still in use by the clients this change affects.")
	if fig := ae.Figures; fig != nil {
		outf(w, "  window:           %s\n", prettyWindow(fig.Window))
		clients := fig.Clients
		if len(clients) == 0 {
			clients = []string{"all"}
		}
		outf(w, "  clients:          %s\n", strings.Join(clients, ", "))
		outf(w, "  session requests: %d of %d\n", fig.SessionRequests, fig.TotalRequests)
		outf(w, "  session share:    %.2f%% (allowed: %.2f%%)\n", fig.SessionShare*100, fig.MaxShare*100)
		if fig.Covered != "" {
			outf(w, "  data covers:      %s of %s\n", fig.Covered, prettyWindow(fig.Window))
		}
		for _, r := range fig.Reasons {
			outf(w, "  - %s\n", r)
		}
	}
	outln(w, "Wait until the figures allow it (tokenshift usage), or repeat with --force --reason \"...\".")
	return &apiError{Status: ae.Status, Code: ae.Code, Detail: "change refused by the usage guard"}
}
