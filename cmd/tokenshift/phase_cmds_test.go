package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/featureflags"
	"github.com/tokenshift/tokenshift/internal/config"
)

// liveServer runs the real service (embedded defaults, in-memory store) on a
// loopback port inside the test process and returns its base URL.
func liveServer(t *testing.T) (string, *app) {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Usage.FlushInterval = 100 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go a.usage.Run(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.server.App.Listener(ln) }()
	t.Cleanup(func() {
		_ = a.server.App.ShutdownWithTimeout(5 * time.Second)
		cancel()
		a.store.Close()
	})
	return "http://" + ln.Addr().String(), a
}

// run executes the tokenshift command line against base as the dev operator.
func run(t *testing.T, base string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("TOKENSHIFT_ADMIN_PASSWORD", "ops-dev-password")
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--server", base, "--email", "ops@example.com"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// webSessionTraffic makes the web client use sessions, so the guard refuses
// moving it on.
func webSessionTraffic(t *testing.T, base string, n int) {
	t.Helper()
	body := strings.NewReader(`{"email":"alice@example.com","password":"alice-dev-password","client_id":"web"}`)
	res, err := http.Post(base+"/auth/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var sess *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "ts_session" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("login gave no session")
	}
	for range n {
		req, _ := http.NewRequest("GET", base+"/auth/me", nil)
		req.AddCookie(sess)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET /auth/me with a session: %d", res.StatusCode)
		}
	}
}

func TestPhaseAndAuditCommands(t *testing.T) {
	base, a := liveServer(t)
	webSessionTraffic(t, base, 20)
	time.Sleep(300 * time.Millisecond) // past a usage flush

	out, _, err := run(t, base, "phase", "show")
	if err != nil {
		t.Fatalf("phase show: %v", err)
	}
	for _, want := range []string{"global phase dual", "web", "spa", "mobile", "EFFECTIVE PHASE"} {
		if !strings.Contains(out, want) {
			t.Errorf("phase show lacks %q:\n%s", want, out)
		}
	}

	// The guard refuses: figures on stderr, window as "24h", an error exit.
	_, errOut, err := run(t, base, "phase", "set", "jwt-only", "--client", "web", "--reason", "try web")
	if err == nil {
		t.Fatal("a refused change exited successfully")
	}
	// A fresh instance: the data covers none of the window, and the refusal
	// says so besides the share.
	for _, want := range []string{"REFUSED by the usage guard", "window:           24h\n", "clients:          web\n", "session share:    ",
		"data covers:      0m of 24h\n", "  - usage data only covers 0m of the 24h window", "  - session share "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal message lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "24h0m0s") {
		t.Errorf("window printed as a Go duration:\n%s", errOut)
	}

	if _, _, err := run(t, base, "phase", "set", "jwt-only", "--client", "web", "--force", "--reason", "bots only, OPS-42"); err != nil {
		t.Fatalf("forced set: %v", err)
	}
	if got := a.flags.Flags().Current().EffectivePhase("web").String(); got != "jwt-only" {
		t.Fatalf("web after the forced change = %s", got)
	}
	if _, _, err := run(t, base, "phase", "set", "--exempt-add", "spa,mobile", "--sunset", "2027-06-30T00:00:00Z", "--rollout", "20", "--reason", "exempt"); err != nil {
		t.Fatalf("set exemptions: %v", err)
	}
	if _, _, err := run(t, base, "phase", "set", "--exempt-remove", "mobile", "--reason", "mobile moved"); err != nil {
		t.Fatalf("remove an exemption: %v", err)
	}
	cur := a.flags.Flags().Current()
	if fmt.Sprint(cur.ExemptClients) != "[spa]" || cur.Rollout != 20 || cur.Sunset == nil || cur.EffectivePhase("web").String() != "jwt-only" {
		t.Fatalf("state after the flag-only changes = %+v", cur)
	}
	if _, _, err := run(t, base, "phase", "rollback", "--reason", "mobile not ready"); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if _, _, err := run(t, base, "phase", "set"); err == nil {
		t.Error("phase set with nothing to change succeeded")
	}

	out, _, err = run(t, base, "audit")
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 7 || !strings.HasPrefix(rows[0], "WHEN") {
		t.Fatalf("audit should have a header and 6 entries:\n%s", out)
	}
	// Newest first: rollback, exempt-remove, exemptions, forced, refused, init.
	wantRows := []struct{ action, has string }{
		{"rollback", "exempt: spa → mobile,spa"},
		{"set", "exempt: mobile,spa → spa"},
		{"set", "rollout: 0% → 20%; exempt: none → mobile,spa; sunset: none → 2027-06-30T00:00:00Z"},
		{"set", "web: (global) → jwt-only"},
		{"refused", "web: (global) → jwt-only"},
		{"init", "phase dual"},
	}
	for i, w := range wantRows {
		row := rows[i+1]
		if !regexp.MustCompile(`\s`+w.action+`\s`).MatchString(row) || !strings.Contains(row, w.has) {
			t.Errorf("audit row %d = %q, want action %s with %q", i+1, row, w.action, w.has)
		}
	}
	if !strings.Contains(rows[4], "FORCED") || !strings.Contains(rows[4], "bots only, OPS-42") || !strings.Contains(rows[4], "over 24h, max 1.00%") {
		t.Errorf("forced row lacks FORCED, the reason or the figures: %q", rows[4])
	}
	// 20 session requests from the traffic above; the CLI's own bearer calls
	// (ops logs in through web) make up the rest of web's total.
	if !regexp.MustCompile(`session share \d+\.\d\d% \(20 of \d+\) over 24h, max 1\.00%`).MatchString(rows[5]) || strings.Contains(rows[5], "FORCED") {
		t.Errorf("refused row lacks the figures: %q", rows[5])
	}
	if strings.Contains(out, "dual → dual") || strings.Contains(out, "prefer-jwt → prefer-jwt") {
		t.Errorf("audit shows a non-change:\n%s", out)
	}

	out, _, err = run(t, base, "audit", "--json", "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Entries []map[string]any `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw.Entries) != 1 || raw.Entries[0]["action"] != "rollback" {
		t.Errorf("audit --json --limit 1 = %v %s", err, out)
	}
}

func TestFlagsChanges(t *testing.T) {
	sunset := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	doc := func(phase string, clients map[string]string, rollout float64, exempt []string, sun *time.Time) featureflags.State {
		d := featureflags.State{Phase: mustPhase(t, phase), Rollout: rollout, ExemptClients: exempt, Sunset: sun}
		d.Clients = map[string]featureflags.ClientRule{}
		for id, p := range clients {
			d.Clients[id] = featureflags.ClientRule{Phase: mustPhase(t, p)}
		}
		return d
	}
	tests := []struct {
		name     string
		from, to featureflags.State
		want     string
	}{
		{name: "global phase", from: doc("dual", nil, 0, nil, nil), to: doc("prefer-jwt", nil, 0, nil, nil), want: "phase: dual → prefer-jwt"},
		{name: "client override under an unchanged global phase", from: doc("prefer-jwt", nil, 0, nil, nil), to: doc("prefer-jwt", map[string]string{"mobile": "jwt-only"}, 0, nil, nil),
			want: "mobile: (global) → jwt-only"},
		{name: "override dropped", from: doc("dual", map[string]string{"web": "legacy"}, 0, nil, nil), to: doc("dual", nil, 0, nil, nil), want: "web: legacy → (global)"},
		{name: "rollout and exemptions", from: doc("retiring", nil, 5, []string{"kiosk"}, nil), to: doc("retiring", nil, 20.5, nil, nil),
			want: "rollout: 5% → 20.5%; exempt: kiosk → none"},
		{name: "sunset", from: doc("dual", nil, 0, nil, nil), to: doc("dual", nil, 0, nil, &sunset), want: "sunset: none → 2027-01-01T00:00:00Z"},
		{name: "nothing", from: doc("dual", nil, 0, nil, nil), to: doc("dual", nil, 0, nil, nil), want: "no setting changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(flagsChanges(&tt.from, &tt.to), "; "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	for in, want := range map[string]string{"24h0m0s": "24h", "1h30m0s": "90m", "168h0m0s": "168h", "45s": "45s", "weird": "weird"} {
		if got := prettyWindow(in); got != want {
			t.Errorf("prettyWindow(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustPhase(t *testing.T, name string) featureflags.Phase {
	t.Helper()
	p, err := featureflags.ParsePhase(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
