package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/token"
)

func newKeysCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Signing keys: generate key files, list and rotate keys without downtime",
		Long: `Signing keys live in jwt.keys_dir (one PKCS#8 PEM file per key, <kid>.pem), the
same files on every instance. Which key signs is decided by the key rotation
state shared through the store:

  tokenshift keys generate --dir /etc/tokenshift/keys         # write a key file
  tokenshift keys rotate --dir /etc/tokenshift/keys --generate --reason "yearly"
  tokenshift keys list                                         # states and problems

generate works on files only; rotate and list talk to the admin API of a running
tokenshift (see "tokenshift keys rotate --help").`,
	}
	var dir, kid, alg string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write a new private signing key (PKCS#8 PEM) into the keys directory",
		Long: `Writes <dir>/<kid>.pem with mode 0600. The file name (without .pem) is the key id
(kid) and the key type gives the algorithm. A new file does not sign by itself:
once tokenshift runs, only "tokenshift keys rotate" makes a key sign (on the
very first start, jwt.signing_kid or else the last kid in sort order signs).

  tokenshift keys generate --dir /etc/tokenshift/keys --alg EdDSA`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{errors.New("--dir is required")}
			}
			_, err := generateKey(cmd, dir, kid, alg)
			return err
		},
	}
	gen.Flags().StringVar(&dir, "dir", "", "directory of signing keys (jwt.keys_dir)")
	gen.Flags().StringVar(&kid, "kid", "", "key id; default: the current UTC time, so newer keys sort last")
	gen.Flags().StringVar(&alg, "alg", "EdDSA", "EdDSA, ES256, RS256 or HS256")
	cmd.AddCommand(gen, newKeysRotateCmd(), newKeysListCmd())
	return cmd
}

// generateKey writes a key file (kid "" = the current UTC time, so newer
// keys sort last) and reports it; it returns the kid.
func generateKey(cmd *cobra.Command, dir, kid, alg string) (string, error) {
	if kid == "" {
		kid = time.Now().UTC().Format("20060102T150405Z")
	}
	path, err := token.GenerateKeyFile(dir, kid, alg)
	if err != nil {
		return "", err
	}
	outf(cmd.OutOrStdout(), "wrote %s (kid %s, %s)\n", path, kid, alg)
	return kid, nil
}
