package token

import (
	"fmt"
	"slices"
	"time"
)

// ringStatus is what one rotation state and one reading of keys_dir give at
// one moment: the ring to use and what is wrong with it. buildRing computes
// it with no I/O, no clock and no logging, so what a key ring is at a moment
// can be tested as a table; the Rotator only decides what to log and whom to
// tell.
type ringStatus struct {
	ring *KeyRing // nil when no ring could be built
	keys []*Key   // what ring was built from, to detect changes cheaply
	// missing lists, sorted, the kids the state needs at that moment that
	// keys_dir lacks (or holds with another algorithm).
	missing []string
	// degraded says which key signs instead of a missing signing key.
	degraded string
	buildErr error
}

// buildRing is the ring for now from the state and the keys on disk. A key
// the state needs but the disk lacks is reported as missing; if that is the
// signing key, the key that signed most recently among those present signs
// instead (still published everywhere), and the instance reports not ready.
func buildRing(state *RotationState, dir keyDirScan, now time.Time) ringStatus {
	signer, err := state.SigningAt(now)
	if err != nil {
		return ringStatus{buildErr: err}
	}
	var out ringStatus
	for _, kid := range state.VerifyingAt(now) {
		dk, ok := dir.keys[kid]
		if !ok || dk.key.alg != state.Key(kid).Alg {
			out.missing = append(out.missing, kid)
			continue
		}
		out.keys = append(out.keys, dk.key)
	}
	if len(out.keys) == 0 {
		out.buildErr = fmt.Errorf("%w: none of the keys of rotation version %d (%v) is in %s", ErrKeysMissing, state.Version, state.VerifyingAt(now), dir.path)
		return out
	}
	use := signer
	if !slices.ContainsFunc(out.keys, func(k *Key) bool { return k.kid == signer }) {
		use = latestSigner(state, out.keys, now)
		out.degraded = fmt.Sprintf("signing key %q is missing from keys_dir; signing with %q instead", signer, use)
	}
	if out.ring, err = NewKeyRing(use, out.keys...); err != nil {
		out.ring, out.keys, out.buildErr = nil, nil, err
	}
	return out
}

// latestSigner is the key among have that signed most recently before now,
// or the last of have if none ever signed.
func latestSigner(state *RotationState, have []*Key, now time.Time) string {
	use := have[len(have)-1].kid
	var latest time.Time
	for _, k := range have {
		if s := state.Key(k.kid); s.SignFrom != nil && !s.SignFrom.After(now) && s.SignFrom.After(latest) {
			use, latest = k.kid, *s.SignFrom
		}
	}
	return use
}

// sameRing reports whether b would hand the token service the ring it has
// already: rebuilding from the same parsed keys with the same signer must
// not purge the verified-token cache.
func (s ringStatus) sameRing(b ringStatus) bool {
	return s.ring != nil && b.ring != nil && s.ring.SigningKID() == b.ring.SigningKID() && slices.Equal(s.keys, b.keys)
}

// rotatorStatus is everything a Rotator follows: the state, the last
// reading of keys_dir, whether the store answers, and the ring built from
// them. A published value is never modified; every change builds a new one
// and swaps it in whole, so a reader always sees one consistent picture.
type rotatorStatus struct {
	state        RotationState
	dir          keyDirScan
	dirErr       error // keys_dir could not be read at the last rescan
	storeFailing bool
	ringStatus   // on a failed build, ring and keys are the previous ones
}
