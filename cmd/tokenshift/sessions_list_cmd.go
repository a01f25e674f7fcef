package main

import (
	"encoding/json"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/tokenshift/tokenshift/internal/auth"
)

func newSessionsListCmd(o *opsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list USER_ID",
		Short: "List a user's live logins",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.fetch(cmd, "GET", "/admin/users/"+url.PathEscape(args[0])+"/sessions", nil, printSessions)
		},
	}
}

// printSessions writes GET /admin/users/{id}/sessions as a table.
func printSessions(w io.Writer, raw json.RawMessage) error {
	// The admin API wraps the logins in their own type, auth.LoginInfo.
	var l struct {
		Sessions []auth.LoginInfo `json:"sessions"`
	}
	if err := decodeAnswer(raw, &l, "sessions answer"); err != nil {
		return err
	}
	tw := newTable(w, "SID", "CLIENT", "CREATED", "LAST SEEN", "SESSION", "TOKENS", "IP", "USER AGENT")
	for _, s := range l.Sessions {
		tw.row(s.SID, s.ClientID, wireTime(s.CreatedAt), wireTime(s.LastSeenAt), s.Session, s.Tokens, s.IP, s.UserAgent)
	}
	return tw.flush()
}
