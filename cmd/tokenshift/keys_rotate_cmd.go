package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/token"
)

const keysRotateLong = `Starts a key rotation through POST /admin/keys/rotate of a running tokenshift:

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
  tokenshift keys rotate --kid 20270101T000000Z --reason "planned"`

// keysRotate is `keys rotate`: its flags, and the request it sends.
type keysRotate struct {
	o             *opsFlags
	dir, alg      string
	generate      bool
	req           rotateRequest
	algWasChanged bool
}

// rotateRequest is the body of POST /admin/keys/rotate.
type rotateRequest struct {
	KID    string `json:"kid"`
	Reason string `json:"reason"`
	Force  bool   `json:"force"`
}

func newKeysRotateCmd() *cobra.Command {
	r := &keysRotate{o: &opsFlags{}}
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the signing key on every instance without downtime",
		Long:  keysRotateLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r.algWasChanged = cmd.Flags().Changed("alg")
			if err := r.check(); err != nil {
				return err
			}
			return r.o.withClient(cmd, func(c *opsClient) error { return r.run(cmd, c) })
		},
	}
	r.o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&r.dir, "dir", "", "the server's jwt.keys_dir, where --generate writes the new key")
	f.BoolVar(&r.generate, "generate", false, "write a new key into --dir first")
	f.StringVar(&r.alg, "alg", "", "algorithm of the generated key: EdDSA, ES256, RS256 or HS256 (default: the signing key's)")
	f.StringVar(&r.req.KID, "kid", "", "key to rotate to (with --generate: its kid, default the current UTC time); default: the newest key in keys_dir that is not signing")
	f.StringVar(&r.req.Reason, "reason", "", "why; written to the audit (required with --force)")
	f.BoolVar(&r.req.Force, "force", false, "rotate although a rotation is in progress")
	return cmd
}

// check refuses flag combinations before anything is sent.
func (r *keysRotate) check() error {
	switch {
	case r.generate && r.dir == "":
		return usageError{errors.New("--generate needs --dir (the server's jwt.keys_dir)")}
	case !r.generate && r.dir != "":
		return usageError{errors.New("--dir is only used with --generate")}
	case !r.generate && r.algWasChanged:
		return usageError{errors.New("--alg is only used with --generate")}
	case r.req.Force && r.req.Reason == "":
		return usageError{errors.New("--force needs a --reason")}
	}
	return nil
}

// run writes the new key first with --generate, starts the rotation and
// prints what it scheduled and the keys after it.
func (r *keysRotate) run(cmd *cobra.Command, c *opsClient) error {
	if r.generate {
		if err := r.generateKey(cmd, c); err != nil {
			return err
		}
	}
	var raw json.RawMessage
	err := c.call(cmd.Context(), "POST", "/admin/keys/rotate", r.req, &raw)
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == auth.CodeUnknownKey && r.generate {
		return fmt.Errorf("%w\nthe server does not see the new key: is --dir %s its jwt.keys_dir?", err, r.dir)
	}
	if err != nil {
		return err
	}
	if r.o.jsonOut {
		return printJSON(cmd.OutOrStdout(), raw)
	}
	var v token.KeysView
	if err := decodeAnswer(raw, &v, "answer"); err != nil {
		return err
	}
	if a := v.Rotation; a != nil {
		outf(cmd.OutOrStdout(), "rotation started (version %d): %s is published now and signs from %s;\n%s stops signing then and is retired at %s.\n",
			a.Version, a.KID, stamp(a.SignsAt), a.From, stamp(a.RetireAt))
		if a.Cancelled != "" {
			outf(cmd.OutOrStdout(), "the pending key %s was dropped.\n", a.Cancelled)
		}
		outln(cmd.OutOrStdout())
	}
	return printKeys(cmd.OutOrStdout(), cmd.ErrOrStderr(), v)
}

// generateKey writes the key to rotate to, by default with the signing
// key's algorithm, which is what the server allows by default
// (jwt.rotation.algorithms).
func (r *keysRotate) generateKey(cmd *cobra.Command, c *opsClient) error {
	alg := r.alg
	if alg == "" {
		var cur token.KeysView
		if err := c.call(cmd.Context(), "GET", "/admin/keys", nil, &cur); err != nil {
			return err
		}
		alg = signingAlg(cur)
	}
	kid, err := generateKey(cmd, r.dir, r.req.KID, alg)
	if err != nil {
		return err
	}
	r.req.KID = kid
	return nil
}
