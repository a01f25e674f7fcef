package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// writeConfig replaces path atomically, as editors and config tools do.
func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitLog(t *testing.T, in *instance, substr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(in.logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q after %v:\n%s", substr, within, in.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConfigReloadStatic: with the in-memory store the migration section of
// the --config file is followed at run time; a broken file changes nothing.
func TestConfigReloadStatic(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokenshift.yaml")
	writeConfig(t, path, "migration:\n  phase: dual\n  clients: {mobile: dual}\n")
	in := start(t, "TOKENSHIFT_CONFIG="+path)
	op := newOperator(t, in)
	sess, _ := webSession(t, in)
	me := func() *resp { return in.do(t, req{path: "/auth/me", cookies: []*http.Cookie{sess}}) }
	if r := me(); r.status != 200 {
		t.Fatalf("session before the reload: %d", r.status)
	}

	written := time.Now()
	writeConfig(t, path, "migration:\n  phase: jwt-only\n  clients: {mobile: dual}\n")
	for {
		r := me()
		if r.status == 401 {
			expectProblem(t, r, 401, "session_retired")
			break
		}
		if time.Since(written) > 5*time.Second {
			t.Fatalf("the phase did not change 5s after the file was rewritten\n%s", in.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(written)
	t.Logf("config file rewritten → new phase enforced in %v", took)
	if took > time.Second {
		t.Errorf("reload took %v, want within about a second", took)
	}
	if e := op.audit(t, 1)[0]; e["action"] != "reload" || e["actor"] != "config" {
		t.Errorf("newest audit entry = %v, want a reload by config", e)
	}

	// A file that does not validate is logged; the flags in force stay.
	v := op.version(t)
	writeConfig(t, path, "migration:\n  phase: sideways\n")
	waitLog(t, in, "the current migration flags stay in force", 3*time.Second)
	if !strings.Contains(in.logs.String(), "migration.phase") {
		t.Errorf("the error does not name the bad key:\n%s", in.logs.String())
	}
	if f := op.flags(t); f["version"] != v || f["phase"] != "jwt-only" {
		t.Errorf("a broken file changed the flags: %v", f)
	}
	if r := me(); r.status != 401 {
		t.Errorf("session after a broken file: %d, want still retired", r.status)
	}
}

// TestConfigReloadIgnoredWithRedis: with Redis the stored state is the
// truth once seeded; a changed file is reported, not applied.
func TestConfigReloadIgnoredWithRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "tokenshift.yaml")
	writeConfig(t, path, "migration:\n  phase: dual\n")
	in := start(t, "TOKENSHIFT_CONFIG="+path, "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL())
	op := newOperator(t, in)
	v := op.version(t)

	writeConfig(t, path, "migration:\n  phase: legacy\n")
	waitLog(t, in, "migration settings changed but are ignored", 3*time.Second)
	logs := in.logs.String()
	for _, want := range []string{"tokenshift phase set", "PUT /admin/flags", "file_phase=legacy", "phase_in_force=dual"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the warning lacks %q:\n%s", want, logs)
		}
	}
	if f := op.flags(t); f["version"] != v || f["phase"] != "dual" {
		t.Errorf("the file changed the stored flags: %v", f)
	}
}
