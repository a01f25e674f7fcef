package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

const auditLong = `Fetches GET /admin/audit: every change of the migration flags, newest first,
with who, when, the action (init, set, rollback, reload, refused), whether the
usage guard was forced, what changed (global phase, per-client phases, rollout,
exemptions, sunset), the guard's figures and the reason.

  TOKENSHIFT_ADMIN_PASSWORD=... tokenshift audit --email ops@example.com --limit 20`

func newAuditCmd() *cobra.Command {
	o := &opsFlags{}
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of migration flag changes",
		Long:  auditLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.fetch(cmd, "GET", "/admin/audit?limit="+strconv.Itoa(limit), nil, printAudit)
		},
	}
	o.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 50, "entries to show, newest first")
	return cmd
}
