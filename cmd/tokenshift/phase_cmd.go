package main

import (
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/admin"
)

// newPhaseCmd is the phase group; its subcommands (root.go adds them) share
// its operator flags, which may stand before or after the subcommand.
func newPhaseCmd() (*cobra.Command, *opsFlags) {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "phase",
		Short: "Show, change or roll back the migration phase",
		Long: `Phases: legacy → dual → prefer-jwt → retiring → jwt-only. Changes go through the
admin API of a running tokenshift, are compare-and-set on the flags version, are
audited, and moving a client into retiring or jwt-only is guarded by its session
share (override with --force and a --reason).`,
	}
	o.register(cmd)
	return cmd, o
}

// printFlags writes the flags answer (admin.FlagsView): the global settings,
// then each registered client's effective phase and where it comes from.
func printFlags(w io.Writer, raw json.RawMessage) error {
	var f admin.FlagsView
	if err := decodeAnswer(raw, &f, "flags answer"); err != nil {
		return err
	}
	outf(w, "version %d, global phase %s, rollout %s%%, updated %s by %s\n",
		f.Version, f.Phase.String(), strconv.FormatFloat(f.Rollout, 'f', -1, 64), wireTime(f.UpdatedAt), f.UpdatedBy)
	if f.Sunset != nil {
		outf(w, "sunset %s\n", wireTime(*f.Sunset))
	}
	if len(f.ExemptClients) > 0 {
		outf(w, "exempt clients: %s\n", strings.Join(f.ExemptClients, ", "))
	}
	ids := make([]string, 0, len(f.Effective))
	for id := range f.Effective {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw := newTable(w, "CLIENT", "EFFECTIVE PHASE", "SOURCE")
	for _, id := range ids {
		src := "global"
		if _, ok := f.Clients[id]; ok {
			src = "override"
		}
		tw.row(id, f.Effective[id], src)
	}
	return tw.flush()
}
