package main

import (
	"encoding/json"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func newUserAccountCmd() *cobra.Command {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "account USER_ID",
		Short: "Show what tokenshift holds about a user: suspension, password changed here",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.fetch(cmd, "GET", accountPath(args[0], "account"), nil, printAccount)
		},
	}
	o.register(cmd)
	return cmd
}

func accountPath(userID, what string) string {
	return "/admin/users/" + url.PathEscape(userID) + "/" + what
}

// printAccount writes an account answer (auth.AccountInfo: user account,
// suspend and unsuspend all answer with it).
func printAccount(w io.Writer, raw json.RawMessage) error {
	var a auth.AccountInfo
	if err := decodeAnswer(raw, &a, "answer"); err != nil {
		return err
	}
	if a.Suspended {
		outf(w, "user %s: SUSPENDED since %s by %s: %s\n", a.UserID, wireTimeOr(a.SuspendedAt, ""), a.SuspendedBy, a.Reason)
	} else {
		outf(w, "user %s: active\n", a.UserID)
	}
	if a.PasswordChangedAt != nil {
		outf(w, "password changed through tokenshift at %s\n", wireTime(*a.PasswordChangedAt))
	}
	return nil
}
