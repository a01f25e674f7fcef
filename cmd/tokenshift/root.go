package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/tokenshift/tokenshift/internal/config"
)

type globalFlags struct {
	configFile string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "tokenshift",
		Short: "Move users from server-side sessions to JWTs without a flag day",
		Long: `tokenshift issues server-side sessions and JWT access/refresh tokens side by side,
accepts either on every request, counts who still uses which, and lets operators
retire sessions phase by phase (legacy → dual → prefer-jwt → retiring → jwt-only)
with instant rollback.

Run "tokenshift serve" to start the service on its embedded development defaults.
Every config key can be set in a YAML file (--config) or as an environment
variable TOKENSHIFT_<KEY> (storage.redis.url → TOKENSHIFT_STORAGE_REDIS_URL).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&g.configFile, "config", "c", "", "YAML config file merged over the embedded defaults (env: TOKENSHIFT_CONFIG)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(
		newServeCmd(g),
		newConfigCmd(g),
		newUserCmd(),
		newKeysCmd(g),
		newVersionCmd(),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(g))
	}
	return root
}

// extraCommands lets operator commands register themselves from their own files.
var extraCommands []func(*globalFlags) *cobra.Command

// loadConfig loads and validates the effective config; flags bound to v win
// over env, file and defaults.
func (g *globalFlags) loadConfig(v *viper.Viper) (*config.Config, error) {
	file := g.configFile
	if file == "" {
		file = envOr("TOKENSHIFT_CONFIG", "")
	}
	cfg, err := config.Load(file, v)
	if err != nil {
		return nil, usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := validateUsers(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
