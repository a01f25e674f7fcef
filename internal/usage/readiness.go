package usage

import (
	"fmt"
	"strings"
	"time"
)

// Readiness is the verdict on retiring sessions, with the figures behind it.
// Ready needs all of: accepted traffic in the window, a session share at or
// below the threshold, a window at least as long as the longest session
// lifetime, and usage data covering the whole window.
type Readiness struct {
	Ready bool `json:"ready"`
	// Reasons say what stands in the way; empty when ready.
	Reasons []string `json:"reasons"`
	// Notes qualify a verdict without blocking it.
	Notes []string `json:"notes,omitempty"`

	SessionShare    float64 `json:"session_share"`
	SessionRequests int64   `json:"session_requests"`
	TotalRequests   int64   `json:"total_requests"`
	Threshold       float64 `json:"threshold"`

	Window                      string `json:"window"`
	SessionLifetime             string `json:"session_lifetime"`
	WindowCoversSessionLifetime bool   `json:"window_covers_session_lifetime"`
	// WindowObserved is false when usage data starts after the window does
	// (fresh deployment, Redis restarted empty) or Redis was found to have
	// lost acknowledged data inside the window: the missing part is unknown.
	WindowObserved bool `json:"window_observed"`

	// ClientsUsingSessions lists clients with accepted session requests in
	// the window, most requests first.
	ClientsUsingSessions []SessionClient `json:"clients_using_sessions"`
}

// SessionClient is a client still authenticating with sessions.
type SessionClient struct {
	ClientID string `json:"client_id"`
	Requests int64  `json:"requests"`
	// Share of that client's accepted requests made with a session.
	Share    float64    `json:"share"`
	LastSeen *time.Time `json:"last_seen"`
}

// maxClientsInReason keeps a reason line readable; the full list is in
// ClientsUsingSessions.
const maxClientsInReason = 5

// coverage says how much of a window the stored data really covers (unix
// seconds; 0 = never).
type coverage struct {
	since       int64 // aggregation start
	lost        int64 // last detected loss of acknowledged data
	windowStart int64
}

func (c coverage) observed() bool {
	return c.since != 0 && c.since <= c.windowStart && c.lost <= c.windowStart
}

func (r *Recorder) verdict(window time.Duration, cov coverage, sessions, total int64, clients []SessionClient) Readiness {
	observed := cov.observed()
	v := Readiness{
		Reasons:                     []string{},
		SessionShare:                ratio(sessions, total),
		SessionRequests:             sessions,
		TotalRequests:               total,
		Threshold:                   r.maxShare,
		Window:                      formatDuration(window),
		SessionLifetime:             formatDuration(r.sessionLifetime),
		WindowCoversSessionLifetime: window >= r.sessionLifetime,
		WindowObserved:              observed,
		ClientsUsingSessions:        clients,
	}
	if v.ClientsUsingSessions == nil {
		v.ClientsUsingSessions = []SessionClient{}
	}
	if total == 0 {
		v.Reasons = append(v.Reasons, "no accepted request in the window: there is no evidence either way")
	}
	if float64(sessions) > r.maxShare*float64(total) {
		v.Reasons = append(v.Reasons, fmt.Sprintf(
			"session share %s (%d of %d accepted requests) is above the threshold %s%s",
			percent(v.SessionShare), sessions, total, percent(r.maxShare), clientList(clients)))
	}
	if !v.WindowCoversSessionLifetime {
		v.Reasons = append(v.Reasons, fmt.Sprintf(
			"the window (%s) is shorter than the longest session lifetime (%s): a session issued before the window may still come back",
			v.Window, v.SessionLifetime))
	}
	switch {
	case cov.since == 0:
		v.Reasons = append(v.Reasons, "no usage data has been recorded yet")
	case cov.since > cov.windowStart:
		v.Reasons = append(v.Reasons, fmt.Sprintf(
			"usage data only goes back to %s, after the start of the window: earlier use is unknown",
			time.Unix(cov.since, 0).UTC().Format(time.RFC3339)))
	}
	if cov.lost > cov.windowStart {
		v.Reasons = append(v.Reasons, fmt.Sprintf(
			"Redis lost usage data it had acknowledged (noticed at %s: restarted empty or from an older snapshot, or failed over): counts before then are incomplete",
			time.Unix(cov.lost, 0).UTC().Format(time.RFC3339)))
	}
	if r.sessionLifetime == 0 {
		v.Notes = append(v.Notes, "the session lifetime is not configured, so the window could not be checked against it")
	}
	if sessions > 0 && len(v.Reasons) == 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d session requests remain below the threshold%s; they will be refused once sessions are retired", sessions, clientList(clients)))
	}
	v.Ready = len(v.Reasons) == 0
	return v
}

func clientList(clients []SessionClient) string {
	if len(clients) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; still using sessions: ")
	for i, c := range clients {
		if i == maxClientsInReason {
			fmt.Fprintf(&b, ", and %d more", len(clients)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d", c.ClientID, c.Requests)
		if c.LastSeen != nil {
			fmt.Fprintf(&b, ", last %s", c.LastSeen.Format(time.RFC3339))
		}
		b.WriteString(")")
	}
	return b.String()
}

func percent(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }
