package main

import (
	"io"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/token"
)

// printKeys writes a keys answer (token.KeysView, of GET /admin/keys and
// POST /admin/keys/rotate): the keys, the instances, and the problems on
// errOut.
func printKeys(out, errOut io.Writer, v token.KeysView) error {
	progress := "no rotation in progress"
	if v.RotationInProgress {
		progress = "rotation in progress"
	}
	outf(out, "rotation version %d, %s; publish delay %s, retire after %s\n\n", v.Version, progress, orDash(v.PublishDelay), orDash(v.RetireAfter))
	tw := newTable(out, "KID", "ALG", "STATE", "SINCE", "UNTIL", "IN JWKS", "IN KEYS_DIR")
	for _, k := range v.Keys {
		tw.row(k.KID, k.Alg, k.State, stamp(k.Since), stamp(k.Until), k.Published, k.InKeysDir)
	}
	if err := tw.flush(); err != nil {
		return err
	}
	if len(v.Instances) > 0 {
		outln(out)
		tw = newTable(out, "INSTANCE", "VERSION", "SIGNING", "KEYS_DIR", "MISSING")
		for _, in := range v.Instances {
			tw.row(in.ID, in.Version, in.Signing, strings.Join(in.KeysDir, ","), orDash(strings.Join(in.Missing, ",")))
		}
		if err := tw.flush(); err != nil {
			return err
		}
	}
	for _, p := range v.Problems {
		outf(errOut, "PROBLEM: %s\n", p)
	}
	return nil
}

// signingAlg is the algorithm of the key that signs now.
func signingAlg(v token.KeysView) string {
	for _, k := range v.Keys {
		if k.KID == v.Signing {
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
