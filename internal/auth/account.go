package auth

import "time"

// LoginInfo is one live login of a user (a cookie session, a token family,
// or both under one sid) as operators and the user see it. The HTTP server
// produces it and the admin API serves it; both speak this type so that
// neither imports the other.
type LoginInfo struct {
	SID        string    `json:"sid"`
	ClientID   string    `json:"client_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at,omitempty"`
	Session    bool      `json:"session"`
	Tokens     bool      `json:"tokens"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current,omitempty"`
}

// AccountInfo is tokenshift's own state of a user (suspension, password
// change), as operators see it.
type AccountInfo struct {
	UserID            string     `json:"user_id"`
	Suspended         bool       `json:"suspended"`
	SuspendedAt       *time.Time `json:"suspended_at,omitempty"`
	SuspendedBy       string     `json:"suspended_by,omitempty"`
	Reason            string     `json:"reason,omitempty"`
	PasswordChangedAt *time.Time `json:"password_changed_at,omitempty"`
}
