package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// accountCommands are the `user` subcommands that go through the admin API
// of a running tokenshift: suspend, unsuspend, account.
func accountCommands() []*cobra.Command {
	var reason string
	so := &opsFlags{}
	suspend := &cobra.Command{
		Use:   "suspend USER_ID --reason TEXT",
		Short: "Suspend a user: revoke every session and token now, refuse later logins",
		Long: `Calls POST /admin/users/{id}/suspend on a running tokenshift. Every session and
token of the user dies on every instance, and later logins with the right
password answer 403 account_suspended until "tokenshift user unsuspend". The
reason and the operator are recorded and logged. Needs an admin account:

  TOKENSHIFT_ADMIN_PASSWORD=ops-dev-password tokenshift user suspend u-alice \
      --reason "chargeback fraud, ticket 4711" --email ops@example.com`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{errors.New("--reason is required: it is what the next operator reads")}
			}
			return so.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "POST", accountPath(args[0], "suspend"), map[string]string{"reason": reason}, &raw); err != nil {
					return err
				}
				return printAccount(cmd.OutOrStdout(), raw, so.jsonOut)
			})
		},
	}
	so.register(suspend)
	suspend.Flags().StringVar(&reason, "reason", "", "why (required; recorded with your name)")

	uo := &opsFlags{}
	unsuspend := &cobra.Command{
		Use:   "unsuspend USER_ID",
		Short: "Lift a user's suspension (the user logs in again; nothing revoked comes back)",
		Long: `Calls DELETE /admin/users/{id}/suspend on a running tokenshift. Needs an admin
account (see "tokenshift user suspend --help").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return uo.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "DELETE", accountPath(args[0], "suspend"), nil, &raw); err != nil {
					return err
				}
				return printAccount(cmd.OutOrStdout(), raw, uo.jsonOut)
			})
		},
	}
	uo.register(unsuspend)

	ao := &opsFlags{}
	account := &cobra.Command{
		Use:   "account USER_ID",
		Short: "Show what tokenshift holds about a user: suspension, password changed here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return ao.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "GET", accountPath(args[0], "account"), nil, &raw); err != nil {
					return err
				}
				return printAccount(cmd.OutOrStdout(), raw, ao.jsonOut)
			})
		},
	}
	ao.register(account)
	return []*cobra.Command{suspend, unsuspend, account}
}

func accountPath(userID, what string) string {
	return "/admin/users/" + url.PathEscape(userID) + "/" + what
}

func printAccount(w io.Writer, raw json.RawMessage, asJSON bool) error {
	if asJSON {
		return printJSON(w, raw)
	}
	var a struct {
		UserID            string `json:"user_id"`
		Suspended         bool   `json:"suspended"`
		SuspendedAt       string `json:"suspended_at"`
		SuspendedBy       string `json:"suspended_by"`
		Reason            string `json:"reason"`
		PasswordChangedAt string `json:"password_changed_at"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("unexpected answer: %w", err)
	}
	if a.Suspended {
		outf(w, "user %s: SUSPENDED since %s by %s: %s\n", a.UserID, a.SuspendedAt, a.SuspendedBy, a.Reason)
	} else {
		outf(w, "user %s: active\n", a.UserID)
	}
	if a.PasswordChangedAt != "" {
		outf(w, "password changed through tokenshift at %s\n", a.PasswordChangedAt)
	}
	return nil
}
