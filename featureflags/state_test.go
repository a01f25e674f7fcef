package featureflags

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var known = []string{"web", "spa", "mobile"}

func TestValidate(t *testing.T) {
	early := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	late := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	valid := func() State {
		return State{Phase: PhaseDual, Clients: map[string]ClientRule{"mobile": {Phase: PhaseJWTOnly}}, Rollout: 25,
			ExemptClients: []string{"web"}, DeprecatedAt: &early, Sunset: &late, DocsURL: "https://docs.example.com/m?x=1#y"}
	}
	tests := []struct {
		name    string
		edit    func(s *State)
		known   []string
		wantErr []string // fragments of the message; nil = valid
	}{
		{name: "valid", edit: func(*State) {}},
		{name: "unknown clients allowed without a registry", edit: func(s *State) { s.Clients["tv"] = ClientRule{Phase: PhaseDual} }, known: []string{}},
		{name: "missing phase", edit: func(s *State) { s.Phase = 0 }, wantErr: []string{"phase: (missing)"}},
		{name: "bad phase", edit: func(s *State) { s.Phase = 7 }, wantErr: []string{"phase: 7"}},
		{name: "negative version", edit: func(s *State) { s.Version = -1 }, wantErr: []string{"version: -1"}},
		{name: "unknown override client", edit: func(s *State) { s.Clients["tv"] = ClientRule{Phase: PhaseDual} }, wantErr: []string{`clients["tv"]: "tv" is not a registered client (known: web, spa, mobile)`}},
		{name: "override without phase", edit: func(s *State) { s.Clients["spa"] = ClientRule{} }, wantErr: []string{`clients["spa"].phase: (missing)`}},
		{name: "empty client id", edit: func(s *State) { s.Clients[""] = ClientRule{Phase: PhaseDual} }, wantErr: []string{`clients: "" is not a client id`}},
		{name: "rollout above 100", edit: func(s *State) { s.Rollout = 100.5 }, wantErr: []string{"rollout: 100.5 must be a percentage"}},
		{name: "rollout negative", edit: func(s *State) { s.Rollout = -3 }, wantErr: []string{"rollout: -3"}},
		{name: "rollout NaN", edit: func(s *State) { s.Rollout = math.NaN() }, wantErr: []string{"rollout: NaN"}},
		{name: "seed too long", edit: func(s *State) { s.RolloutSeed = strings.Repeat("x", 201) }, wantErr: []string{"rollout_seed: (201 bytes)"}},
		{name: "unknown exempt client", edit: func(s *State) { s.ExemptClients = []string{"web", "tv"} }, wantErr: []string{`exempt_clients[1]: "tv" is not a registered client`}},
		{name: "duplicate exempt client", edit: func(s *State) { s.ExemptClients = []string{"web", "web"} }, wantErr: []string{`exempt_clients[1]: "web" is listed twice`}},
		{name: "sunset before deprecation", edit: func(s *State) { s.Sunset, s.DeprecatedAt = &early, &late }, wantErr: []string{"sunset: 2026-01-01T00:00:00Z is before deprecated_at 2026-06-01T00:00:00Z"}},
		{name: "zero sunset", edit: func(s *State) { s.Sunset = &time.Time{} }, wantErr: []string{"sunset: 0001-01-01T00:00:00Z is the zero time"}},
		{name: "docs url not http", edit: func(s *State) { s.DocsURL = "javascript:alert(1)" }, wantErr: []string{`docs_url: "javascript:alert(1)" must be an absolute http or https URL`}},
		{name: "docs url relative", edit: func(s *State) { s.DocsURL = "/docs" }, wantErr: []string{"docs_url"}},
		{name: "docs url header injection", edit: func(s *State) { s.DocsURL = "https://a.test/\r\nSet-Cookie: x=y" }, wantErr: []string{"docs_url", "control characters"}},
		{name: "docs url breaks out of Link brackets", edit: func(s *State) { s.DocsURL = `https://a.test/>; rel="next"` }, wantErr: []string{"docs_url"}},
		{name: "every problem is reported", edit: func(s *State) { s.Phase = 0; s.Rollout = 101 }, wantErr: []string{"phase: (missing)", "rollout: 101"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.edit(&s)
			reg := known
			if tt.known != nil {
				reg = tt.known
			}
			err := s.Validate(reg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("Validate = %v, want an error wrapping ErrInvalidState", err)
			}
			for _, frag := range tt.wantErr {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q does not mention %q", err, frag)
				}
			}
		})
	}
}

func TestCloneSharesNothing(t *testing.T) {
	sunset := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	orig := State{Phase: PhaseDual, Clients: map[string]ClientRule{"web": {Phase: PhaseDual}}, ExemptClients: []string{"spa"}, Sunset: &sunset}
	c := orig.Clone()
	c.Clients["web"] = ClientRule{Phase: PhaseJWTOnly}
	c.ExemptClients[0] = "mobile"
	*c.Sunset = sunset.Add(time.Hour)
	if orig.Clients["web"].Phase != PhaseDual || orig.ExemptClients[0] != "spa" || !orig.Sunset.Equal(sunset) {
		t.Errorf("modifying the clone changed the original: %+v", orig)
	}
	if !orig.EqualSettings(ptr(orig.Clone())) {
		t.Errorf("a fresh clone does not have equal settings")
	}
	if orig.EqualSettings(&c) {
		t.Errorf("EqualSettings misses the differences of a modified clone")
	}
}

func TestEqualSettings(t *testing.T) {
	a := State{Phase: PhaseDual, Version: 1, UpdatedBy: "x"}
	b := State{Phase: PhaseDual, Version: 9, UpdatedBy: "y", Clients: map[string]ClientRule{}, ExemptClients: []string{}, UpdatedAt: time.Now()}
	if !a.EqualSettings(&b) {
		t.Errorf("states differing only in version/updated_* and nil vs empty collections are not equal")
	}
	b.ExemptClients = []string{"web"}
	if a.EqualSettings(&b) {
		t.Errorf("different exempt clients compare equal")
	}
}

func TestStateJSON(t *testing.T) {
	sunset := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	s := State{Version: 4, Phase: PhasePreferJWT, Clients: map[string]ClientRule{"mobile": {Phase: PhaseJWTOnly}},
		Rollout: 12.5, RolloutSeed: "s", ExemptClients: []string{}, Sunset: &sunset}
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"version":4`, `"phase":"prefer-jwt"`, `"clients":{"mobile":{"phase":"jwt-only"}}`, `"rollout":12.5`, `"exempt_clients":[]`, `"sunset":"2026-06-01T00:00:00Z"`} {
		if !strings.Contains(string(raw), frag) {
			t.Errorf("JSON %s lacks %s", raw, frag)
		}
	}
	var back State
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !back.EqualSettings(&s) || back.Version != s.Version {
		t.Errorf("round trip changed the state: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"phase":"sideways"}`), &back); err == nil {
		t.Errorf("an unknown phase name decoded without error")
	}
}

func TestAuditEntryJSONInit(t *testing.T) {
	e := AuditEntry{Action: ActionInit, Actor: "config", To: State{Version: 1, Phase: PhaseDual}}
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("an init entry (zero From) must encode: %v", err)
	}
	if !strings.Contains(string(raw), `"from":null`) {
		t.Errorf("init entry JSON %s lacks \"from\":null", raw)
	}
	var back AuditEntry
	if err := json.Unmarshal(raw, &back); err != nil || back.From.Phase != 0 || back.To.Phase != PhaseDual || back.Action != ActionInit {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// FuzzStateJSON feeds operator input (the body of PUT /admin/flags) through
// decoding, validation and deciding: nothing may panic, and whatever
// validates must decide the same prepared or not and survive a round trip.
func FuzzStateJSON(f *testing.F) {
	for _, seed := range []string{
		`{"version":3,"phase":"dual","clients":{"mobile":{"phase":"jwt-only"}},"rollout":25,"rollout_seed":"x","exempt_clients":["web"]}`,
		`{"phase":"retiring","rollout":100,"sunset":"2026-06-01T00:00:00Z","docs_url":"https://d.test/"}`,
		`{"phase":"prefer-jwt","deprecated_at":"2026-01-01T00:00:00+02:00","docs_url":"https://d.test/>"}`,
		`{"phase":"retiring","rollout":1e308}`,
		`{"phase":"legacy","clients":{"":{"phase":"dual"}}}`,
		`{"phase":7}`, `null`, `{}`,
	} {
		f.Add([]byte(seed), "web", "user-1")
	}
	f.Fuzz(func(t *testing.T, raw []byte, client, user string) {
		var s State
		if json.Unmarshal(raw, &s) != nil {
			return
		}
		if s.Validate(nil) != nil {
			_ = s.Decide(client, user) // must not panic either
			return
		}
		plain := s.Clone()
		prepared := s.Clone()
		prepared.prepare()
		if a, b := plain.Decide(client, user), prepared.Decide(client, user); a != b {
			t.Fatalf("prepared and unprepared decisions differ:\n%+v\n%+v", a, b)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("a valid state does not encode: %v", err)
		}
		var back State
		if err := json.Unmarshal(out, &back); err != nil || !back.EqualSettings(&s) {
			t.Fatalf("round trip of %s: %+v, %v", out, back, err)
		}
	})
}
