package token

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// KeysView is GET /admin/keys: every key with its state at Now, the live
// instances' reports and any problem found.
type KeysView struct {
	Version            int64            `json:"version"`
	Now                time.Time        `json:"now"`
	Signing            string           `json:"signing"`
	RotationInProgress bool             `json:"rotation_in_progress"`
	PublishDelay       string           `json:"publish_delay,omitempty"`
	RetireAfter        string           `json:"retire_after,omitempty"`
	Keys               []KeyView        `json:"keys"`
	Instances          []InstanceReport `json:"instances"`
	// Problems is empty when every instance has every key it needs.
	Problems []string        `json:"problems"`
	Audit    []RotationAudit `json:"audit"`
	// Rotation is the change just made (POST /admin/keys/rotate only).
	Rotation *RotationAudit `json:"rotation,omitempty"`
}

// KeyView is one key. Since and Until bound its current state: for next,
// until is when it starts signing; for retiring, when it is retired.
type KeyView struct {
	KID       string     `json:"kid"`
	Alg       string     `json:"alg"`
	State     KeyState   `json:"state"`
	Since     *time.Time `json:"since,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
	Published bool       `json:"published"`   // in the JWKS (never for HS256)
	InKeysDir bool       `json:"in_keys_dir"` // on the answering instance
}

var stateOrder = map[KeyState]int{KeySigning: 0, KeyNext: 1, KeyRetiring: 2, KeyAvailable: 3, KeyRetired: 4}

func sortKeyViews(keys []KeyView) {
	sort.SliceStable(keys, func(i, j int) bool {
		if a, b := stateOrder[keys[i].State], stateOrder[keys[j].State]; a != b {
			return a < b
		}
		return keys[i].KID > keys[j].KID // newest first within a state
	})
}

// StaticKeys serves the key listing of a ring that does not rotate: the
// ephemeral development key, when jwt.keys_dir is empty.
type StaticKeys struct {
	Ring  func() *KeyRing
	Clock func() time.Time
}

// Keys lists the ring's keys; the signing one signs, others are published.
func (s StaticKeys) Keys(context.Context) (KeysView, error) {
	ring := s.Ring()
	now := time.Now
	if s.Clock != nil {
		now = s.Clock
	}
	v := KeysView{Now: now().UTC(), Signing: ring.SigningKID(), Instances: []InstanceReport{}, Audit: []RotationAudit{},
		Problems: []string{"jwt.keys_dir is not set: this instance signs with an ephemeral development key"}}
	for _, kid := range ring.KIDs() {
		k := ring.Key(kid)
		st := KeyNext
		if kid == ring.SigningKID() {
			st = KeySigning
		}
		v.Keys = append(v.Keys, KeyView{KID: kid, Alg: k.Alg(), State: st, Published: !k.Symmetric()})
	}
	sortKeyViews(v.Keys)
	return v, nil
}

// Rotate always fails: there are no key files to rotate to.
func (s StaticKeys) Rotate(context.Context, RotateRequest) (KeysView, error) {
	return KeysView{}, fmt.Errorf("%w: jwt.keys_dir is not set; this instance signs with an ephemeral development key and has no key files to rotate to", ErrUnknownKey)
}
