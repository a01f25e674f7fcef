package main

import (
	"errors"
	"net/url"

	"github.com/spf13/cobra"
)

func newSessionsRevokeCmd(o *opsFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "revoke USER_ID [SID]",
		Short: "Revoke one login (SID) or, with --all, every login of the user, on every instance",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 2) == all {
				return usageError{errors.New("give either a SID or --all")}
			}
			return o.withClient(cmd, func(c *opsClient) error {
				path := "/admin/users/" + url.PathEscape(args[0]) + "/sessions"
				if !all {
					path += "/" + url.PathEscape(args[1])
				}
				if err := c.call(cmd.Context(), "DELETE", path, nil, nil); err != nil {
					return err
				}
				outln(cmd.OutOrStdout(), "revoked")
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "revoke every login of the user")
	return cmd
}
