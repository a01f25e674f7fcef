package main

import "github.com/spf13/cobra"

func newUserUnsuspendCmd() *cobra.Command {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "unsuspend USER_ID",
		Short: "Lift a user's suspension (the user logs in again; nothing revoked comes back)",
		Long: `Calls DELETE /admin/users/{id}/suspend on a running tokenshift. Needs an admin
account (see "tokenshift user suspend --help").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.fetch(cmd, "DELETE", accountPath(args[0], "suspend"), nil, printAccount)
		},
	}
	o.register(cmd)
	return cmd
}
