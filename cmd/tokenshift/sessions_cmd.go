package main

import "github.com/spf13/cobra"

// newSessionsCmd is the sessions group; its subcommands (root.go adds them)
// share its operator flags.
func newSessionsCmd() (*cobra.Command, *opsFlags) {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "List or revoke a user's logins (sessions and token families)",
	}
	o.register(cmd)
	return cmd, o
}
