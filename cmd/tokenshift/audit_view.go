package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
)

// printAudit writes the audit log as a table whose CHANGE column lists every
// setting that differs between from and to (global phase, each client's
// override, rollout, seed, exemptions, sunset, docs link), so a client
// override does not read as "prefer-jwt → prefer-jwt".
func printAudit(w io.Writer, raw json.RawMessage) error {
	// GET /admin/audit wraps the flags' own audit entries.
	var a struct {
		Entries []featureflags.AuditEntry `json:"entries"`
	}
	if err := decodeAnswer(raw, &a, "audit answer"); err != nil {
		return err
	}
	tw := newTable(w, "WHEN", "WHO", "ACTION", "VERSION", "FORCED", "CHANGE", "GUARD", "REASON")
	for _, e := range a.Entries {
		guard := "-"
		if f := e.Figures; f != nil {
			guard = fmt.Sprintf("session share %.2f%% (%d of %d) over %s, max %.2f%%",
				f.SessionShare*100, f.SessionRequests, f.TotalRequests, prettyWindow(f.Window), f.MaxShare*100)
		}
		forced := "no"
		if e.Forced {
			forced = "FORCED"
		}
		reason := e.Reason
		if reason == "" {
			reason = "-"
		}
		var from *featureflags.State
		if e.From.Phase != 0 { // "from": null, the first state
			from = &e.From
		}
		tw.row(wireTime(e.At), e.Actor, e.Action, e.To.Version, forced, strings.Join(flagsChanges(from, &e.To), "; "), guard, reason)
	}
	return tw.flush()
}

// flagsChanges lists "what: before → after" for every setting that differs.
// from is nil for the first state, which is described in full.
func flagsChanges(from, to *featureflags.State) []string {
	if from == nil {
		out := []string{"phase " + to.Phase.String()}
		for _, id := range sortedIDs(to.Clients) {
			out = append(out, id+" "+to.Clients[id].Phase.String())
		}
		if to.Rollout != 0 {
			out = append(out, "rollout "+percent(to.Rollout))
		}
		if len(to.ExemptClients) > 0 {
			out = append(out, "exempt "+strings.Join(to.ExemptClients, ","))
		}
		if to.Sunset != nil {
			out = append(out, "sunset "+wireTime(*to.Sunset))
		}
		return out
	}
	var out []string
	change := func(what, a, b string) {
		if a != b {
			out = append(out, what+": "+a+" → "+b)
		}
	}
	change("phase", from.Phase.String(), to.Phase.String())
	ids := append(sortedIDs(from.Clients), sortedIDs(to.Clients)...)
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		change(id, overrideOf(from, id), overrideOf(to, id))
	}
	change("rollout", percent(from.Rollout), percent(to.Rollout))
	change("rollout seed", quoteOrNone(from.RolloutSeed), quoteOrNone(to.RolloutSeed))
	change("exempt", listOrNone(from.ExemptClients), listOrNone(to.ExemptClients))
	change("sunset", timeOrNone(from.Sunset), timeOrNone(to.Sunset))
	change("docs url", quoteOrNone(from.DocsURL), quoteOrNone(to.DocsURL))
	if len(out) == 0 {
		out = []string{"no setting changed"}
	}
	return out
}

// overrideOf names a client's own phase, or "(global)" when it follows the
// global phase.
func overrideOf(s *featureflags.State, id string) string {
	if r, ok := s.Clients[id]; ok && r.Phase.Valid() {
		return r.Phase.String()
	}
	return "(global)"
}

func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func percent(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return strconv.Quote(s)
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	l = slices.Clone(l)
	slices.Sort(l)
	return strings.Join(l, ",")
}

func timeOrNone(t *time.Time) string { return wireTimeOr(t, "none") }

// prettyWindow writes a Go duration the way operators write it: "24h", not
// "24h0m0s" (older servers sent the latter).
func prettyWindow(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return s
}
