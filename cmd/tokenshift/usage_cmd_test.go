package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/admin"
	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/usage"
)

// now is the fake server's clock: in the middle of a minute.
var now = time.Date(2025, 3, 10, 12, 20, 30, 0, time.UTC)

// fakeAdmin is a stand-in for a tokenshift server: login, logout and the
// admin API, with the usage report built by the real internal/usage code
// from recorded traffic, so the CLI prints what a server really answers.
type fakeAdmin struct {
	t   *testing.T
	srv *httptest.Server
	rec *usage.Recorder
	// sessionOnly: login answers a session cookie and a CSRF token but no
	// access token (phase legacy).
	sessionOnly bool
	// role of the logged-in user.
	role string

	mu      sync.Mutex
	logins  int
	logouts []string // how each logout authenticated
	// loginClients: the client_id of each login ("" = none sent).
	loginClients []string
	live         int // logins not yet logged out
	paths        []string
}

const (
	fakeToken   = "tok-ops"
	fakeSession = "sess-ops"
	fakeCSRF    = "csrf-ops"
)

func newFakeAdmin(t *testing.T, sources ...string) *fakeAdmin {
	t.Helper()
	rec, err := usage.New(usage.Options{
		Clients: []string{"web", "spa", "mobile"}, Sources: sources, SessionLifetime: 12 * time.Hour,
		MaxSessionShare: usage.DefaultMaxSessionShare,
		Clock:           func() time.Time { return now }, Logger: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAdmin{t: t, rec: rec, role: "admin"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// authed reports how the request authenticated: "bearer", "session" or "".
func (f *fakeAdmin) authed(r *http.Request) string {
	if r.Header.Get("Authorization") == "Bearer "+fakeToken {
		return "bearer"
	}
	if c, err := r.Cookie("ts_session"); err == nil && c.Value == fakeSession {
		return "session"
	}
	return ""
}

func (f *fakeAdmin) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	problem := func(status int, code string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "code": code, "detail": code})
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/auth/login":
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["email"] != "ops@example.com" || body["password"] != "ops-dev-password" {
			problem(401, "invalid_credentials")
			return
		}
		f.loginClients = append(f.loginClients, body["client_id"])
		f.logins++
		f.live++
		answer := map[string]any{"csrf_token": fakeCSRF}
		http.SetCookie(w, &http.Cookie{Name: "ts_session", Value: fakeSession, Path: "/"})
		if !f.sessionOnly {
			answer["access_token"] = fakeToken
		}
		_ = json.NewEncoder(w).Encode(answer)
	case r.Method == "POST" && r.URL.Path == "/auth/logout":
		how := f.authed(r)
		if how == "session" && r.Header.Get("X-CSRF-Token") != fakeCSRF {
			problem(403, "csrf_failed")
			return
		}
		if how == "" {
			problem(401, "unauthenticated")
			return
		}
		f.logouts = append(f.logouts, how)
		f.live--
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(r.URL.Path, "/admin/"):
		if f.authed(r) == "" && r.Header.Get("Authorization") != "Bearer given-token" {
			problem(401, "unauthenticated")
			return
		}
		if f.role != "admin" {
			problem(403, "forbidden")
			return
		}
		switch r.URL.Path {
		case "/admin/usage":
			win, err := admin.ParseWindow(r.URL.Query().Get("window"), usage.DefaultRetention)
			if err != nil {
				problem(400, "invalid_request")
				return
			}
			rep, err := f.rec.Report(r.Context(), win, r.URL.Query().Get("client"))
			if err != nil {
				problem(400, "invalid_request")
				return
			}
			_ = json.NewEncoder(w).Encode(rep)
		case "/admin/flags":
			_ = json.NewEncoder(w).Encode(map[string]any{"version": 3, "phase": "dual", "effective": map[string]string{"web": "dual"}})
		default:
			problem(404, "not_found")
		}
	default:
		problem(404, "not_found")
	}
}

// runCLI runs the real root command with args against the fake server.
func runCLI(t *testing.T, f *fakeAdmin, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	t.Setenv("TOKENSHIFT_ADMIN_PASSWORD", "ops-dev-password")
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(args, "--server", f.srv.URL))
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// record adds n accepted requests of scheme by client, and rejected ones.
func (f *fakeAdmin) record(scheme auth.Scheme, client string, n int, outcome auth.Outcome) {
	for i := range n {
		user := ""
		if outcome == auth.OutcomeAccepted {
			user = client + "-user-" + string(rune('a'+i%26))
		}
		f.rec.Record(scheme, client, user, outcome)
	}
}

// row finds the table row starting with name and returns its fields.
func row(t *testing.T, out, name string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == name {
			return fields
		}
	}
	t.Fatalf("no row %q in:\n%s", name, out)
	return nil
}

func TestUsageCommandPrintsTheWholeReport(t *testing.T) {
	f := newFakeAdmin(t)
	f.record(auth.SchemeSession, "web", 10, auth.OutcomeAccepted)
	f.record(auth.SchemeBearer, "mobile", 60, auth.OutcomeAccepted)
	f.record(auth.SchemeJWTCookie, "spa", 30, auth.OutcomeAccepted)
	f.record(auth.SchemeSession, "web", 4, auth.OutcomeExpired)
	f.record(auth.SchemeBearer, auth.ClientUnknown, 3, auth.OutcomeInvalid)
	f.record(auth.SchemeNone, auth.ClientUnknown, 2, auth.OutcomeMissing)

	out, stderr, err := runCLI(t, f, "usage", "--email", "ops@example.com", "--window", "1h")
	if err != nil {
		t.Fatalf("usage: %v\n%s", err, stderr)
	}
	t.Logf("output:\n%s", out)
	for _, want := range []string{
		"Usage over 1h, all clients (2025-03-10T11:20:00Z to 2025-03-10T12:20:30Z)",
		"Accepted 100, rejected 9; distinct users ≈ 62 (HyperLogLog, standard error 0.81%)",
		"Outcomes: accepted=100",
		"Rejected by reason: invalid=3 expired=4 revoked=0 session_retired=0 conflict=0 store_unavailable=0 missing=2",
		"Readiness (all clients): NOT READY to retire sessions",
		"  - session share 10.00% (10 of 100 accepted requests) is above the threshold 1.00%; still using sessions: web (10, last 2025-03-10T12:20:30Z)",
		"  - the window (1h) is shorter than the longest session lifetime (12h)",
		"  - usage data only goes back to 2025-03-10T12:20:30Z, after the start of the window",
		"Readiness of mobile: NOT READY to retire sessions",
		"  session share 0.00% (0 of 60 accepted requests), threshold 1.00%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Each verdict states each of its reasons once, not as a summary line
	// and again as a bullet.
	verdicts := strings.Split(out, "\nReadiness ")[1:]
	if len(verdicts) != 4 {
		t.Fatalf("%d readiness verdicts, want all clients, web, spa and mobile", len(verdicts))
	}
	for _, v := range verdicts {
		name, _, _ := strings.Cut(v, ":")
		for _, once := range []string{"session share", "longest session lifetime", "usage data", "still using sessions"} {
			if n := strings.Count(v, once); n > 1 {
				t.Errorf("readiness %s says %q %d times:\n%s", name, once, n, v)
			}
		}
	}
	// unknown is a label, not a client: counted, but no verdict.
	if strings.Contains(out, "Readiness of unknown") {
		t.Errorf("the output gives the label unknown a readiness verdict")
	}
	tests := []struct {
		row  string
		want []string
	}{
		{row: "session", want: []string{"session", "10", "10.00%", "10", "4"}},
		{row: "bearer", want: []string{"bearer", "60", "60.00%", "26", "3"}},
		{row: "jwt_cookie", want: []string{"jwt_cookie", "30", "30.00%", "26", "0"}},
		{row: "web", want: []string{"web", "10", "0", "0", "4", "100.00%", "2025-03-10T12:20:30Z", "no"}},
		{row: "mobile", want: []string{"mobile", "0", "60", "0", "0", "0.00%", "-", "no"}},
		{row: "unknown", want: []string{"unknown", "0", "0", "0", "5", "0.00%", "-", "-"}},
	}
	for _, tt := range tests {
		if got := row(t, out, tt.row); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("row %s = %q, want %q", tt.row, got, tt.want)
		}
	}
	if f.logins != 1 || len(f.logouts) != 1 || f.logouts[0] != "bearer" || f.live != 0 {
		t.Errorf("logins %d, logouts %v, live %d; want one login ended with its bearer token", f.logins, f.logouts, f.live)
	}
	// Without legacy.sources the report has no sources: no empty table.
	if strings.Contains(out, "LEGACY SOURCE") {
		t.Errorf("a report without sources prints a sources table:\n%s", out)
	}
}

// With legacy.sources the report lists each source (idle ones too): the
// CLI prints them as a table next to the clients, users n/a in a client
// report as for the schemes.
func TestUsageCommandPrintsLegacySources(t *testing.T) {
	f := newFakeAdmin(t, "shop", "forum")
	for i := range 9 {
		f.rec.RecordSource("shop", auth.SchemeSession, "web", "u-"+string(rune('a'+i%3)), auth.OutcomeAccepted)
	}
	f.rec.RecordSource("shop", auth.SchemeSession, auth.ClientUnknown, "", auth.OutcomeInvalid)
	f.record(auth.SchemeSession, "web", 2, auth.OutcomeAccepted)

	tests := []struct {
		name string
		args []string
		shop string
	}{
		{name: "all clients", args: nil, shop: "shop 9 3 1 2025-03-10T12:20:30Z"},
		{name: "one client", args: []string{"--client", "web"}, shop: "shop 9 n/a 0 2025-03-10T12:20:30Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, f, append([]string{"usage", "--email", "ops@example.com", "--window", "1h"}, tt.args...)...)
			if err != nil {
				t.Fatalf("usage: %v\n%s", err, stderr)
			}
			if got := strings.Join(row(t, out, "LEGACY"), " "); got != "LEGACY SOURCE REQUESTS USERS (≈) REJECTED LAST SEEN" {
				t.Errorf("sources header = %q", got)
			}
			if got := strings.Join(row(t, out, "shop"), " "); got != tt.shop {
				t.Errorf("shop row = %q, want %q\n%s", got, tt.shop, out)
			}
			// forum is configured and idle: listed, never seen.
			if got := strings.Join(row(t, out, "forum"), " "); !strings.HasPrefix(got, "forum 0 ") || !strings.HasSuffix(got, " 0 never") {
				t.Errorf("forum row = %q, want 0 requests, never seen", got)
			}
			// Legacy requests are session use of their client.
			if got := row(t, out, "web")[1]; got != "11" {
				t.Errorf("web session requests = %s, want 11 (9 legacy + 2 own)", got)
			}
		})
	}
}

// A source name comes from the server (another instance's configuration
// may name any source): it is printed escaped, never as terminal control.
func TestPrintSourcesEscapes(t *testing.T) {
	raw := json.RawMessage(`{"window":"1h","sources":{"sh\u001b]0;pwn\u0007op":{"requests":1,"rejected":0,"users":1,"last_seen":null}}}`)
	var out bytes.Buffer
	if err := printUsage(&out, raw); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07") || !strings.Contains(out.String(), `sh\x1b]0;pwn\aop`) {
		t.Errorf("the source name reached the terminal unescaped:\n%q", out.String())
	}
}

// Distinct users are counted across all clients only: a client report says
// n/a rather than a misleading 0.
func TestUsageCommandForOneClient(t *testing.T) {
	f := newFakeAdmin(t)
	f.record(auth.SchemeBearer, "mobile", 7, auth.OutcomeAccepted)
	f.record(auth.SchemeBearer, "spa", 5, auth.OutcomeAccepted)
	out, stderr, err := runCLI(t, f, "usage", "--email", "ops@example.com", "--window", "24h", "--client", "mobile")
	if err != nil {
		t.Fatalf("usage: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"Usage over 24h, client mobile",
		"Accepted 7, rejected 0; distinct users n/a (counted across all clients only)",
		"Readiness (client mobile): NOT READY",
		"  session share 0.00% (0 of 7 accepted requests), threshold 1.00%",
		"  window 24h covers the longest session lifetime (12h)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n%s", want, out)
		}
	}
	if got := strings.Join(row(t, out, "bearer"), " "); got != "bearer 7 100.00% n/a 0" {
		t.Errorf("bearer row = %q, want users n/a", got)
	}
	if strings.Contains(out, "Readiness of") {
		t.Errorf("a one-client report repeats per-client verdicts:\n%s", out)
	}
	if regexp.MustCompile(`(?m)^spa\s`).MatchString(out) {
		t.Errorf("a mobile report lists spa:\n%s", out)
	}
}

// Every ops command ends the login it made, whatever its outcome, with the
// credential it has (a session needs its CSRF token); a given token is never
// logged out.
func TestOpsCommandsLogOut(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		sessionOnly bool
		role        string
		wantErr     bool
		wantLogout  []string
		wantLogins  int
	}{
		{name: "usage", args: []string{"usage", "--email", "ops@example.com"}, wantLogout: []string{"bearer"}, wantLogins: 1},
		{name: "usage --json", args: []string{"usage", "--email", "ops@example.com", "--json"}, wantLogout: []string{"bearer"}, wantLogins: 1},
		{name: "phase show", args: []string{"phase", "show", "--email", "ops@example.com"}, wantLogout: []string{"bearer"}, wantLogins: 1},
		{name: "session-only login", args: []string{"usage", "--email", "ops@example.com"}, sessionOnly: true, wantLogout: []string{"session"}, wantLogins: 1},
		{name: "refused command", args: []string{"usage", "--email", "ops@example.com"}, role: "user", wantErr: true, wantLogout: []string{"bearer"}, wantLogins: 1},
		{name: "given token", args: []string{"usage", "--token", "given-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAdmin(t)
			f.sessionOnly = tt.sessionOnly
			if tt.role != "" {
				f.role = tt.role
			}
			_, stderr, err := runCLI(t, f, tt.args...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v\n%s", err, tt.wantErr, stderr)
			}
			if f.logins != tt.wantLogins || strings.Join(f.logouts, ",") != strings.Join(tt.wantLogout, ",") || f.live != 0 && tt.wantLogins > 0 {
				t.Errorf("logins %d, logouts %v, live %d; want %d, %v, 0 (requests %v)", f.logins, f.logouts, f.live, tt.wantLogins, tt.wantLogout, f.paths)
			}
			if strings.Contains(stderr, "warning") {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}
}

// Every operator command ends the login it made, whatever the server answers
// (most of these paths are 404 on the fake): they all go through withClient.
func TestEveryOpsCommandLogsOut(t *testing.T) {
	for _, args := range [][]string{
		{"usage"}, {"phase", "show"}, {"phase", "set", "dual", "--reason", "r"}, {"phase", "rollback", "--reason", "r"},
		{"audit"}, {"sessions", "list", "u-alice"}, {"sessions", "revoke", "u-alice", "--all"},
		{"keys", "list"}, {"keys", "rotate", "--kid", "k2", "--reason", "r"},
		{"user", "suspend", "u-alice", "--reason", "r"}, {"user", "unsuspend", "u-alice"}, {"user", "account", "u-alice"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			f := newFakeAdmin(t)
			_, stderr, _ := runCLI(t, f, append(args, "--email", "ops@example.com")...)
			if f.logins != 1 || strings.Join(f.logouts, ",") != "bearer" || f.live != 0 {
				t.Errorf("logins %d, logouts %v, live %d; want 1, [bearer], 0 (requests %v)\n%s", f.logins, f.logouts, f.live, f.paths, stderr)
			}
		})
	}
}

// The operator's own requests can be kept off the apps' figures by logging
// in with a client of their own.
func TestOpsLoginClient(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{name: "server default", args: []string{"usage", "--email", "ops@example.com"}, want: ""},
		{name: "flag", args: []string{"usage", "--email", "ops@example.com", "--login-client", "ops-cli"}, want: "ops-cli"},
		{name: "env", args: []string{"usage", "--email", "ops@example.com"}, env: "ops-env", want: "ops-env"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TOKENSHIFT_ADMIN_CLIENT", tt.env)
			f := newFakeAdmin(t)
			if _, stderr, err := runCLI(t, f, tt.args...); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if len(f.loginClients) != 1 || f.loginClients[0] != tt.want {
				t.Errorf("login client_id = %q, want %q", f.loginClients, tt.want)
			}
		})
	}
}

func TestFlushReserve(t *testing.T) {
	tests := []struct {
		name   string
		budget time.Duration
		want   time.Duration
	}{
		{name: "default 15s", budget: 15 * time.Second, want: 5 * time.Second},
		{name: "short", budget: 3 * time.Second, want: time.Second},
		{name: "long is capped", budget: time.Minute, want: 5 * time.Second},
	}
	for _, tt := range tests {
		if got := flushReserve(tt.budget); got != tt.want || got >= tt.budget {
			t.Errorf("%s: flushReserve(%v) = %v, want %v", tt.name, tt.budget, got, tt.want)
		}
	}
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
