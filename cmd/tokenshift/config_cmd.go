package main

import "github.com/spf13/cobra"

// newConfigCmd is the config group; root.go adds its subcommands.
func newConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
}
