package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
)

const userSuspendLong = `Calls POST /admin/users/{id}/suspend on a running tokenshift. Every session and
token of the user dies on every instance, and later logins with the right
password answer 403 account_suspended until "tokenshift user unsuspend". The
reason and the operator are recorded and logged. Needs an admin account:

  TOKENSHIFT_ADMIN_PASSWORD=ops-dev-password tokenshift user suspend u-alice \
      --reason "chargeback fraud, ticket 4711" --email ops@example.com`

func newUserSuspendCmd() *cobra.Command {
	o := &opsFlags{}
	var reason string
	cmd := &cobra.Command{
		Use:   "suspend USER_ID --reason TEXT",
		Short: "Suspend a user: revoke every session and token now, refuse later logins",
		Long:  userSuspendLong,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{errors.New("--reason is required: it is what the next operator reads")}
			}
			return o.fetch(cmd, "POST", accountPath(args[0], "suspend"), reasonBody{Reason: reason}, printAccount)
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded with your name)")
	return cmd
}
