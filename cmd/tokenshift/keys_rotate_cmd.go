package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newKeysRotateCmd() *cobra.Command {
	o := &opsFlags{}
	var dir, kid, alg, reason string
	var generate, force bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the signing key on every instance without downtime",
		Long: `Starts a key rotation through POST /admin/keys/rotate of a running tokenshift:

  1. the new key is published in the JWKS at once (every instance, via the store);
  2. it signs from jwt.rotation.publish_delay + reload_interval later, so services
     that cache the JWKS already have it;
  3. the old key stops signing then, stays published and accepted until the
     longest token it signed has expired (jwt.rotation.retire_after), and is then
     retired: gone from the JWKS and refused. Its file may be deleted after that.

The key must already be in jwt.keys_dir on every instance (a shared volume or
secret). --generate writes a new key into --dir first (the server's keys_dir),
with the current signing key's algorithm unless --alg says otherwise. Without
--kid the newest key in keys_dir that is not signing is used.

A second rotation while one is in progress (a key still next or retiring) is
refused unless --force (with --reason): a pending next key is then dropped.
Every rotation is audited with who and why. Needs an admin account:

  TOKENSHIFT_ADMIN_PASSWORD=... tokenshift keys rotate --email ops@example.com \
      --dir /etc/tokenshift/keys --generate --reason "yearly rotation"
  tokenshift keys rotate --kid 20270101T000000Z --reason "planned"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case generate && dir == "":
				return usageError{errors.New("--generate needs --dir (the server's jwt.keys_dir)")}
			case !generate && dir != "":
				return usageError{errors.New("--dir is only used with --generate")}
			case !generate && cmd.Flags().Changed("alg"):
				return usageError{errors.New("--alg is only used with --generate")}
			case force && reason == "":
				return usageError{errors.New("--force needs a --reason")}
			}
			ctx := cmd.Context()
			return o.withClient(cmd, func(c *opsClient) error {
				var err error
				if generate {
					if alg == "" {
						// The same algorithm as the signing key is what the server
						// allows by default (jwt.rotation.algorithms).
						var cur keysAnswer
						if err := c.call(ctx, "GET", "/admin/keys", nil, &cur); err != nil {
							return err
						}
						alg = cur.signingAlg()
					}
					if kid, err = generateKey(cmd, dir, kid, alg); err != nil {
						return err
					}
				}
				var raw json.RawMessage
				err = c.call(ctx, "POST", "/admin/keys/rotate", map[string]any{"kid": kid, "reason": reason, "force": force}, &raw)
				var ae *apiError
				if errors.As(err, &ae) && ae.Code == "unknown_key" && generate {
					return fmt.Errorf("%w\nthe server does not see the new key: is --dir %s its jwt.keys_dir?", err, dir)
				}
				if err != nil {
					return err
				}
				if o.jsonOut {
					return printJSON(cmd.OutOrStdout(), raw)
				}
				var a keysAnswer
				if err := json.Unmarshal(raw, &a); err != nil {
					return fmt.Errorf("unexpected answer: %w", err)
				}
				if r := a.Rotation; r != nil {
					outf(cmd.OutOrStdout(), "rotation started (version %d): %s is published now and signs from %s;\n%s stops signing then and is retired at %s.\n",
						r.Version, r.KID, stamp(r.SignsAt), r.From, stamp(r.RetireAt))
					if r.Cancelled != "" {
						outf(cmd.OutOrStdout(), "the pending key %s was dropped.\n", r.Cancelled)
					}
					outln(cmd.OutOrStdout())
				}
				return a.print(cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&dir, "dir", "", "the server's jwt.keys_dir, where --generate writes the new key")
	cmd.Flags().BoolVar(&generate, "generate", false, "write a new key into --dir first")
	cmd.Flags().StringVar(&alg, "alg", "", "algorithm of the generated key: EdDSA, ES256, RS256 or HS256 (default: the signing key's)")
	cmd.Flags().StringVar(&kid, "kid", "", "key to rotate to (with --generate: its kid, default the current UTC time); default: the newest key in keys_dir that is not signing")
	cmd.Flags().StringVar(&reason, "reason", "", "why; written to the audit (required with --force)")
	cmd.Flags().BoolVar(&force, "force", false, "rotate although a rotation is in progress")
	return cmd
}

func newKeysListCmd() *cobra.Command {
	o := &opsFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys with their state (signing, next, retiring, retired, available)",
		Long: `Fetches GET /admin/keys from a running tokenshift: every key with its state and
since/until times, each live instance (what its keys_dir holds, which key it signs
with), and problems such as an instance whose keys_dir lacks a key the rotation
needs. Problems go to stderr and make the command exit 1.

  TOKENSHIFT_ADMIN_PASSWORD=... tokenshift keys list --email ops@example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd, func(c *opsClient) error {
				var raw json.RawMessage
				if err := c.call(cmd.Context(), "GET", "/admin/keys", nil, &raw); err != nil {
					return err
				}
				if o.jsonOut {
					return printJSON(cmd.OutOrStdout(), raw)
				}
				var a keysAnswer
				if err := json.Unmarshal(raw, &a); err != nil {
					return fmt.Errorf("unexpected answer: %w", err)
				}
				if err := a.print(cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
					return err
				}
				if len(a.Problems) > 0 {
					return fmt.Errorf("%d key problem(s), see above", len(a.Problems))
				}
				return nil
			})
		},
	}
	o.register(cmd)
	return cmd
}

// keysAnswer is the part of GET /admin/keys the CLI prints.
type keysAnswer struct {
	Version            int64  `json:"version"`
	Signing            string `json:"signing"`
	RotationInProgress bool   `json:"rotation_in_progress"`
	PublishDelay       string `json:"publish_delay"`
	RetireAfter        string `json:"retire_after"`
	Keys               []struct {
		KID       string     `json:"kid"`
		Alg       string     `json:"alg"`
		State     string     `json:"state"`
		Since     *time.Time `json:"since"`
		Until     *time.Time `json:"until"`
		Published bool       `json:"published"`
		InKeysDir bool       `json:"in_keys_dir"`
	} `json:"keys"`
	Instances []struct {
		ID      string   `json:"id"`
		Version int64    `json:"version"`
		Signing string   `json:"signing"`
		KeysDir []string `json:"keys_dir"`
		Missing []string `json:"missing"`
	} `json:"instances"`
	Problems []string `json:"problems"`
	Rotation *struct {
		Version   int64      `json:"version"`
		KID       string     `json:"kid"`
		From      string     `json:"from"`
		SignsAt   *time.Time `json:"signs_at"`
		RetireAt  *time.Time `json:"retire_at"`
		Cancelled string     `json:"cancelled"`
	} `json:"rotation"`
}

func (a *keysAnswer) signingAlg() string {
	for _, k := range a.Keys {
		if k.KID == a.Signing {
			return k.Alg
		}
	}
	return ""
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

func (a *keysAnswer) print(out, errOut io.Writer) error {
	progress := "no rotation in progress"
	if a.RotationInProgress {
		progress = "rotation in progress"
	}
	outf(out, "rotation version %d, %s; publish delay %s, retire after %s\n\n", a.Version, progress, orDash(a.PublishDelay), orDash(a.RetireAfter))
	tw := newTable(out, "KID", "ALG", "STATE", "SINCE", "UNTIL", "IN JWKS", "IN KEYS_DIR")
	for _, k := range a.Keys {
		tw.row(k.KID, k.Alg, k.State, stamp(k.Since), stamp(k.Until), k.Published, k.InKeysDir)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if len(a.Instances) > 0 {
		outln(out)
		tw = newTable(out, "INSTANCE", "VERSION", "SIGNING", "KEYS_DIR", "MISSING")
		for _, in := range a.Instances {
			tw.row(in.ID, in.Version, in.Signing, strings.Join(in.KeysDir, ","), orDash(strings.Join(in.Missing, ",")))
		}
		if err := tw.flush(); err != nil {
			return err
		}
	}
	for _, p := range a.Problems {
		outf(errOut, "PROBLEM: %s\n", p)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
