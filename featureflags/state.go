package featureflags

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ClientRule overrides the global phase for one client id.
type ClientRule struct {
	Phase Phase `json:"phase"`
}

// State is the whole migration configuration at one version. A State installed
// in Flags is a read-only snapshot shared by every request: change a Clone and
// hand it to Manager.Apply instead of editing it in place.
type State struct {
	Version       int64                 `json:"version"`
	Phase         Phase                 `json:"phase"`
	Clients       map[string]ClientRule `json:"clients"`
	Rollout       float64               `json:"rollout"` // percent 0..100, used in retiring
	RolloutSeed   string                `json:"rollout_seed"`
	ExemptClients []string              `json:"exempt_clients"`
	// Sunset is always present in JSON, null when unset: the admin API
	// promises the field, and a missing key reads like an old server.
	Sunset *time.Time `json:"sunset"`
	// DeprecatedAt is when the global phase entered prefer-jwt or later; nil
	// while it is below. ClientsDeprecatedAt holds the same date per client
	// (by effective phase), so a client moved later announces its own date.
	// The Manager maintains both (see stampDeprecation); a date set by hand
	// that differs from the stored one is kept.
	DeprecatedAt        *time.Time           `json:"deprecated_at,omitempty"`
	ClientsDeprecatedAt map[string]time.Time `json:"clients_deprecated_at,omitempty"`
	DocsURL             string               `json:"docs_url,omitempty"`
	UpdatedAt           time.Time            `json:"updated_at"`
	UpdatedBy           string               `json:"updated_by,omitempty"`

	// prep holds what Decide needs precomputed (header strings, the rollout
	// limit in buckets) so that deciding allocates nothing. nil until prepare.
	prep *prepared
}

// Limits on operator-supplied strings: they end up in Redis, the audit log and
// the dashboard, so an unbounded value is a cheap way to bloat all three.
const (
	maxSeedLen   = 200
	maxURLLen    = 2048
	maxActorLen  = 200
	maxReasonLen = 2000
	maxClientLen = 200
)

// Bounds of the dates operators set. A sunset in the past is allowed: RFC
// 8594 section 3 reads it as "the resource may go away at any time", which is
// what a late migration means. What is refused is a date no one meant: year
// 0 or 1970 from a zero value or a typo, or one so far ahead that the Sunset
// header promises nothing (checked where a clock is at hand, on changes:
// see checkHorizon).
var earliestDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxSunsetAhead is how far in the future a sunset may be set.
const MaxSunsetAhead = 10 * 365 * 24 * time.Hour

// checkHorizon refuses a sunset more than MaxSunsetAhead after now. It
// applies to changes (Apply, the configuration's initial state, a reload),
// not to stored states, which must stay loadable and restorable by rollback.
func (s *State) checkHorizon(now time.Time) error {
	if s.Sunset != nil && s.Sunset.After(now.Add(MaxSunsetAhead)) {
		return fmt.Errorf("%w: sunset: %s is more than 10 years ahead: check the year", ErrInvalidState, s.Sunset.UTC().Format(time.RFC3339))
	}
	return nil
}

// EffectivePhase is the phase that applies to clientID: its override if it has
// one, else the global phase.
func (s *State) EffectivePhase(clientID string) Phase {
	if r, ok := s.Clients[clientID]; ok && r.Phase.Valid() {
		return r.Phase
	}
	return s.Phase
}

// Clone returns a deep copy that shares nothing with s, safe to modify. Clients
// and ExemptClients are never nil in the copy, so the JSON form always carries
// {} and [] rather than null. The copy is not prepared.
func (s *State) Clone() State {
	c := *s
	c.prep = nil
	c.Clients = make(map[string]ClientRule, len(s.Clients))
	for id, r := range s.Clients {
		c.Clients[id] = r
	}
	c.ExemptClients = append(make([]string, 0, len(s.ExemptClients)), s.ExemptClients...)
	if s.Sunset != nil {
		t := *s.Sunset
		c.Sunset = &t
	}
	if s.DeprecatedAt != nil {
		t := *s.DeprecatedAt
		c.DeprecatedAt = &t
	}
	// nil rather than empty, as JSON decoding gives for an omitted field, so
	// a clone compares equal to the same state after a trip through a backend.
	c.ClientsDeprecatedAt = nil
	if len(s.ClientsDeprecatedAt) > 0 {
		c.ClientsDeprecatedAt = make(map[string]time.Time, len(s.ClientsDeprecatedAt))
		for id, t := range s.ClientsDeprecatedAt {
			c.ClientsDeprecatedAt[id] = t
		}
	}
	return c
}

// EqualSettings reports whether s and o configure the same behaviour: every
// field but Version, UpdatedAt and UpdatedBy. A nil and an empty Clients map
// (or ExemptClients list) are equal; exempt clients compare as a set.
func (s *State) EqualSettings(o *State) bool {
	if s.Phase != o.Phase || s.Rollout != o.Rollout || s.RolloutSeed != o.RolloutSeed || s.DocsURL != o.DocsURL {
		return false
	}
	if len(s.Clients) != len(o.Clients) {
		return false
	}
	for id, r := range s.Clients {
		if or, ok := o.Clients[id]; !ok || or != r {
			return false
		}
	}
	a, b := slices.Clone(s.ExemptClients), slices.Clone(o.ExemptClients)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(slices.Compact(a), slices.Compact(b)) {
		return false
	}
	if len(s.ClientsDeprecatedAt) != len(o.ClientsDeprecatedAt) {
		return false
	}
	for id, t := range s.ClientsDeprecatedAt {
		if ot, ok := o.ClientsDeprecatedAt[id]; !ok || !ot.Equal(t) {
			return false
		}
	}
	return equalTime(s.Sunset, o.Sunset) && equalTime(s.DeprecatedAt, o.DeprecatedAt)
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// Validate checks s and returns every problem found, each naming the field and
// the offending value and wrapping ErrInvalidState. knownClients, when not
// empty, is the set of registered client ids that overrides and exemptions may
// name.
func (s *State) Validate(knownClients []string) error {
	var errs []error
	bad := func(field string, value any, why string) {
		errs = append(errs, fmt.Errorf("%w: %s: %v %s", ErrInvalidState, field, value, why))
	}
	known := func(id string) bool { return len(knownClients) == 0 || slices.Contains(knownClients, id) }
	knownList := strings.Join(knownClients, ", ")

	if s.Version < 0 {
		bad("version", s.Version, "must not be negative")
	}
	if !s.Phase.Valid() {
		bad("phase", quotePhase(s.Phase), "must be legacy, dual, prefer-jwt, retiring or jwt-only")
	}
	for _, id := range sortedKeys(s.Clients) {
		field := fmt.Sprintf("clients[%q]", id)
		switch {
		case id == "" || len(id) > maxClientLen:
			bad("clients", fmt.Sprintf("%q", id), fmt.Sprintf("is not a client id (1 to %d characters)", maxClientLen))
		case !known(id):
			bad(field, fmt.Sprintf("%q", id), "is not a registered client (known: "+knownList+")")
		}
		if p := s.Clients[id].Phase; !p.Valid() {
			bad(field+".phase", quotePhase(p), "must be legacy, dual, prefer-jwt, retiring or jwt-only")
		}
	}
	if math.IsNaN(s.Rollout) || s.Rollout < 0 || s.Rollout > 100 {
		bad("rollout", s.Rollout, "must be a percentage between 0 and 100")
	}
	if len(s.RolloutSeed) > maxSeedLen {
		bad("rollout_seed", fmt.Sprintf("(%d bytes)", len(s.RolloutSeed)), fmt.Sprintf("is longer than %d bytes", maxSeedLen))
	}
	seen := make(map[string]bool, len(s.ExemptClients))
	for i, id := range s.ExemptClients {
		field := fmt.Sprintf("exempt_clients[%d]", i)
		switch {
		case id == "" || len(id) > maxClientLen:
			bad(field, fmt.Sprintf("%q", id), fmt.Sprintf("is not a client id (1 to %d characters)", maxClientLen))
		case !known(id):
			bad(field, fmt.Sprintf("%q", id), "is not a registered client (known: "+knownList+")")
		case seen[id]:
			bad(field, fmt.Sprintf("%q", id), "is listed twice")
		}
		seen[id] = true
	}
	switch {
	case s.Sunset != nil && s.Sunset.IsZero():
		bad("sunset", "0001-01-01T00:00:00Z", "is the zero time; omit it instead")
	case s.Sunset != nil && s.Sunset.Before(earliestDate):
		bad("sunset", s.Sunset.UTC().Format(time.RFC3339), "is before 2000-01-01: check the year (a date in the past is allowed, meaning sessions may end at any time)")
	}
	switch {
	case s.DeprecatedAt != nil && s.DeprecatedAt.IsZero():
		bad("deprecated_at", "0001-01-01T00:00:00Z", "is the zero time; omit it instead")
	case s.DeprecatedAt != nil && s.DeprecatedAt.Before(earliestDate):
		bad("deprecated_at", s.DeprecatedAt.UTC().Format(time.RFC3339), "is before 2000-01-01: check the year")
	}
	if s.Sunset != nil && s.DeprecatedAt != nil && s.Sunset.Before(*s.DeprecatedAt) {
		bad("sunset", s.Sunset.UTC().Format(time.RFC3339), "is before deprecated_at "+s.DeprecatedAt.UTC().Format(time.RFC3339)+" (RFC 9745 §3)")
	}
	// Keys are not checked against the registry: the Manager prunes dates of
	// clients that are gone, and a stored state must stay loadable.
	for _, id := range sortedKeys(s.ClientsDeprecatedAt) {
		field := fmt.Sprintf("clients_deprecated_at[%q]", id)
		switch t := s.ClientsDeprecatedAt[id]; {
		case id == "" || len(id) > maxClientLen:
			bad("clients_deprecated_at", fmt.Sprintf("%q", id), fmt.Sprintf("is not a client id (1 to %d characters)", maxClientLen))
		case t.IsZero():
			bad(field, "0001-01-01T00:00:00Z", "is the zero time; omit it instead")
		}
	}
	if s.DocsURL != "" {
		if err := checkDocsURL(s.DocsURL); err != nil {
			bad("docs_url", fmt.Sprintf("%q", truncate(s.DocsURL, 100)), err.Error())
		}
	}
	return errors.Join(errs...)
}

// checkDocsURL accepts only absolute http(s) URLs that can sit between the
// angle brackets of a Link header without breaking out of it.
func checkDocsURL(raw string) error {
	if len(raw) > maxURLLen {
		return fmt.Errorf("is longer than %d bytes", maxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return errors.New("must not contain spaces, control characters, non-ASCII, <, > or \" (percent-encode them)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	return nil
}

func quotePhase(p Phase) string {
	if p == 0 {
		return "(missing)"
	}
	return fmt.Sprintf("%d", uint8(p))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
