package main

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/tokenshift/tokenshift/featureflags"
)

func ptr[T any](v T) *T { return &v }

// TestPhasePatch: the body of PUT /admin/flags that `phase set` sends, as
// JSON, from the flags it just read. Only what the operator gave is in it;
// the override map and the exempt list are sent whole, edited, because the
// API replaces them; phase names go as typed, for the server to judge.
func TestPhasePatch(t *testing.T) {
	current := featureflags.State{
		Version:       7,
		Phase:         featureflags.PhaseDual,
		Clients:       map[string]featureflags.ClientRule{"mobile": {Phase: featureflags.PhaseRetiring}},
		ExemptClients: []string{"kiosk"},
	}
	tests := []struct {
		name    string
		args    phaseSetArgs
		want    string
		wantErr string
	}{
		{name: "global phase", args: phaseSetArgs{Phase: ptr("prefer-jwt"), Reason: "announce"},
			want: `{"version":7,"reason":"announce","force":false,"phase":"prefer-jwt"}`},
		{name: "a phase name is the server's to judge", args: phaseSetArgs{Phase: ptr("bogus")},
			want: `{"version":7,"reason":"","force":false,"phase":"bogus"}`},
		{name: "client override kept beside the others", args: phaseSetArgs{Phase: ptr("jwt-only"), Client: "web", Force: true, Reason: "bots"},
			want: `{"version":7,"reason":"bots","force":true,"clients":{"mobile":{"phase":"retiring"},"web":{"phase":"jwt-only"}}}`},
		{name: "client override replaced", args: phaseSetArgs{Phase: ptr("jwt-only"), Client: "mobile"},
			want: `{"version":7,"reason":"","force":false,"clients":{"mobile":{"phase":"jwt-only"}}}`},
		{name: "inherit drops the last override: an empty map, not an absent one", args: phaseSetArgs{Phase: ptr("inherit"), Client: "mobile"},
			want: `{"version":7,"reason":"","force":false,"clients":{}}`},
		{name: "inherit needs a client", args: phaseSetArgs{Phase: ptr("inherit")}, wantErr: "inherit needs --client"},
		{name: "rollout zero is sent", args: phaseSetArgs{Rollout: ptr(0.0)},
			want: `{"version":7,"reason":"","force":false,"rollout":0}`},
		{name: "phase and rollout", args: phaseSetArgs{Phase: ptr("retiring"), Rollout: ptr(5.0), Reason: "first 5%"},
			want: `{"version":7,"reason":"first 5%","force":false,"phase":"retiring","rollout":5}`},
		{name: "exempt add keeps the list and adds once", args: phaseSetArgs{Exempt: true, ExemptAdd: []string{"kiosk", "spa", "spa"}},
			want: `{"version":7,"reason":"","force":false,"exempt_clients":["kiosk","spa"]}`},
		{name: "exempt remove of the last one sends an empty list", args: phaseSetArgs{Exempt: true, ExemptRemove: []string{"kiosk"}},
			want: `{"version":7,"reason":"","force":false,"exempt_clients":[]}`},
		{name: "exempt add and remove", args: phaseSetArgs{Exempt: true, ExemptAdd: []string{"tv"}, ExemptRemove: []string{"kiosk"}},
			want: `{"version":7,"reason":"","force":false,"exempt_clients":["tv"]}`},
		{name: "sunset date", args: phaseSetArgs{Sunset: ptr("2027-06-30T00:00:00Z")},
			want: `{"version":7,"reason":"","force":false,"sunset":"2027-06-30T00:00:00Z"}`},
		{name: "sunset none clears it", args: phaseSetArgs{Sunset: ptr("none")},
			want: `{"version":7,"reason":"","force":false,"sunset":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := current.Clone()
			p, err := phasePatch(cur, tt.args)
			if tt.wantErr != "" {
				var ue usageError
				if err == nil || err.Error() != tt.wantErr || !errors.As(err, &ue) {
					t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("patch\n got %s\nwant %s", got, tt.want)
			}
			// Pure: the flags it was made from are left as they were.
			if !cur.EqualSettings(&current) || cur.Version != current.Version || !slices.Equal(cur.ExemptClients, current.ExemptClients) {
				t.Errorf("phasePatch changed the current flags: %+v", cur)
			}
		})
	}
}

// TestPhaseSetArgsCheck: what is refused before the command logs in.
func TestPhaseSetArgsCheck(t *testing.T) {
	tests := []struct {
		name    string
		args    phaseSetArgs
		wantErr string
	}{
		{name: "nothing to change", args: phaseSetArgs{Reason: "r", Force: true},
			wantErr: "nothing to change: give a PHASE, --rollout, --exempt-add, --exempt-remove or --sunset"},
		{name: "client without a phase", args: phaseSetArgs{Client: "web", Rollout: ptr(5.0)}, wantErr: "--client needs a PHASE (or inherit)"},
		{name: "phase", args: phaseSetArgs{Phase: ptr("dual")}},
		{name: "empty phase argument is still an argument", args: phaseSetArgs{Phase: ptr("")}},
		{name: "rollout", args: phaseSetArgs{Rollout: ptr(0.0)}},
		{name: "exemptions, even empty", args: phaseSetArgs{Exempt: true}},
		{name: "sunset", args: phaseSetArgs{Sunset: ptr("none")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.args.check()
			var ue usageError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr || !errors.As(err, &ue)):
				t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
			}
		})
	}
}
