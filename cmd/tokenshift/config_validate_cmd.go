package main

import (
	"io"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/termsafe"
)

func newConfigValidateCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Validate the effective config and print it with secrets masked",
		Long: `Loads the embedded defaults, the --config file and TOKENSHIFT_* variables exactly as
"serve" does, validates them, and prints the effective configuration as YAML with
passwords masked. Exits 2 and lists every bad key when the config is invalid.

It also reads the files serve reads at start: every key in jwt.keys_dir (parsed,
jwt.signing_kid among them, the jwt.rotation settings accepted, as on a first
start) and users.file (parsed). It opens no network connection: Redis is not
contacted (so the shared key rotation state, which decides on later starts, is
not read) and a SQL user store (users.sql) is checked by its driver, DSN syntax
and query only, never connected to. A config that passes can still fail at
start when those services refuse it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(nil)
			if err != nil {
				return err
			}
			if err := validateFiles(cmd.Context(), cfg); err != nil {
				return err
			}
			out, err := yaml.Marshal(config.Redacted(cfg))
			if err != nil {
				return err
			}
			// Values come from files and the environment: lines kept,
			// anything else a terminal would act on escaped.
			io.WriteString(cmd.OutOrStdout(), "# effective configuration (valid)\n"+termsafe.EscapeLines(string(out)))
			return nil
		},
	}
}
