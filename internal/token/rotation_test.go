package token

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	rotT0       = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rotLead     = 5*time.Minute + 5*time.Second
	rotRetire   = 15*time.Minute + 5*time.Second
	twoEdKeys   = map[string]string{"k1": AlgEdDSA, "k2": AlgEdDSA}
	threeEdKeys = map[string]string{"k1": AlgEdDSA, "k2": AlgEdDSA, "k3": AlgEdDSA}
)

func seeded(t *testing.T, available map[string]string, signing string) RotationState {
	t.Helper()
	s, err := SeedRotation(available, signing, rotT0, rotRetire, "test")
	if err != nil {
		t.Fatalf("SeedRotation: %v", err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("seeded state invalid: %v", err)
	}
	return s
}

func rotate(t *testing.T, s RotationState, in RotateInput) (RotationState, RotationAudit) {
	t.Helper()
	if in.Lead == 0 {
		in.Lead = rotLead
	}
	if in.RetireAfter == 0 {
		in.RetireAfter = rotRetire
	}
	if in.Actor == "" {
		in.Actor = "ops@example.com"
	}
	n, a, err := s.Rotate(in)
	if err != nil {
		t.Fatalf("Rotate(%+v): %v", in, err)
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("rotated state invalid: %v", err)
	}
	return n, a
}

func statesAt(s *RotationState, t time.Time) map[string]KeyState {
	out := map[string]KeyState{}
	for i := range s.Keys {
		out[s.Keys[i].KID] = s.Keys[i].StateAt(t)
	}
	return out
}

func TestSeedRotation(t *testing.T) {
	tests := []struct {
		name      string
		available map[string]string
		signing   string
		wantSign  string
		wantErr   error
	}{
		{name: "last kid in sort order signs", available: threeEdKeys, wantSign: "k3"},
		{name: "configured kid signs", available: threeEdKeys, signing: "k1", wantSign: "k1"},
		{name: "configured kid missing", available: twoEdKeys, signing: "k9", wantErr: ErrUnknownKey},
		{name: "no keys", available: map[string]string{}, wantErr: ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := SeedRotation(tt.available, tt.signing, rotT0, rotRetire, "test")
			if tt.wantErr != nil {
				wantSentinel(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.SigningAt(rotT0); err != nil || got != tt.wantSign {
				t.Fatalf("signing = %q, %v; want %q", got, err, tt.wantSign)
			}
			// The others may have signed before the state existed: retiring
			// for retire-after, then gone.
			for kid, st := range statesAt(&s, rotT0) {
				if kid != tt.wantSign && st != KeyRetiring {
					t.Errorf("%s is %s at seed; want retiring", kid, st)
				}
			}
			if got := s.VerifyingAt(rotT0.Add(rotRetire)); !slices.Equal(got, []string{tt.wantSign}) {
				t.Errorf("verifying after retire-after = %v; want only %s", got, tt.wantSign)
			}
			if s.Version != 1 || len(s.Audit) != 1 || s.Audit[0].Action != RotationSeed {
				t.Errorf("seed version/audit: %d %+v", s.Version, s.Audit)
			}
		})
	}
}

// TestRotationLifecycle walks one rotation through time: publish → signing →
// retiring → retired, checking who signs and who is published at the edges.
func TestRotationLifecycle(t *testing.T) {
	s := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	s, audit := rotate(t, s, RotateInput{KID: "k2", Available: twoEdKeys, Now: rotT0, Reason: "yearly"})
	signsAt, retireAt := rotT0.Add(rotLead), rotT0.Add(rotLead+rotRetire)
	if audit.KID != "k2" || audit.From != "k1" || !audit.SignsAt.Equal(signsAt) || !audit.RetireAt.Equal(retireAt) ||
		audit.Actor != "ops@example.com" || audit.Reason != "yearly" || audit.Version != 2 || s.Version != 2 {
		t.Fatalf("audit = %+v (version %d)", audit, s.Version)
	}
	if s.Audit[0] != audit {
		t.Fatalf("newest audit entry first: %+v", s.Audit)
	}
	steps := []struct {
		name      string
		at        time.Time
		signing   string
		verifying []string
		states    map[string]KeyState
		progress  bool
	}{
		{name: "published at once", at: rotT0, signing: "k1", verifying: []string{"k1", "k2"},
			states: map[string]KeyState{"k1": KeySigning, "k2": KeyNext}, progress: true},
		{name: "just before it signs", at: signsAt.Add(-time.Nanosecond), signing: "k1", verifying: []string{"k1", "k2"},
			states: map[string]KeyState{"k1": KeySigning, "k2": KeyNext}, progress: true},
		{name: "signs after lead", at: signsAt, signing: "k2", verifying: []string{"k1", "k2"},
			states: map[string]KeyState{"k1": KeyRetiring, "k2": KeySigning}, progress: true},
		{name: "old key kept until its tokens expired", at: retireAt.Add(-time.Nanosecond), signing: "k2", verifying: []string{"k1", "k2"},
			states: map[string]KeyState{"k1": KeyRetiring, "k2": KeySigning}, progress: true},
		{name: "old key retired", at: retireAt, signing: "k2", verifying: []string{"k2"},
			states: map[string]KeyState{"k1": KeyRetired, "k2": KeySigning}, progress: false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if got, err := s.SigningAt(st.at); err != nil || got != st.signing {
				t.Errorf("signing = %q, %v; want %q", got, err, st.signing)
			}
			if got := s.VerifyingAt(st.at); !slices.Equal(got, st.verifying) {
				t.Errorf("verifying = %v; want %v", got, st.verifying)
			}
			if got := statesAt(&s, st.at); fmt.Sprint(got) != fmt.Sprint(st.states) {
				t.Errorf("states = %v; want %v", got, st.states)
			}
			if got := s.InProgressAt(st.at); got != st.progress {
				t.Errorf("in progress = %v; want %v", got, st.progress)
			}
		})
	}
	// An instance sleeps until exactly the next planned change.
	for _, c := range []struct{ after, want time.Time }{
		{rotT0, signsAt}, {signsAt, retireAt},
	} {
		if got, ok := s.NextChangeAfter(c.after); !ok || !got.Equal(c.want) {
			t.Errorf("NextChangeAfter(%s) = %s, %v; want %s", c.after, got, ok, c.want)
		}
	}
	if _, ok := s.NextChangeAfter(retireAt); ok {
		t.Error("nothing is planned after the retirement")
	}
}

func TestRotateRefusals(t *testing.T) {
	base := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	retired := func() RotationState {
		s, _ := rotate(t, base, RotateInput{KID: "k2", Available: twoEdKeys, Now: rotT0})
		s, _ = rotate(t, s, RotateInput{KID: "k3", Available: threeEdKeys, Now: rotT0.Add(rotLead + rotRetire)})
		return s
	}()
	afterRetired := rotT0.Add(2 * (rotLead + rotRetire))
	pending, _ := rotate(t, base, RotateInput{KID: "k2", Available: twoEdKeys, Now: rotT0})
	tests := []struct {
		name    string
		state   RotationState
		in      RotateInput
		wantErr error
		detail  string
	}{
		{name: "kid not in keys_dir", state: base, in: RotateInput{KID: "k9", Available: twoEdKeys}, wantErr: ErrUnknownKey, detail: "k9"},
		{name: "nothing to rotate to", state: base, in: RotateInput{Available: map[string]string{"k1": AlgEdDSA}}, wantErr: ErrUnknownKey, detail: "keys generate"},
		{name: "other algorithm than the signer's", state: base, in: RotateInput{KID: "ec", Available: map[string]string{"k1": AlgEdDSA, "ec": AlgES256}}, wantErr: ErrAlgorithmNotAllowed, detail: "ES256"},
		{name: "algorithm outside the allowed list", state: base, in: RotateInput{KID: "hs", Allowed: []string{AlgEdDSA, AlgES256}, Available: map[string]string{"k1": AlgEdDSA, "hs": AlgHS256}}, wantErr: ErrAlgorithmNotAllowed, detail: "HS256"},
		{name: "already signing", state: base, in: RotateInput{KID: "k1", Available: twoEdKeys}, wantErr: ErrAlreadySigning},
		{name: "in progress", state: pending, in: RotateInput{KID: "k3", Available: threeEdKeys}, wantErr: ErrRotationInProgress, detail: "k2 is next"},
		{name: "still retiring", state: pending, in: RotateInput{KID: "k3", Available: threeEdKeys, Now: rotT0.Add(rotLead)}, wantErr: ErrRotationInProgress, detail: "k1 is retiring"},
		{name: "already next, even forced", state: pending, in: RotateInput{KID: "k2", Available: twoEdKeys, Force: true}, wantErr: ErrRotationInProgress},
		{name: "retired kid never returns", state: retired, in: RotateInput{KID: "k1", Available: threeEdKeys, Now: afterRetired}, wantErr: ErrKeyRetired},
		{name: "no actor", state: base, in: RotateInput{KID: "k2", Available: twoEdKeys, Actor: " "}, wantErr: ErrRotationState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in.Now.IsZero() {
				in.Now = rotT0
			}
			in.Lead, in.RetireAfter = rotLead, rotRetire
			if in.Actor == "" {
				in.Actor = "ops@example.com"
			}
			before := tt.state.Clone()
			_, _, err := tt.state.Rotate(in)
			wantSentinel(t, err, tt.wantErr)
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
			if fmt.Sprint(before) != fmt.Sprint(tt.state) {
				t.Error("a refused rotation changed the state")
			}
		})
	}
}

func TestRotateAllowedAlgorithm(t *testing.T) {
	s := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	n, _ := rotate(t, s, RotateInput{KID: "ec", Allowed: []string{AlgEdDSA, AlgES256}, Available: map[string]string{"k1": AlgEdDSA, "ec": AlgES256}, Now: rotT0})
	if n.Key("ec").Alg != AlgES256 {
		t.Fatalf("ec = %+v", n.Key("ec"))
	}
}

func TestRotateDefaultKID(t *testing.T) {
	s := seeded(t, map[string]string{"20300101T000000Z": AlgEdDSA}, "")
	avail := map[string]string{"20300101T000000Z": AlgEdDSA, "20290101T000000Z": AlgEdDSA, "20310101T000000Z": AlgEdDSA}
	_, a := rotate(t, s, RotateInput{Available: avail, Now: rotT0})
	if a.KID != "20310101T000000Z" {
		t.Fatalf("default kid = %s; want the newest", a.KID)
	}
	// The newest non-signing one even when the signer sorts last.
	s = seeded(t, map[string]string{"z": AlgEdDSA}, "")
	_, a = rotate(t, s, RotateInput{Available: map[string]string{"z": AlgEdDSA, "a": AlgEdDSA, "b": AlgEdDSA}, Now: rotT0})
	if a.KID != "b" {
		t.Fatalf("default kid = %s; want b", a.KID)
	}
}

// A forced rotation while the next key is pending drops it: it never signed.
func TestForceReplacesPendingKey(t *testing.T) {
	s := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	s, _ = rotate(t, s, RotateInput{KID: "k2", Available: threeEdKeys, Now: rotT0})
	later := rotT0.Add(time.Minute)
	s, a := rotate(t, s, RotateInput{KID: "k3", Available: threeEdKeys, Now: later, Force: true, Reason: "k2 leaked"})
	if a.Cancelled != "k2" || !a.Forced || a.From != "k1" {
		t.Fatalf("audit = %+v", a)
	}
	if got := statesAt(&s, later); got["k2"] != KeyRetired || got["k1"] != KeySigning || got["k3"] != KeyNext {
		t.Fatalf("states = %v", got)
	}
	if got, _ := s.SigningAt(rotT0.Add(rotLead)); got != "k1" {
		t.Fatalf("the dropped key's planned start must not make it sign: %s", got)
	}
	if got, _ := s.SigningAt(later.Add(rotLead)); got != "k3" {
		t.Fatalf("signing after the new lead = %s", got)
	}
	if got := s.VerifyingAt(later.Add(rotLead + rotRetire)); !slices.Equal(got, []string{"k3"}) {
		t.Fatalf("verifying at the end = %v", got)
	}
}

// A forced rotation while an old key retires keeps that key's schedule.
func TestForceWhileRetiring(t *testing.T) {
	s := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	s, _ = rotate(t, s, RotateInput{KID: "k2", Available: threeEdKeys, Now: rotT0})
	t1 := rotT0.Add(rotLead + time.Minute) // k2 signs, k1 retiring
	s, _ = rotate(t, s, RotateInput{KID: "k3", Available: threeEdKeys, Now: t1, Force: true, Reason: "again"})
	k1Retire := rotT0.Add(rotLead + rotRetire)
	if !s.Key("k1").RetireAt.Equal(k1Retire) {
		t.Fatalf("k1 retire moved: %v", s.Key("k1").RetireAt)
	}
	if got := statesAt(&s, t1.Add(rotLead)); got["k1"] != KeyRetiring || got["k2"] != KeyRetiring || got["k3"] != KeySigning {
		t.Fatalf("states = %v", got)
	}
}

// Rotating back to a retiring key, then cancelling that, must not drop the
// key while tokens from its first life are alive.
func TestRollbackToRetiringKeyThenCancel(t *testing.T) {
	s := seeded(t, map[string]string{"k1": AlgEdDSA}, "")
	s, _ = rotate(t, s, RotateInput{KID: "k2", Available: threeEdKeys, Now: rotT0})
	k1Retire := *s.Key("k1").RetireAt
	t1 := rotT0.Add(rotLead + time.Minute)
	s, a := rotate(t, s, RotateInput{KID: "k1", Available: threeEdKeys, Now: t1, Force: true, Reason: "k2 breaks a partner"})
	if a.KID != "k1" || a.From != "k2" || statesAt(&s, t1)["k1"] != KeyNext {
		t.Fatalf("rollback: %+v %v", a, statesAt(&s, t1))
	}
	t2 := t1.Add(time.Minute)
	s, a = rotate(t, s, RotateInput{KID: "k3", Available: threeEdKeys, Now: t2, Force: true, Reason: "use a fresh key instead"})
	if a.Cancelled != "k1" {
		t.Fatalf("audit = %+v", a)
	}
	if st := statesAt(&s, t2)["k1"]; st != KeyRetiring {
		t.Fatalf("k1 = %s right after the cancel; its old tokens still need it", st)
	}
	if got := s.Key("k1").StateAt(k1Retire.Add(-time.Nanosecond)); got != KeyRetiring {
		t.Fatalf("k1 before its original retirement = %s", got)
	}
	if got := s.Key("k1").StateAt(k1Retire); got != KeyRetired {
		t.Fatalf("k1 at its original retirement = %s", got)
	}
}

func TestPruneBoundsState(t *testing.T) {
	avail := map[string]string{"k000": AlgEdDSA}
	s := seeded(t, avail, "")
	now := rotT0
	for i := 1; i <= 30; i++ {
		kid := fmt.Sprintf("k%03d", i)
		avail[kid] = AlgEdDSA
		s, _ = rotate(t, s, RotateInput{KID: kid, Available: avail, Now: now})
		now = now.Add(rotLead + rotRetire)
	}
	last := now.Add(-(rotLead + rotRetire)) // when the last rotation pruned
	retired := 0
	for i := range s.Keys {
		if s.Keys[i].StateAt(last) == KeyRetired {
			retired++
		}
	}
	if retired != maxRetiredKept {
		t.Fatalf("kept %d retired keys; want %d", retired, maxRetiredKept)
	}
	if s.Key("k028") == nil || s.Key("k000") != nil {
		t.Fatal("prune must drop the oldest retired keys")
	}
	if len(s.Audit) > maxAuditKept {
		t.Fatalf("audit has %d entries", len(s.Audit))
	}
}

func TestRotationStateValidate(t *testing.T) {
	later := rotT0.Add(time.Hour)
	tests := []struct {
		name string
		s    RotationState
	}{
		{name: "no version", s: RotationState{Keys: []KeySchedule{{KID: "k1", Alg: AlgEdDSA}}}},
		{name: "no keys", s: RotationState{Version: 1}},
		{name: "bad kid", s: RotationState{Version: 1, Keys: []KeySchedule{{KID: "../x", Alg: AlgEdDSA}}}},
		{name: "duplicate kid", s: RotationState{Version: 1, Keys: []KeySchedule{{KID: "k1", Alg: AlgEdDSA}, {KID: "k1", Alg: AlgEdDSA}}}},
		{name: "unknown alg", s: RotationState{Version: 1, Keys: []KeySchedule{{KID: "k1", Alg: "none"}}}},
		{name: "stops before it starts", s: RotationState{Version: 1, Keys: []KeySchedule{{KID: "k1", Alg: AlgEdDSA, SignFrom: &later, SignUntil: &rotT0}}}},
		{name: "retired before it stops", s: RotationState{Version: 1, Keys: []KeySchedule{{KID: "k1", Alg: AlgEdDSA, SignUntil: &later, RetireAt: &rotT0}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); !errors.Is(err, ErrRotationState) {
				t.Fatalf("Validate = %v; want ErrRotationState", err)
			}
		})
	}
	// Two signers at once is only visible at a time.
	two := RotationState{Version: 1, Keys: []KeySchedule{{KID: "a", Alg: AlgEdDSA, SignFrom: &rotT0}, {KID: "b", Alg: AlgEdDSA, SignFrom: &rotT0}}}
	if _, err := two.SigningAt(later); !errors.Is(err, ErrRotationState) {
		t.Fatalf("SigningAt with two signers = %v", err)
	}
}
