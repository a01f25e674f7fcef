package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/tokenshift/tokenshift/internal/config"
)

type globalFlags struct {
	configFile string
}

// newRootCmd builds the whole command tree, here and nowhere else: every
// command and subcommand the binary has is listed below (no command adds
// itself from its own file), one constructor per file named after it.
func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := newTopCmd(g)

	configCmd := newConfigCmd()
	configCmd.AddCommand(newConfigValidateCmd(g))

	user := newUserCmd()
	user.AddCommand(newUserHashPasswordCmd(), newUserSuspendCmd(), newUserUnsuspendCmd(), newUserAccountCmd())

	keys := newKeysCmd()
	keys.AddCommand(newKeysGenerateCmd(), newKeysRotateCmd(), newKeysListCmd())

	phase, phaseOps := newPhaseCmd()
	phase.AddCommand(newPhaseShowCmd(phaseOps), newPhaseSetCmd(phaseOps), newPhaseRollbackCmd(phaseOps))

	sessions, sessionsOps := newSessionsCmd()
	sessions.AddCommand(newSessionsListCmd(sessionsOps), newSessionsRevokeCmd(sessionsOps))

	root.AddCommand(
		newServeCmd(g),
		configCmd,
		user,
		keys,
		newUsageCmd(),
		phase,
		newAuditCmd(),
		sessions,
		newVersionCmd(),
	)
	return root
}

// newTopCmd is the tokenshift command itself, with the global flags.
func newTopCmd(g *globalFlags) *cobra.Command {
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
	return root
}

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
