package main

import (
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/token"
)

func newKeysGenerateCmd() *cobra.Command {
	var dir, kid, alg string
	cmd := &cobra.Command{
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
	cmd.Flags().StringVar(&dir, "dir", "", "directory of signing keys (jwt.keys_dir)")
	cmd.Flags().StringVar(&kid, "kid", "", "key id; default: the current UTC time, so newer keys sort last")
	cmd.Flags().StringVar(&alg, "alg", "EdDSA", "EdDSA, ES256, RS256 or HS256")
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
