package main

import "github.com/spf13/cobra"

// newUserCmd is the user group; root.go adds its subcommands.
func newUserCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "user",
		Short: "User helpers: hash a password for a users file; suspend, unsuspend, show an account",
	}
}
