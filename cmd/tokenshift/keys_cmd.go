package main

import "github.com/spf13/cobra"

// newKeysCmd is the keys group; root.go adds its subcommands.
func newKeysCmd() *cobra.Command {
	return &cobra.Command{
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
}
