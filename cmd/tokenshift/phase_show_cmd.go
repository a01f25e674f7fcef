package main

import "github.com/spf13/cobra"

func newPhaseShowCmd(o *opsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the current flags and each client's effective phase",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.fetch(cmd, "GET", "/admin/flags", nil, printFlags)
		},
	}
}
