package featureflags

import (
	"fmt"
)

// Phase is a step of the migration from sessions to JWTs. Phases are ordered:
// a higher phase accepts fewer sessions.
type Phase uint8

const (
	// PhaseLegacy: login issues a session only; only sessions are accepted.
	PhaseLegacy Phase = iota + 1
	// PhaseDual: login issues session and tokens; both are accepted.
	PhaseDual
	// PhasePreferJWT: as dual, and session-authenticated responses carry
	// Deprecation, Sunset and Link headers; session→JWT exchange is offered.
	PhasePreferJWT
	// PhaseRetiring: tokens for everyone; sessions only for exempt clients and
	// users outside the rollout percentage.
	PhaseRetiring
	// PhaseJWTOnly: tokens only; every session gets 401 session_retired.
	PhaseJWTOnly
)

// Phases lists every phase in order.
var Phases = [...]Phase{PhaseLegacy, PhaseDual, PhasePreferJWT, PhaseRetiring, PhaseJWTOnly}

var phaseNames = [...]string{"", "legacy", "dual", "prefer-jwt", "retiring", "jwt-only"}

func (p Phase) String() string {
	if p >= PhaseLegacy && p <= PhaseJWTOnly {
		return phaseNames[p]
	}
	return "invalid"
}

// Valid reports whether p is one of the five phases.
func (p Phase) Valid() bool { return p >= PhaseLegacy && p <= PhaseJWTOnly }

// ParsePhase maps a phase name ("dual", "jwt-only", ...) to its Phase.
func ParsePhase(name string) (Phase, error) {
	for i := PhaseLegacy; i <= PhaseJWTOnly; i++ {
		if phaseNames[i] == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown phase %q (want one of legacy, dual, prefer-jwt, retiring, jwt-only)", name)
}

// MarshalText encodes the phase by name, so JSON and YAML carry "dual", not 2.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("invalid phase %d", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText decodes a phase name.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Decision is what one (client, user) may do under the current state. It is a
// plain value: deciding allocates nothing, and header values are precomputed
// strings owned by the State.
type Decision struct {
	// Phase is the effective phase for this client (global or override).
	Phase Phase
	// IssueSession and IssueTokens say what a login creates.
	IssueSession bool
	IssueTokens  bool
	// AcceptSession and AcceptTokens say which credentials authenticate.
	AcceptSession bool
	AcceptTokens  bool
	// AllowExchange: a valid session may be exchanged for a token pair.
	AllowExchange bool
	// Deprecate: session-authenticated responses carry the headers below.
	Deprecate bool
	// Exempt: the client is on the exempt list (retiring does not apply).
	Exempt bool
	// InRollout: in retiring, the user's bucket is below the rollout percentage.
	InRollout bool
	// Header values to send when Deprecate is true (empty = do not send).
	DeprecationHeader string
	SunsetHeader      string
	LinkHeader        string
}
