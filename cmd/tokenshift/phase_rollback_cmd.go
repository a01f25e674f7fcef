package main

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

func newPhaseRollbackCmd(o *opsFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Restore the previous flags exactly (never guarded)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "POST", "/admin/flags/rollback", reasonBody{Reason: reason}, &raw); err != nil {
					return err
				}
				outln(cmd.OutOrStdout(), "rolled back:")
				return printFlags(cmd.OutOrStdout(), raw)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; written to the audit log")
	return cmd
}
