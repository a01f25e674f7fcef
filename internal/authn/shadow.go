package authn

import (
	"github.com/gofiber/fiber/v2"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/auth"
)

// Kinds of shadow mismatch. The set is closed so that a metric labelled by
// kind stays bounded.
const (
	// ShadowDifferentSubject: both credentials are valid but name different
	// users. The request is still refused (credential_conflict).
	ShadowDifferentSubject = "different_subject"
	// ShadowExpired, ShadowRevoked, ShadowInvalid: one credential is valid,
	// the other is expired, revoked, or invalid (forged, unknown, malformed).
	ShadowExpired = "expired"
	ShadowRevoked = "revoked"
	ShadowInvalid = "invalid"
	// ShadowClient: same user, but the credentials were issued to different
	// clients.
	ShadowClient = "client"
)

// ShadowKinds lists every kind, in a fixed order.
var ShadowKinds = [...]string{ShadowDifferentSubject, ShadowExpired, ShadowRevoked, ShadowInvalid, ShadowClient}

// ShadowMismatch is one disagreement between two credentials of a request.
// It names users and clients, never credential values.
type ShadowMismatch struct {
	Kind  string
	Phase featureflags.Phase
	// The valid credential the other one is compared with.
	Scheme   auth.Scheme
	UserID   string
	ClientID string
	// The disagreeing credential; its user and client only when it is valid.
	OtherScheme   auth.Scheme
	OtherUserID   string
	OtherClientID string
}

// shadowCheck compares every credential of a request with the first valid
// one (in verification order), in phases dual and prefer-jwt, where both
// schemes are in use and a disagreement hints at a bug or an attack before
// sessions are retired. It only reports: the decision that follows is the
// same with or without it.
func (cfg *Config) shadowCheck(c *fiber.Ctx, results []verified) {
	if !cfg.Shadow || cfg.OnShadowMismatch == nil || len(results) < 2 {
		return
	}
	ref := -1
	for i := range results {
		if results[i].err == nil {
			ref = i
			break
		}
	}
	if ref < 0 {
		return // nothing valid to compare with: an ordinary failure
	}
	p := results[ref].p
	phase := cfg.decision(p).Phase
	if phase != featureflags.PhaseDual && phase != featureflags.PhasePreferJWT {
		return
	}
	for i := range results {
		if i == ref {
			continue
		}
		r := &results[i]
		m := ShadowMismatch{Phase: phase, Scheme: p.Scheme, UserID: p.UserID, ClientID: p.ClientID, OtherScheme: r.scheme}
		switch {
		case r.err != nil:
			switch auth.OutcomeOf(r.err) {
			case auth.OutcomeExpired:
				m.Kind = ShadowExpired
			case auth.OutcomeRevoked:
				m.Kind = ShadowRevoked
			default:
				m.Kind = ShadowInvalid
			}
		case r.p.UserID != p.UserID:
			m.Kind, m.OtherUserID, m.OtherClientID = ShadowDifferentSubject, r.p.UserID, r.p.ClientID
		case r.p.ClientID != p.ClientID:
			m.Kind, m.OtherUserID, m.OtherClientID = ShadowClient, r.p.UserID, r.p.ClientID
		default:
			continue
		}
		cfg.OnShadowMismatch(c, m)
	}
}
