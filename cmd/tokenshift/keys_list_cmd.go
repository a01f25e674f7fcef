package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/token"
)

const keysListLong = `Fetches GET /admin/keys from a running tokenshift: every key with its state and
since/until times, each live instance (what its keys_dir holds, which key it signs
with), and problems such as an instance whose keys_dir lacks a key the rotation
needs. Problems go to stderr and make the command exit 1.

  TOKENSHIFT_ADMIN_PASSWORD=... tokenshift keys list --email ops@example.com`

func newKeysListCmd() *cobra.Command {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys with their state (signing, next, retiring, retired, available)",
		Long:  keysListLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "GET", "/admin/keys", nil, &raw); err != nil {
					return err
				}
				if o.jsonOut {
					return printJSON(cmd.OutOrStdout(), raw)
				}
				var v token.KeysView
				if err := decodeAnswer(raw, &v, "answer"); err != nil {
					return err
				}
				if err := printKeys(cmd.OutOrStdout(), cmd.ErrOrStderr(), v); err != nil {
					return err
				}
				if len(v.Problems) > 0 {
					return fmt.Errorf("%d key problem(s), see above", len(v.Problems))
				}
				return nil
			})
		},
	}
	o.register(cmd)
	return cmd
}
