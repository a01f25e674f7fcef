package token

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Key rotation.
//
// The rotation state is a schedule: for every kid that takes part, when it
// was published, from when and until when it signs, and when it is retired.
// What a key is at a moment t (next, signing, retiring, retired) is a pure
// function of the schedule and t. Every instance holding the same schedule
// therefore switches its signing key and drops a retired key at the same
// moment without anybody writing anything then: the only write is the
// operator's rotate, which plans the whole rotation at once.
//
// The schedule holds kids, algorithms and times only; private keys stay in
// jwt.keys_dir on every instance.

// KeyState is where a key is in its life.
type KeyState string

const (
	// KeyAvailable: in keys_dir but not part of the rotation: neither
	// published nor accepted. A rotation can bring it in.
	KeyAvailable KeyState = "available"
	// KeyNext: published in the JWKS and accepted, not signing yet.
	KeyNext KeyState = "next"
	// KeySigning: signs new tokens (exactly one key at any moment).
	KeySigning KeyState = "signing"
	// KeyRetiring: no longer signs; published and accepted until the
	// longest token it signed has expired.
	KeyRetiring KeyState = "retiring"
	// KeyRetired: gone from the JWKS and the ring; tokens it signed are
	// refused and its file may be deleted.
	KeyRetired KeyState = "retired"
)

// Rotation errors. The admin API maps each to a stable code.
var (
	// ErrUnknownKey: the kid is not in keys_dir (or there is no keys_dir, or
	// no key to rotate to).
	ErrUnknownKey = errors.New("key not in keys_dir")
	// ErrAlgorithmNotAllowed: the key's algorithm may not sign.
	ErrAlgorithmNotAllowed = errors.New("key algorithm not allowed")
	// ErrRotationInProgress: a key is still next or retiring.
	ErrRotationInProgress = errors.New("a key rotation is in progress")
	// ErrKeyRetired: a retired kid never comes back; JWKS caches elsewhere
	// may still associate it with its old life.
	ErrKeyRetired = errors.New("key is retired")
	// ErrAlreadySigning: the kid signs already.
	ErrAlreadySigning = errors.New("key is already signing")
	// ErrRotationState: the stored schedule is inconsistent.
	ErrRotationState = errors.New("invalid key rotation state")
	// ErrKeysMissing: keys the rotation needs are missing from this
	// instance's keys_dir.
	ErrKeysMissing = errors.New("signing keys missing from keys_dir")
)

// Bounds of what the state keeps, so it stays one small value.
const (
	maxRetiredKept = 20
	maxAuditKept   = 50
	maxActorLen    = 200
	maxReasonLen   = 500
)

// KeySchedule is one key's life. Times are UTC.
type KeySchedule struct {
	KID         string    `json:"kid"`
	Alg         string    `json:"alg"`
	PublishedAt time.Time `json:"published_at"`
	// SignFrom is when it starts signing; nil: it never signs in this plan.
	SignFrom *time.Time `json:"sign_from,omitempty"`
	// SignUntil is when it stops signing; nil: open-ended.
	SignUntil *time.Time `json:"sign_until,omitempty"`
	// RetireAt is when it leaves the JWKS and the ring; nil: not planned.
	RetireAt *time.Time `json:"retire_at,omitempty"`
	// KeepUntil is the earliest moment the key may be retired because of
	// tokens it signed in an earlier life (set when a retiring key is rotated
	// back in), so cancelling that rotation cannot drop it too early.
	KeepUntil *time.Time `json:"keep_until,omitempty"`
}

// StateAt is the key's state at t.
func (k *KeySchedule) StateAt(t time.Time) KeyState {
	switch {
	case k.RetireAt != nil && !t.Before(*k.RetireAt):
		return KeyRetired
	case k.SignUntil != nil && !t.Before(*k.SignUntil):
		return KeyRetiring
	case k.SignFrom != nil && !t.Before(*k.SignFrom):
		return KeySigning
	}
	return KeyNext
}

// sinceUntil is the span of the key's current state at t (nil: open).
func (k *KeySchedule) sinceUntil(t time.Time) (since, until *time.Time) {
	switch k.StateAt(t) {
	case KeyNext:
		p := k.PublishedAt
		return &p, k.SignFrom
	case KeySigning:
		return k.SignFrom, k.SignUntil
	case KeyRetiring:
		return k.SignUntil, k.RetireAt
	default:
		return k.RetireAt, nil
	}
}

// RotationAudit records one change of the rotation state: who, when, why.
type RotationAudit struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	// Action: seed (first state, from keys_dir and jwt.signing_kid), rotate,
	// or restore (the store had lost the state; an instance put it back).
	Action string `json:"action"`
	KID    string `json:"kid,omitempty"`  // the key rotated in
	From   string `json:"from,omitempty"` // the key it replaces
	// SignsAt is when KID starts signing; RetireAt when From is retired.
	SignsAt  *time.Time `json:"signs_at,omitempty"`
	RetireAt *time.Time `json:"retire_at,omitempty"`
	// Cancelled is a pending next key a forced rotation replaced.
	Cancelled string `json:"cancelled,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Forced    bool   `json:"forced,omitempty"`
}

// Audit actions.
const (
	RotationSeed    = "seed"
	RotationRotate  = "rotate"
	RotationRestore = "restore"
)

// RotationState is the versioned schedule shared by every instance.
type RotationState struct {
	Version   int64           `json:"version"`
	Keys      []KeySchedule   `json:"keys"`
	Audit     []RotationAudit `json:"audit,omitempty"` // newest first
	UpdatedAt time.Time       `json:"updated_at"`
	UpdatedBy string          `json:"updated_by"`
}

// Clone is a deep copy.
func (s RotationState) Clone() RotationState {
	c := s
	c.Keys = make([]KeySchedule, len(s.Keys))
	for i, k := range s.Keys {
		k.SignFrom, k.SignUntil = cloneTime(k.SignFrom), cloneTime(k.SignUntil)
		k.RetireAt, k.KeepUntil = cloneTime(k.RetireAt), cloneTime(k.KeepUntil)
		c.Keys[i] = k
	}
	c.Audit = slices.Clone(s.Audit)
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

func timePtr(t time.Time) *time.Time { return &t }

// Key returns the schedule of kid, or nil.
func (s *RotationState) Key(kid string) *KeySchedule {
	for i := range s.Keys {
		if s.Keys[i].KID == kid {
			return &s.Keys[i]
		}
	}
	return nil
}

// SigningAt is the kid that signs at t. A schedule where not exactly one key
// signs is corrupt: ErrRotationState.
func (s *RotationState) SigningAt(t time.Time) (string, error) {
	var found []string
	for i := range s.Keys {
		if s.Keys[i].StateAt(t) == KeySigning {
			found = append(found, s.Keys[i].KID)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%w: version %d has %d signing keys at %s (%v)", ErrRotationState, s.Version, len(found), t.Format(time.RFC3339), found)
	}
	return found[0], nil
}

// VerifyingAt lists, sorted, the kids published and accepted at t: every key
// of the schedule that is not retired.
func (s *RotationState) VerifyingAt(t time.Time) []string {
	var kids []string
	for i := range s.Keys {
		if s.Keys[i].StateAt(t) != KeyRetired {
			kids = append(kids, s.Keys[i].KID)
		}
	}
	sort.Strings(kids)
	return kids
}

// pendingAt is the key that is next at t ("" if none) and the retiring ones.
func (s *RotationState) pendingAt(t time.Time) (next string, retiring []string) {
	for i := range s.Keys {
		switch s.Keys[i].StateAt(t) {
		case KeyNext:
			next = s.Keys[i].KID
		case KeyRetiring:
			retiring = append(retiring, s.Keys[i].KID)
		}
	}
	sort.Strings(retiring)
	return next, retiring
}

// InProgressAt reports whether a rotation is under way at t: a key is next
// or retiring.
func (s *RotationState) InProgressAt(t time.Time) bool {
	next, retiring := s.pendingAt(t)
	return next != "" || len(retiring) > 0
}

// NextChangeAfter is the earliest planned change strictly after t, so an
// instance can wake up exactly then instead of polling for it.
func (s *RotationState) NextChangeAfter(t time.Time) (time.Time, bool) {
	var best time.Time
	ok := false
	for i := range s.Keys {
		for _, p := range []*time.Time{s.Keys[i].SignFrom, s.Keys[i].SignUntil, s.Keys[i].RetireAt} {
			if p != nil && p.After(t) && (!ok || p.Before(best)) {
				best, ok = *p, true
			}
		}
	}
	return best, ok
}

// Validate checks what must hold whatever the time: a version, valid unique
// kids with known algorithms, and each key's times in order.
func (s *RotationState) Validate() error {
	if s.Version < 1 {
		return fmt.Errorf("%w: version %d", ErrRotationState, s.Version)
	}
	if len(s.Keys) == 0 {
		return fmt.Errorf("%w: version %d has no keys", ErrRotationState, s.Version)
	}
	seen := map[string]bool{}
	for _, k := range s.Keys {
		switch {
		case !ValidKID(k.KID):
			return fmt.Errorf("%w: invalid kid %q", ErrRotationState, k.KID)
		case seen[k.KID]:
			return fmt.Errorf("%w: kid %q appears twice", ErrRotationState, k.KID)
		case !auth.IsAlgorithm(k.Alg):
			return fmt.Errorf("%w: kid %q has unknown algorithm %q", ErrRotationState, k.KID, k.Alg)
		case k.SignFrom != nil && k.SignUntil != nil && k.SignUntil.Before(*k.SignFrom):
			return fmt.Errorf("%w: kid %q stops signing before it starts", ErrRotationState, k.KID)
		case k.SignUntil != nil && k.RetireAt != nil && k.RetireAt.Before(*k.SignUntil):
			return fmt.Errorf("%w: kid %q is retired before it stops signing", ErrRotationState, k.KID)
		}
		seen[k.KID] = true
	}
	return nil
}

// SeedRotation is the first state, made from what keys_dir holds (kid →
// algorithm): signingKID signs ("" = the last kid in sort order, as before
// rotation existed). The other keys may have signed before the state existed,
// so they are kept as retiring for retireAfter rather than dropped.
func SeedRotation(available map[string]string, signingKID string, now time.Time, retireAfter time.Duration, actor string) (RotationState, error) {
	if len(available) == 0 {
		return RotationState{}, fmt.Errorf("%w: keys_dir holds no keys", ErrUnknownKey)
	}
	kids := make([]string, 0, len(available))
	for kid := range available {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	if signingKID == "" {
		signingKID = kids[len(kids)-1]
	}
	if _, ok := available[signingKID]; !ok {
		return RotationState{}, fmt.Errorf("%w: signing kid %q (have %v)", ErrUnknownKey, signingKID, kids)
	}
	now = now.UTC().Round(0)
	s := RotationState{Version: 1, UpdatedAt: now, UpdatedBy: actor}
	for _, kid := range kids {
		k := KeySchedule{KID: kid, Alg: available[kid], PublishedAt: now}
		if kid == signingKID {
			k.SignFrom = timePtr(now)
		} else {
			k.SignUntil, k.RetireAt = timePtr(now), timePtr(now.Add(retireAfter))
		}
		s.Keys = append(s.Keys, k)
	}
	s.Audit = []RotationAudit{{Version: 1, At: now, Actor: actor, Action: RotationSeed, KID: signingKID,
		Reason: "first rotation state, from jwt.keys_dir and jwt.signing_kid"}}
	return s, nil
}

// RotateInput is one rotation request with everything it depends on.
type RotateInput struct {
	// KID to rotate in; "" = the newest (last in sort order) kid of
	// Available that neither signs nor is retired.
	KID string
	// Available is what keys_dir holds: kid → algorithm.
	Available map[string]string
	// Allowed algorithms for the new key; empty = the signing key's own, so
	// verifiers configured for one algorithm keep working.
	Allowed []string
	Now     time.Time
	// Lead is how long the new key is published before it signs.
	Lead time.Duration
	// RetireAfter is how long the replaced key stays after it stops signing.
	RetireAfter time.Duration
	// Force rotates although a rotation is in progress: a pending next key is
	// dropped (it never signed), retiring keys keep their schedule.
	Force         bool
	Actor, Reason string
}

// Rotate plans a rotation at in.Now: the new key is published at once and
// signs from Now+Lead; the current signing key stops then and is retired
// RetireAfter later. It returns the next state (version + 1) and its audit
// entry. Errors wrap ErrUnknownKey, ErrAlgorithmNotAllowed,
// ErrRotationInProgress, ErrKeyRetired, ErrAlreadySigning or ErrRotationState.
func (s RotationState) Rotate(in RotateInput) (RotationState, RotationAudit, error) {
	t := in.Now.UTC().Round(0)
	actor, reason, err := checkRotateInput(in)
	if err != nil {
		return RotationState{}, RotationAudit{}, err
	}
	signer, err := s.SigningAt(t)
	if err != nil {
		return RotationState{}, RotationAudit{}, err
	}
	cur := s.Key(signer)
	kid := in.KID
	if kid == "" {
		if kid, err = s.newestCandidate(in.Available, t, signer); err != nil {
			return RotationState{}, RotationAudit{}, err
		}
	}
	alg, ok := in.Available[kid]
	if !ok {
		return RotationState{}, RotationAudit{}, fmt.Errorf("%w: kid %q: no %s.pem in jwt.keys_dir", ErrUnknownKey, kid, kid)
	}
	next, retiring := s.pendingAt(t)
	if err := s.checkRotatingIn(kid, alg, t); err != nil {
		return RotationState{}, RotationAudit{}, err
	}
	allowed := in.Allowed
	if len(allowed) == 0 {
		allowed = []string{cur.Alg}
	}
	if !slices.Contains(allowed, alg) {
		return RotationState{}, RotationAudit{}, fmt.Errorf("%w: kid %q is %s; allowed: %s (jwt.rotation.algorithms)", ErrAlgorithmNotAllowed, kid, alg, strings.Join(allowed, ", "))
	}
	if (next != "" || len(retiring) > 0) && !in.Force {
		return RotationState{}, RotationAudit{}, fmt.Errorf("%w: %s", ErrRotationInProgress, s.describePending(t, next, retiring))
	}

	signsAt := t.Add(in.Lead)
	audit := RotationAudit{At: t, Actor: actor, Action: RotationRotate, KID: kid, From: signer,
		SignsAt: timePtr(signsAt), RetireAt: timePtr(signsAt.Add(in.RetireAfter)), Reason: reason, Forced: in.Force,
		Cancelled: next}
	n, audit := s.applyRotation(audit, alg)
	return n, audit, nil
}

// checkRotateInput checks what a rotation request says regardless of the
// state, and returns its trimmed actor and reason.
func checkRotateInput(in RotateInput) (actor, reason string, err error) {
	actor, reason = strings.TrimSpace(in.Actor), strings.TrimSpace(in.Reason)
	switch {
	case actor == "" || len(actor) > maxActorLen:
		return "", "", fmt.Errorf("%w: the actor is required (at most %d bytes)", ErrRotationState, maxActorLen)
	case len(reason) > maxReasonLen:
		return "", "", fmt.Errorf("%w: the reason is longer than %d bytes", ErrRotationState, maxReasonLen)
	case in.Lead <= 0 || in.RetireAfter <= 0:
		return "", "", fmt.Errorf("%w: lead and retire-after must be positive", ErrRotationState)
	}
	return actor, reason, nil
}

// checkRotatingIn refuses a kid already in the state that cannot sign next:
// one signing, retired or already next, or one whose file in keys_dir is not
// the algorithm it was published as.
func (s *RotationState) checkRotatingIn(kid, alg string, t time.Time) error {
	k := s.Key(kid)
	if k == nil {
		return nil
	}
	switch k.StateAt(t) {
	case KeySigning:
		return fmt.Errorf("%w: kid %q", ErrAlreadySigning, kid)
	case KeyRetired:
		return fmt.Errorf("%w: kid %q was retired at %s; generate a new key", ErrKeyRetired, kid, k.RetireAt.Format(time.RFC3339))
	case KeyNext:
		return fmt.Errorf("%w: kid %q is already next and signs from %s", ErrRotationInProgress, kid, k.SignFrom.Format(time.RFC3339))
	}
	if k.Alg != alg {
		return fmt.Errorf("%w: kid %q in keys_dir is %s but was published as %s", ErrAlgorithmNotAllowed, kid, alg, k.Alg)
	}
	return nil
}

// applyRotation is the next state for a checked rotation: audit.KID (of
// algorithm alg) signs from audit.SignsAt, audit.From stops then and retires
// at audit.RetireAt, and a pending audit.Cancelled key is dropped.
func (s RotationState) applyRotation(audit RotationAudit, alg string) (RotationState, RotationAudit) {
	t, kid, next := audit.At, audit.KID, audit.Cancelled
	signsAt, retireAt := *audit.SignsAt, *audit.RetireAt
	n := s.Clone()
	if next != "" {
		// It never signed, so nothing depends on it, unless it was an old key
		// rotated back in whose earlier tokens may still be alive.
		nk := n.Key(next)
		nk.SignFrom = nil
		if nk.KeepUntil != nil && nk.KeepUntil.After(t) {
			nk.SignUntil, nk.RetireAt = timePtr(t), cloneTime(nk.KeepUntil)
		} else {
			nk.SignUntil, nk.RetireAt = nil, timePtr(t)
		}
	}
	c := n.Key(audit.From)
	c.SignUntil, c.RetireAt = timePtr(signsAt), timePtr(retireAt)
	if k := n.Key(kid); k != nil {
		// A retiring key coming back: still published, so only its signing
		// period is new; its old tokens keep it at least until KeepUntil.
		if k.RetireAt != nil && (k.KeepUntil == nil || k.RetireAt.After(*k.KeepUntil)) {
			k.KeepUntil = cloneTime(k.RetireAt)
		}
		k.SignFrom, k.SignUntil, k.RetireAt = timePtr(signsAt), nil, nil
	} else {
		n.Keys = append(n.Keys, KeySchedule{KID: kid, Alg: alg, PublishedAt: t, SignFrom: timePtr(signsAt)})
	}
	n.Version = s.Version + 1
	n.UpdatedAt, n.UpdatedBy = t, audit.Actor
	audit.Version = n.Version
	n.Audit = append([]RotationAudit{audit}, n.Audit...)
	n.prune(t)
	return n, audit
}

// newestCandidate is the last kid in sort order of available that is not the
// signer and not retired (kids from `keys generate` are UTC times, so the last
// is the newest).
func (s *RotationState) newestCandidate(available map[string]string, t time.Time, signer string) (string, error) {
	var kids []string
	for kid := range available {
		if kid == signer {
			continue
		}
		if k := s.Key(kid); k != nil && k.StateAt(t) == KeyRetired {
			continue
		}
		kids = append(kids, kid)
	}
	if len(kids) == 0 {
		return "", fmt.Errorf("%w: jwt.keys_dir holds no key besides the signing key %q; add one (tokenshift keys generate)", ErrUnknownKey, signer)
	}
	sort.Strings(kids)
	return kids[len(kids)-1], nil
}

func (s *RotationState) describePending(t time.Time, next string, retiring []string) string {
	var parts []string
	if next != "" {
		parts = append(parts, fmt.Sprintf("%s is next and signs from %s", next, s.Key(next).SignFrom.Format(time.RFC3339)))
	}
	for _, kid := range retiring {
		parts = append(parts, fmt.Sprintf("%s is retiring until %s", kid, s.Key(kid).RetireAt.Format(time.RFC3339)))
	}
	return strings.Join(parts, "; ") + " (wait, or force)"
}

// prune keeps the state small: the most recent retired keys (enough to
// refuse reusing a kid soon after it left) and the newest audit entries.
func (s *RotationState) prune(t time.Time) {
	var retired []int
	for i := range s.Keys {
		if s.Keys[i].StateAt(t) == KeyRetired {
			retired = append(retired, i)
		}
	}
	if extra := len(retired) - maxRetiredKept; extra > 0 {
		sort.Slice(retired, func(a, b int) bool {
			return s.Keys[retired[a]].RetireAt.Before(*s.Keys[retired[b]].RetireAt)
		})
		drop := map[int]bool{}
		for _, i := range retired[:extra] {
			drop[i] = true
		}
		kept := s.Keys[:0]
		for i, k := range s.Keys {
			if !drop[i] {
				kept = append(kept, k)
			}
		}
		s.Keys = kept
	}
	if len(s.Audit) > maxAuditKept {
		s.Audit = s.Audit[:maxAuditKept]
	}
}
