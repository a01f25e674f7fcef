package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/token"
)

func newKeysCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Signing key management",
	}
	var dir, kid, alg string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a new private signing key (PKCS#8 PEM) into the keys directory",
		Long: `Writes <dir>/<kid>.pem with mode 0600. The file name (without .pem) is the key id
(kid) and the key type gives the algorithm. The last kid in sort order signs unless
jwt.signing_kid says otherwise, so date-based kids rotate naturally.

  tokenshift keys generate --dir /etc/tokenshift/keys --alg EdDSA`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{errors.New("--dir is required")}
			}
			if kid == "" {
				kid = time.Now().UTC().Format("20060102T150405Z")
			}
			path, err := token.GenerateKeyFile(dir, kid, alg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (kid %s, %s)\n", path, kid, alg)
			return nil
		},
	}
	gen.Flags().StringVar(&dir, "dir", "", "directory of signing keys (jwt.keys_dir)")
	gen.Flags().StringVar(&kid, "kid", "", "key id; default: the current UTC time, so newer keys sort last")
	gen.Flags().StringVar(&alg, "alg", "EdDSA", "EdDSA, ES256, RS256 or HS256")
	cmd.AddCommand(gen)
	return cmd
}
