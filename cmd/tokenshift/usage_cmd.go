package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/usage"
)

const usageLong = `Fetches GET /admin/usage from a running tokenshift and prints it as tables (or
JSON with --json): requests and share per scheme, distinct users (HyperLogLog
estimates, across all clients only: "n/a" with --client), per-client counts and
last session use, the legacy sessions' sources (legacy.sources: requests,
users, last seen), rejections by reason, and the readiness verdict with its
figures, globally and per client. Needs an admin account:

  TOKENSHIFT_ADMIN_PASSWORD=ops-dev-password tokenshift usage --email ops@example.com --window 24h

With --email it logs in and logs out again when done (every operator command
does), so repeated runs leave no sessions behind; a --token is used as given.`

func newUsageCmd() *cobra.Command {
	o := &opsFlags{}
	var window, client string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show who still uses sessions: requests per scheme and client, and the readiness verdict",
		Long:  usageLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"window": {window}}
			if client != "" {
				q.Set("client", client)
			}
			return o.fetch(cmd, "GET", "/admin/usage?"+q.Encode(), nil, printUsage)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&window, "window", "24h", "report window: 90m, 24h, 7d ...")
	cmd.Flags().StringVar(&client, "client", "", "only this client id")
	return cmd
}

var reportSchemes = []string{"session", "bearer", "jwt_cookie"}

// printUsage writes GET /admin/usage, a usage.Report, as tables.
func printUsage(w io.Writer, raw json.RawMessage) error {
	var r usage.Report
	if err := decodeAnswer(raw, &r, "usage report"); err != nil {
		return err
	}
	scope := "all clients"
	if r.ClientID != "" {
		scope = "client " + r.ClientID
	}
	outf(w, "Usage over %s, %s (%s to %s)\n", r.Window, scope, wireTime(r.From), wireTime(r.To))
	outf(w, "Accepted %d, rejected %d; distinct users %s\n", r.Requests, r.Rejected, usersText(r.Users, r.UsersError))
	if r.DataSince != nil {
		outf(w, "Data since %s\n", wireTime(*r.DataSince))
	}
	if r.DataLostAt != nil {
		outf(w, "Redis lost usage data it had acknowledged (noticed at %s)\n", wireTime(*r.DataLostAt))
	}
	outln(w)
	printSchemes(w, r.Schemes)
	outln(w)
	printClients(w, r.Clients)
	if len(r.Sources) > 0 {
		outln(w)
		printSources(w, r.Sources)
	}

	outf(w, "\nOutcomes: accepted=%d\n", r.Outcomes["accepted"])
	outf(w, "Rejected by reason: %s\n", rejectedByReason(r.Outcomes))

	outf(w, "\nReadiness (%s): %s\n", scope, verdictText(r.Readiness.Ready))
	printReadiness(w, "  ", r.Readiness)
	if r.ClientID == "" {
		for _, c := range r.Clients {
			if c.Readiness == nil {
				continue
			}
			outf(w, "\nReadiness of %s: %s\n", c.ClientID, verdictText(c.Readiness.Ready))
			printReadiness(w, "  ", *c.Readiness)
		}
	}
	return nil
}

func printSchemes(w io.Writer, schemes map[string]usage.SchemeUsage) {
	tw := newTable(w, "SCHEME", "REQUESTS", "SHARE", "USERS (≈)", "REJECTED")
	for _, s := range reportSchemes {
		v := schemes[s]
		tw.row(s, v.Requests, pct(v.Share), intOrNA(v.Users), v.Rejected)
	}
	tw.flush()
}

func printClients(w io.Writer, clients []usage.ClientUsage) {
	tw := newTable(w, "CLIENT", "SESSION", "BEARER", "JWT_COOKIE", "REJECTED", "SESSION SHARE", "LAST SESSION USE", "READY")
	for _, c := range clients {
		ready := "-" // other, unknown: no phase to set, no verdict
		if c.Readiness != nil {
			ready = yesNo(c.Readiness.Ready)
		}
		tw.row(c.ClientID, c.Schemes["session"].Requests, c.Schemes["bearer"].Requests,
			c.Schemes["jwt_cookie"].Requests, c.Rejected, pct(c.Schemes["session"].Share),
			wireTimeOr(c.Schemes["session"].LastSeen, "-"), ready)
	}
	tw.flush()
}

// printSources lists the legacy sessions' sources (legacy.sources) by name:
// the server lists every configured one, idle ones with zeros, so the
// operator sees which legacy app still has users and when it was last used.
func printSources(w io.Writer, sources map[string]usage.SourceUsage) {
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	sort.Strings(names)
	tw := newTable(w, "LEGACY SOURCE", "REQUESTS", "USERS (≈)", "REJECTED", "LAST SEEN")
	for _, name := range names {
		s := sources[name]
		tw.row(name, s.Requests, intOrNA(s.Users), s.Rejected, wireTimeOr(s.LastSeen, "never"))
	}
	tw.flush()
}

// printReadiness shows each thing once: the figures that pass, then what
// blocks the verdict in the server's words (its reasons), then its notes. A
// figure that blocks is left to its reason, which states it with the numbers
// (and the clients table above already shows who still uses sessions).
func printReadiness(w io.Writer, indent string, v usage.Readiness) {
	// The server's own test for its share reason (usage.Recorder.verdict).
	if shareBlocks := float64(v.SessionRequests) > v.Threshold*float64(v.TotalRequests); !shareBlocks {
		outf(w, "%ssession share %s (%d of %d accepted requests), threshold %s\n",
			indent, pct(v.SessionShare), v.SessionRequests, v.TotalRequests, pct(v.Threshold))
	}
	if v.WindowCoversSessionLifetime {
		outf(w, "%swindow %s covers the longest session lifetime (%s)\n", indent, v.Window, v.SessionLifetime)
	}
	for _, reason := range v.Reasons {
		outf(w, "%s- %s\n", indent, reason)
	}
	for _, note := range v.Notes {
		outf(w, "%snote: %s\n", indent, note)
	}
}

// rejectedByReason lists every rejection outcome in the server's order, then
// any this CLI does not know (a newer server), sorted.
func rejectedByReason(outcomes map[string]int64) string {
	var parts []string
	seen := map[string]bool{"accepted": true}
	for o := range auth.NumOutcomes {
		name := o.String()
		if seen[name] {
			continue
		}
		seen[name] = true
		parts = append(parts, fmt.Sprintf("%s=%d", name, outcomes[name]))
	}
	var extra []string
	for name := range outcomes {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		parts = append(parts, fmt.Sprintf("%s=%d", name, outcomes[name]))
	}
	return strings.Join(parts, " ")
}

func usersText(users *int64, stdErr float64) string {
	if users == nil {
		return "n/a (counted across all clients only)"
	}
	return fmt.Sprintf("≈ %d (HyperLogLog, standard error %s)", *users, pct(stdErr))
}

func intOrNA(n *int64) string {
	if n == nil {
		return "n/a"
	}
	return strconv.FormatInt(*n, 10)
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func verdictText(ready bool) string {
	if ready {
		return "READY to retire sessions"
	}
	return "NOT READY to retire sessions"
}
