package featureflags

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// rolloutBuckets is the resolution of the sticky rollout: 0.01 % steps.
const rolloutBuckets = 10000

// prepared is what Decide reads instead of computing per request.
type prepared struct {
	limit       uint64 // users whose bucket is below limit are in the rollout
	seedHash    uint64 // FNV-1a state after the seed and separator
	deprecation string
	// clientDeprecation overrides deprecation for clients whose sessions
	// became deprecated at another time than the global phase's.
	clientDeprecation map[string]string
	sunset            string
	link              string
}

// prepare precomputes the header strings and the rollout limit. It is called
// on every State before it is installed in Flags, never on a shared snapshot.
func (s *State) prepare() {
	p := &prepared{limit: rolloutLimit(s.Rollout), seedHash: seedState(s.RolloutSeed)}
	p.deprecation, p.sunset, p.link = s.headerValues()
	for id, t := range s.ClientsDeprecatedAt {
		if v := deprecationValue(t); v != p.deprecation {
			if p.clientDeprecation == nil {
				p.clientDeprecation = make(map[string]string, len(s.ClientsDeprecatedAt))
			}
			p.clientDeprecation[id] = v
		}
	}
	s.prep = p
}

// deprecationValue is an RFC 9745 Deprecation value: @ and Unix seconds.
func deprecationValue(t time.Time) string {
	return "@" + strconv.FormatInt(t.Unix(), 10)
}

// rolloutLimit rounds rather than truncates so that 0.29 % means 29 buckets
// even though 0.29*100 is 28.999... in binary floating point.
func rolloutLimit(percent float64) uint64 {
	switch {
	case math.IsNaN(percent) || percent <= 0:
		return 0
	case percent >= 100:
		return rolloutBuckets
	}
	return uint64(math.Round(percent * 100))
}

// headerValues builds the Deprecation (RFC 9745), Sunset (RFC 8594) and Link
// values sent on session-authenticated responses while sessions are deprecated.
func (s *State) headerValues() (deprecation, sunset, link string) {
	switch {
	case s.DeprecatedAt != nil:
		deprecation = deprecationValue(*s.DeprecatedAt)
	case !s.UpdatedAt.IsZero():
		// A state built by hand, not through the Manager (which always stamps
		// DeprecatedAt): the last change is the best estimate of when it began.
		deprecation = deprecationValue(s.UpdatedAt)
	}
	if s.Sunset != nil {
		sunset = s.Sunset.UTC().Format(http.TimeFormat)
	}
	if s.DocsURL != "" {
		link = "<" + s.DocsURL + `>; rel="deprecation"; type="text/html"`
	}
	return deprecation, sunset, link
}

// Decide says what clientID and userID may do under s. It is pure and, on a
// prepared State (any State obtained from Flags), allocates nothing. On a State
// that was never installed it is still correct, only slower. An invalid phase
// yields the zero Decision, which accepts nothing: failing closed.
func (s *State) Decide(clientID, userID string) Decision {
	if s == nil {
		return Decision{}
	}
	d := Decision{Phase: s.EffectivePhase(clientID)}
	d.Exempt = slices.Contains(s.ExemptClients, clientID)
	switch d.Phase {
	case PhaseLegacy:
		d.IssueSession, d.AcceptSession = true, true
	case PhaseDual:
		d.IssueSession, d.AcceptSession = true, true
		d.IssueTokens, d.AcceptTokens = true, true
		d.AllowExchange = true
	case PhasePreferJWT:
		d.IssueSession, d.AcceptSession = true, true
		d.IssueTokens, d.AcceptTokens = true, true
		d.AllowExchange = true
		d.Deprecate = true
	case PhaseRetiring:
		d.InRollout = s.inRollout(userID)
		keep := d.Exempt || !d.InRollout
		d.IssueSession, d.AcceptSession = keep, keep
		d.IssueTokens, d.AcceptTokens = true, true
		d.AllowExchange = true
		// Sessions still accepted here are on borrowed time: keep telling
		// their clients so, as prefer-jwt did.
		d.Deprecate = keep
	case PhaseJWTOnly:
		d.IssueTokens, d.AcceptTokens = true, true
	default:
		return Decision{}
	}
	if d.Deprecate {
		if p := s.prep; p != nil {
			d.DeprecationHeader, d.SunsetHeader, d.LinkHeader = p.deprecation, p.sunset, p.link
			if v, ok := p.clientDeprecation[clientID]; ok {
				d.DeprecationHeader = v
			}
		} else {
			d.DeprecationHeader, d.SunsetHeader, d.LinkHeader = s.headerValues()
			if t, ok := s.ClientsDeprecatedAt[clientID]; ok {
				d.DeprecationHeader = deprecationValue(t)
			}
		}
	}
	return d
}

func (s *State) inRollout(userID string) bool {
	if p := s.prep; p != nil {
		return bucketFrom(p.seedHash, userID) < p.limit
	}
	return Bucket(s.RolloutSeed, userID) < rolloutLimit(s.Rollout)
}

// FNV-1a 64-bit parameters (FNV spec, draft-eastlake-fnv).
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Bucket places userID in [0, 10000) for the rollout seeded by seed. The
// bucket depends on nothing else, so it never moves as the percentage grows:
// a user in the rollout at 20 % is still in it at 40 %. Changing the seed
// reshuffles everyone. The hash is written out here, rather than through
// hash/fnv, because that would allocate on every request.
func Bucket(seed, userID string) uint64 {
	return bucketFrom(seedState(seed), userID)
}

// seedState is the hash state after the seed, computed once per State since
// the seed is the same for every request.
func seedState(seed string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(seed); i++ {
		h ^= uint64(seed[i])
		h *= fnvPrime64
	}
	// A zero separator byte (xor with 0 is a no-op, so only the multiply
	// remains) so that ("ab", "c") and ("a", "bc") hash differently.
	return h * fnvPrime64
}

func bucketFrom(h uint64, userID string) uint64 {
	for i := 0; i < len(userID); i++ {
		h ^= uint64(userID[i])
		h *= fnvPrime64
	}
	return h % rolloutBuckets
}
