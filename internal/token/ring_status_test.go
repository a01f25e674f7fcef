package token

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// memDir is a reading of a keys_dir holding kid → algorithm, made in memory.
func memDir(t *testing.T, keys map[string]string) keyDirScan {
	t.Helper()
	scan := keyDirScan{path: "/etc/tokenshift/keys", keys: map[string]dirKey{}}
	for kid, alg := range keys {
		private, _, err := generatePrivate(alg)
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewKey(kid, private)
		if err != nil {
			t.Fatal(err)
		}
		scan.keys[kid] = dirKey{key: k, sum: sha256.Sum256([]byte(kid + alg))}
	}
	return scan
}

// TestBuildRing: the ring of one state and one keys_dir reading at one
// moment, with no store, clock or logger involved.
func TestBuildRing(t *testing.T) {
	// k1 signs from rotT0; a rotation at rotT0 brings k2 in: next until
	// rotT0+rotLead, then signing, while k1 retires rotRetire later.
	k1Signs := seeded(t, map[string]string{"k1": AlgEdDSA}, "k1")
	rotating, _ := rotate(t, k1Signs, RotateInput{KID: "k2", Available: twoEdKeys, Now: rotT0})
	// k0 is kept from before the state existed: it never signed in the plan.
	withOld := seeded(t, map[string]string{"k0": AlgEdDSA, "k1": AlgEdDSA}, "k1")
	beforeSwitch := rotT0.Add(time.Minute)
	afterSwitch := rotT0.Add(rotLead + time.Minute)
	afterRetire := rotT0.Add(rotLead + rotRetire + time.Minute)

	tests := []struct {
		name        string
		state       RotationState
		dir         map[string]string
		now         time.Time
		signing     string // "" = no ring
		kids        []string
		missing     []string
		degradedHas []string
		wantErr     error
		errHas      string
	}{
		{name: "every key present, next key published before it signs", state: rotating, dir: twoEdKeys, now: beforeSwitch,
			signing: "k1", kids: []string{"k1", "k2"}},
		{name: "the new key signs, the old one is still accepted", state: rotating, dir: twoEdKeys, now: afterSwitch,
			signing: "k2", kids: []string{"k1", "k2"}},
		{name: "a retired key leaves the ring though its file stays", state: rotating, dir: twoEdKeys, now: afterRetire,
			signing: "k2", kids: []string{"k2"}},
		{name: "a file the state does not know is not published", state: k1Signs, dir: twoEdKeys, now: afterSwitch,
			signing: "k1", kids: []string{"k1"}},
		{name: "next key missing: reported, nobody signs with it yet", state: rotating, dir: map[string]string{"k1": AlgEdDSA}, now: beforeSwitch,
			signing: "k1", kids: []string{"k1"}, missing: []string{"k2"}},
		{name: "signing key missing: the last key that signed signs instead", state: rotating, dir: map[string]string{"k1": AlgEdDSA}, now: afterSwitch,
			signing: "k1", kids: []string{"k1"}, missing: []string{"k2"}, degradedHas: []string{`"k2" is missing`, `signing with "k1"`}},
		{name: "signing key missing and none present ever signed: the last present key", state: withOld, dir: map[string]string{"k0": AlgEdDSA}, now: rotT0,
			signing: "k0", kids: []string{"k0"}, missing: []string{"k1"}, degradedHas: []string{`"k1" is missing`, `signing with "k0"`}},
		{name: "a file with another algorithm counts as missing", state: rotating, dir: map[string]string{"k1": AlgEdDSA, "k2": AlgES256}, now: beforeSwitch,
			signing: "k1", kids: []string{"k1"}, missing: []string{"k2"}},
		{name: "no key of the state present", state: rotating, dir: map[string]string{"k9": AlgEdDSA}, now: beforeSwitch,
			missing: []string{"k1", "k2"}, wantErr: ErrKeysMissing, errHas: "/etc/tokenshift/keys"},
		{name: "a state where nobody signs is corrupt", state: RotationState{Version: 7}, dir: twoEdKeys, now: beforeSwitch,
			wantErr: ErrRotationState, errHas: "version 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildRing(&tt.state, memDir(t, tt.dir), tt.now)
			if tt.wantErr != nil {
				if !errors.Is(got.buildErr, tt.wantErr) || !strings.Contains(got.buildErr.Error(), tt.errHas) {
					t.Fatalf("buildErr = %v; want %v naming %q", got.buildErr, tt.wantErr, tt.errHas)
				}
			} else if got.buildErr != nil {
				t.Fatalf("buildErr = %v", got.buildErr)
			}
			if (got.ring == nil) != (tt.signing == "") {
				t.Fatalf("ring = %v; want one signing with %q", got.ring, tt.signing)
			}
			if got.ring != nil {
				if got.ring.SigningKID() != tt.signing || !slices.Equal(got.ring.KIDs(), tt.kids) {
					t.Errorf("ring signs with %s over %v; want %s over %v", got.ring.SigningKID(), got.ring.KIDs(), tt.signing, tt.kids)
				}
				var built []string
				for _, k := range got.keys {
					built = append(built, k.KID())
				}
				if !slices.Equal(built, tt.kids) {
					t.Errorf("keys = %v; want what the ring holds, %v", built, tt.kids)
				}
			} else if got.keys != nil {
				t.Errorf("keys = %v without a ring", got.keys)
			}
			if !slices.Equal(got.missing, tt.missing) {
				t.Errorf("missing = %v; want %v", got.missing, tt.missing)
			}
			if (got.degraded == "") != (len(tt.degradedHas) == 0) {
				t.Errorf("degraded = %q; want one naming %q", got.degraded, tt.degradedHas)
			}
			for _, s := range tt.degradedHas {
				if !strings.Contains(got.degraded, s) {
					t.Errorf("degraded = %q; want it to say %q", got.degraded, s)
				}
			}
		})
	}
}

// TestBuildRingSameRing: rebuilding from an unchanged reading gives the ring
// the service has (so its verified-token cache is kept); a new signer or a
// new key does not.
func TestBuildRingSameRing(t *testing.T) {
	k1Signs := seeded(t, map[string]string{"k1": AlgEdDSA}, "k1")
	rotating, _ := rotate(t, k1Signs, RotateInput{KID: "k2", Available: twoEdKeys, Now: rotT0})
	dir := memDir(t, twoEdKeys)
	before := buildRing(&rotating, dir, rotT0.Add(time.Second))
	tests := []struct {
		name  string
		next  ringStatus
		wantS bool
	}{
		{name: "same reading, same moment", next: buildRing(&rotating, dir, rotT0.Add(time.Second)), wantS: true},
		{name: "same reading, later but before the switch", next: buildRing(&rotating, dir, rotT0.Add(rotLead-time.Second)), wantS: true},
		{name: "the switch", next: buildRing(&rotating, dir, rotT0.Add(rotLead)), wantS: false},
		{name: "the key files read again", next: buildRing(&rotating, memDir(t, twoEdKeys), rotT0.Add(time.Second)), wantS: false},
		{name: "the state before the rotation", next: buildRing(&k1Signs, dir, rotT0.Add(time.Second)), wantS: false},
		{name: "no ring", next: ringStatus{}, wantS: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := before.sameRing(tt.next); got != tt.wantS {
				t.Errorf("sameRing = %v, want %v", got, tt.wantS)
			}
		})
	}
}
