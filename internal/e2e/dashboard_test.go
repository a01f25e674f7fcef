package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/tokenshift/tokenshift/internal/testutil/citest"
	"github.com/tokenshift/tokenshift/internal/testutil/legacyapps"
	"github.com/tokenshift/tokenshift/internal/testutil/redistest"
)

// Traffic the dashboard test generates before opening the page. Distinct
// numbers, so a figure shown in the wrong column or row cannot pass.
const (
	webSessionRequests   = 17
	mobileBearerRequests = 13
	spaCookieRequests    = 7
	legacyShopRequests   = 5
)

// TestDashboard drives the operator page in a real headless Chromium: the
// page logs in as a cookie-session web client (the legacy path), shows the
// usage the test generated, changes a client's phase through its controls,
// shows the guard's refusal, and rolls back. Every effect is checked through
// the admin API as well, not only on screen.
func TestDashboard(t *testing.T) {
	chromium := chromiumPath(t)
	t.Parallel()
	testDeadline := time.Now().Add(55 * time.Second)

	// On Redis with usage data going back 25h: the guard judges only a
	// window its data covers, and this page's unforced change needs one.
	srv := redistest.Start(t)
	seedUsageHistory(t, srv, 25*time.Hour)
	// A legacy Express app (its sessions in database 3 of the same Redis)
	// whose users keep their cookies through tokenshift: the page lists
	// the source with its figures.
	shopUsers := map[string]string{"u-alice": "alice-shop-pw"}
	shopRedis := "redis://" + srv.Addr() + "/3"
	shop := legacyapps.StartExpress(t, legacyapps.ExpressOptions{RedisURL: shopRedis, Secrets: []string{"dashboard-shop-secret"}, Users: shopUsers})
	cfg := legacyConfig(t, `    - name: shop
      kind: express
      client: web
      cookie: connect.sid
      user_id: userId
      secrets: [dashboard-shop-secret]
      redis_url: `+shopRedis+`
    - name: forum
      kind: express
      client: web
      cookie: forum.sid
      user_id: userId
      secrets: [dashboard-forum-secret]
      redis_url: `+shopRedis+`
      key_prefix: "forum:"
`)
	in := start(t, "TOKENSHIFT_CONFIG="+cfg, "TOKENSHIFT_USAGE_FLUSH_INTERVAL=200ms", "TOKENSHIFT_STORAGE_REDIS_URL="+srv.URL())
	generateTraffic(t, in)
	shopCookie := shop.Login(t, "u-alice", shopUsers["u-alice"])
	for range legacyShopRequests {
		expectLegacyUser(t, legacyMe(t, in, shopCookie), "u-alice", "shop")
	}
	// Past one flush, so the counts are in the shared aggregate and not only
	// in this instance's live counters.
	time.Sleep(500 * time.Millisecond)

	p := openBrowser(t, chromium, testDeadline)
	p.do("open /admin", chromedp.Navigate(in.URL+"/admin"))
	if loc := evalJS[string](p, `location.pathname`); loc != "/admin/" {
		t.Fatalf("GET /admin led to %q, want the redirect to /admin/", loc)
	}
	p.waitFor("the login form", `!document.getElementById('login-view').hidden`, 10*time.Second)

	p.do("log in through the form",
		chromedp.SendKeys(chromedp.ID("login-email"), opsEmail),
		chromedp.SendKeys(chromedp.ID("login-password"), opsPass),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	p.waitFor("the clients table with the generated traffic",
		fmt.Sprintf(`!document.getElementById('dashboard').hidden && %s === "%d" && document.querySelectorAll('#chart .bucket').length > 0`,
			cellJS("mobile", "bearer"), mobileBearerRequests), 15*time.Second)

	if who := evalJS[string](p, `document.getElementById('whoami-text').textContent`); !strings.Contains(who, opsEmail) || !strings.Contains(who, "session cookie, client web") {
		t.Errorf("the page should be signed in with a web session, it says %q", who)
	}
	table := evalJS[string](p, `document.querySelector('#clients tbody').textContent`)
	for _, id := range []string{"web", "spa", "mobile"} {
		if !strings.Contains(table, id) {
			t.Errorf("clients table lacks %s: %q", id, table)
		}
	}
	if got := evalJS[string](p, cellJS("spa", "jwt_cookie")); got != strconv.Itoa(spaCookieRequests) {
		t.Errorf("spa jwt_cookie requests shown = %q, want %d", got, spaCookieRequests)
	}
	// The page is itself a web session client: its own admin API calls add a
	// few web session requests on top of the generated ones, own and legacy.
	webSessions, err := strconv.Atoi(evalJS[string](p, cellJS("web", "session")))
	if want := webSessionRequests + legacyShopRequests; err != nil || webSessions < want || webSessions > want+30 {
		t.Errorf("web session requests shown = %d (%v), want %d plus the page's own few", webSessions, err, want)
	}
	// The legacy sources: shop with its requests and its one user; forum
	// configured, idle, listed with zeros.
	if shown := evalJS[bool](p, `!document.getElementById('sources-card').hidden`); !shown {
		t.Error("the Legacy sources table is hidden although legacy.sources is configured")
	}
	for _, c := range []struct{ source, col, want string }{
		{source: "shop", col: "requests", want: strconv.Itoa(legacyShopRequests)},
		{source: "shop", col: "users", want: "1"},
		{source: "shop", col: "rejected", want: "0"},
		{source: "forum", col: "requests", want: "0"},
		{source: "forum", col: "last-seen", want: "never"},
	} {
		if got := evalJS[string](p, sourceCellJS(c.source, c.col)); got != c.want {
			t.Errorf("legacy source %s %s shown = %q, want %q", c.source, c.col, got, c.want)
		}
	}
	if last := evalJS[string](p, sourceCellJS("shop", "last-seen")); !strings.HasSuffix(last, "ago") {
		t.Errorf("shop's last use = %q, want a recent time", last)
	}
	if got := evalJS[string](p, cellJS("mobile", "session")); got != "0" {
		t.Errorf("mobile session requests shown = %q, want 0", got)
	}
	if ready := evalJS[string](p, `document.querySelector('#clients tr[data-client="web"] td[data-col="readiness"]').textContent`); !strings.Contains(ready, "Not ready") {
		t.Errorf("web still uses sessions but its readiness says %q", ready)
	}
	if last := evalJS[string](p, `document.querySelector('#clients tr[data-client="web"] td[data-col="last-session"]').textContent`); !strings.HasSuffix(last, "ago") {
		t.Errorf("web's last session use = %q, want a recent time", last)
	}
	// The chart is drawn from the same report's hourly series.
	sum := func(scheme string) int {
		return evalJS[int](p, fmt.Sprintf(`Array.from(document.querySelectorAll('#chart .bucket')).reduce((n, g) => n + Number(g.dataset[%q]), 0)`, scheme))
	}
	if got := sum("bearer"); got != mobileBearerRequests {
		t.Errorf("chart bearer total = %d, want %d", got, mobileBearerRequests)
	}
	if got := sum("jwt_cookie"); got != spaCookieRequests {
		t.Errorf("chart jwt_cookie total = %d, want %d", got, spaCookieRequests)
	}
	if got := sum("session"); got != webSessions {
		t.Errorf("chart session total = %d, want %d as in the table", got, webSessions)
	}
	if n := evalJS[int](p, `document.querySelectorAll('#chart rect.bar').length`); n == 0 {
		t.Error("the chart has no bars")
	}

	// From here on the API is read with an admin bearer token of client
	// mobile, which adds only bearer traffic and no session.
	opsToken := in.login(t, opsEmail, opsPass, "mobile").json(t)["access_token"].(string)
	before := effectivePhases(t, in, opsToken)

	// A reload loses the CSRF token kept in memory; the page must fetch a
	// fresh one from its session, or the change below would be refused.
	p.do("reload the page", chromedp.Reload())
	p.waitFor("the dashboard after a reload",
		`!document.getElementById('dashboard').hidden && document.querySelectorAll('#clients tbody tr').length >= 3`, 10*time.Second)

	// mobile never used a session, so the guard lets it go to jwt-only.
	selectOption(p, "scope", "mobile")
	selectOption(p, "phase", "jwt-only")
	p.do("apply mobile → jwt-only",
		chromedp.SendKeys(chromedp.ID("reason"), "mobile sends no sessions"),
		chromedp.Click(chromedp.ID("apply")),
	)
	p.waitFor("the change to be confirmed",
		`!document.getElementById('change-result').hidden && document.getElementById('change-result').textContent.includes('mobile: global (dual) → jwt-only')`, 10*time.Second)
	if got := effectivePhases(t, in, opsToken)["mobile"]; got != "jwt-only" {
		t.Fatalf("after the page's change the API says mobile is %q, want jwt-only", got)
	}
	p.waitFor("the table to show mobile in jwt-only", cellJS("mobile", "phase")+`.startsWith('jwt-only')`, 5*time.Second)

	// web still sends sessions (the page's own requests among them): refused.
	selectOption(p, "scope", "web")
	selectOption(p, "phase", "jwt-only")
	p.do("apply web → jwt-only", chromedp.SendKeys(chromedp.ID("reason"), "try web"), chromedp.Click(chromedp.ID("apply")))
	p.waitFor("the guard's refusal",
		`!document.getElementById('change-error').hidden && document.getElementById('change-error').textContent.includes('Refused by the usage guard')`, 10*time.Second)
	refusal := evalJS[string](p, `document.getElementById('change-error').textContent`)
	for _, want := range []string{"Affected clients", "web", "Maximum allowed", "1.00 %", "Session share",
		"Usage data covers24h of 24h", "is above the maximum 1.00%"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("the refusal should show %q: %q", want, refusal)
		}
	}
	if role := evalJS[string](p, `document.getElementById('change-error').getAttribute('role')`); role != "alert" {
		t.Errorf("the refusal is not announced: role=%q", role)
	}
	if got := effectivePhases(t, in, opsToken)["web"]; got != before["web"] {
		t.Fatalf("a refused change moved web to %q", got)
	}
	// The refusal is audited, with its figures, and the page lists it.
	p.waitFor("the audit table to list the refusal",
		`document.querySelector('#audit tbody tr').textContent.includes('refused by the guard (session share')`, 10*time.Second)
	audit := in.do(t, req{path: "/admin/audit?limit=1", bearer: opsToken}).json(t)
	if e, _ := audit["entries"].([]any); len(e) != 1 || e[0].(map[string]any)["action"] != "refused" || e[0].(map[string]any)["figures"] == nil {
		t.Errorf("the newest audit entry should be the refusal with figures: %v", audit)
	}
	p.screenshot("dashboard.png")

	p.do("roll back", chromedp.Click(chromedp.ID("rollback")))
	p.waitFor("the rollback to be confirmed",
		`!document.getElementById('change-result').hidden && document.getElementById('change-result').textContent.includes('Rolled back')`, 10*time.Second)
	if got := effectivePhases(t, in, opsToken)["mobile"]; got != before["mobile"] {
		t.Fatalf("after rollback the API says mobile is %q, want %q again", got, before["mobile"])
	}
	p.waitFor("the audit log to list the rollback",
		`document.querySelector('#audit tbody').textContent.includes('rollback')`, 5*time.Second)

	// Someone else changes the flags behind the page's back: the page's next
	// change carries a stale version, is refused, and the page says so and
	// shows the new state.
	cur := in.do(t, req{path: "/admin/flags", bearer: opsToken}).json(t)
	if r := in.do(t, req{method: "PUT", path: "/admin/flags", bearer: opsToken, json: map[string]any{
		"version": cur["version"], "clients": map[string]any{"spa": map[string]string{"phase": "prefer-jwt"}}, "reason": "another operator",
	}}); r.status != 200 {
		t.Fatalf("PUT /admin/flags: %d %s", r.status, r.body)
	}
	selectOption(p, "scope", "mobile")
	selectOption(p, "phase", "prefer-jwt")
	p.do("apply with a stale version", chromedp.Click(chromedp.ID("apply")))
	p.waitFor("the version conflict message",
		`!document.getElementById('change-error').hidden && document.getElementById('change-error').textContent.includes('Someone else changed the flags')`, 10*time.Second)
	p.waitFor("the page to reload the other operator's change", cellJS("spa", "phase")+`.startsWith('prefer-jwt')`, 5*time.Second)
	if got := effectivePhases(t, in, opsToken)["mobile"]; got != before["mobile"] {
		t.Fatalf("a change with a stale version moved mobile to %q", got)
	}

	// Logout is a cookie-authenticated POST: it works only with the CSRF
	// token the page kept from its login.
	p.do("log out", chromedp.Click(chromedp.ID("logout")))
	p.waitFor("the login form after logout", `!document.getElementById('login-view').hidden`, 5*time.Second)

	// A user without the admin role is told so, not shown an empty page.
	// The form keeps the last email, as login forms do; replace it.
	evalJS[string](p, `document.getElementById('login-email').value = ''`)
	p.do("log in as a non-admin",
		chromedp.SendKeys(chromedp.ID("login-email"), aliceEmail),
		chromedp.SendKeys(chromedp.ID("login-password"), alicePass),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	p.waitFor("the admin-role message",
		`!document.getElementById('forbidden-view').hidden && document.getElementById('forbidden-view').textContent.includes('needs the admin role')`, 5*time.Second)
	if shown := evalJS[bool](p, `!document.getElementById('dashboard').hidden`); shown {
		t.Error("the dashboard is shown to a non-admin")
	}

	p.checkNoPageErrors()
}

// generateTraffic makes alice use each scheme through the client made for it.
func generateTraffic(t *testing.T, in *instance) {
	t.Helper()
	web := in.login(t, aliceEmail, alicePass, "web").cookie("ts_session")
	mobile := in.login(t, aliceEmail, alicePass, "mobile").json(t)["access_token"].(string)
	spa := in.login(t, aliceEmail, alicePass, "spa").cookie("ts_access")
	if web == nil || mobile == "" || spa == nil {
		t.Fatal("logins did not give a web session, a mobile token and an spa access cookie")
	}
	send := func(n int, scheme string, r req) {
		for i := range n {
			res := in.do(t, r)
			if res.status != 200 {
				t.Fatalf("request %d with %s: %d %s", i, scheme, res.status, res.body)
			}
			if got := res.json(t)["scheme"]; got != scheme {
				t.Fatalf("request %d was authenticated by %v, want %s", i, got, scheme)
			}
		}
	}
	send(webSessionRequests, "session", req{path: "/auth/me", cookies: []*http.Cookie{web}})
	send(mobileBearerRequests, "bearer", req{path: "/auth/me", bearer: mobile})
	send(spaCookieRequests, "jwt_cookie", req{path: "/auth/me", cookies: []*http.Cookie{spa}})
}

func effectivePhases(t *testing.T, in *instance, adminToken string) map[string]string {
	t.Helper()
	r := in.do(t, req{path: "/admin/flags", bearer: adminToken})
	if r.status != 200 {
		t.Fatalf("GET /admin/flags: %d %s", r.status, r.body)
	}
	out := map[string]string{}
	eff, _ := r.json(t)["effective"].(map[string]any)
	for k, v := range eff {
		out[k], _ = v.(string)
	}
	return out
}

// cellJS is a JavaScript expression for the text of one clients-table cell.
func cellJS(client, col string) string {
	return fmt.Sprintf(`(document.querySelector('#clients tr[data-client=%q] td[data-col=%q]')?.textContent ?? '')`, client, col)
}

// sourceCellJS is a JavaScript expression for the text of one cell of the
// legacy sources table.
func sourceCellJS(source, col string) string {
	return fmt.Sprintf(`(document.querySelector('#sources tr[data-source=%q] td[data-col=%q]')?.textContent ?? '')`, source, col)
}

// chromiumPath finds Debian's Chromium. Without it the test skips, except in
// CI, where .ci/run installs it and a skip would hide a broken page.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	citest.Unavailable(t, "no Chromium found (apt-get install chromium)")
	return ""
}

// browserPage is one headless Chromium tab with a deadline for every step.
type browserPage struct {
	t        *testing.T
	ctx      context.Context
	deadline time.Time

	mu     sync.Mutex
	errors []string
}

func openBrowser(t *testing.T, execPath string, deadline time.Time) *browserPage {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Registered after TempDir, so it runs first: Chromium is gone before its
	// profile directory is removed.
	t.Cleanup(func() {
		closeCtx, closeCancel := context.WithTimeout(ctx, 10*time.Second)
		defer closeCancel()
		_ = chromedp.Cancel(closeCtx)
		cancel()
		cancelAlloc()
	})
	p := &browserPage{t: t, ctx: ctx, deadline: deadline}
	// The first action starts the browser; it must run without a deadline,
	// which would end the browser with it.
	if err := chromedp.Listen(ctx, p.collect); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return p
}

// collect keeps script exceptions and console errors, such as CSP
// violations. Failed requests (the 401 before login, the guard's 409) are
// expected and come with source "network".
func (p *browserPage) collect(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			msg += " " + ex.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			msg = fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			msg = "console.error"
		}
	}
	if msg != "" {
		p.mu.Lock()
		p.errors = append(p.errors, msg)
		p.mu.Unlock()
	}
}

func (p *browserPage) checkNoPageErrors() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errors {
		p.t.Errorf("the page logged an error: %s", e)
	}
}

func (p *browserPage) step() (context.Context, context.CancelFunc) {
	return context.WithDeadline(p.ctx, p.deadline)
}

func (p *browserPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript condition until it holds or timeout passes.
func (p *browserPage) waitFor(what, cond string, timeout time.Duration) {
	p.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		p.fatalf("waiting for %s: %v", what, err)
	}
}

func evalJS[T any](p *browserPage, expr string) T {
	p.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// selectOption picks an option as a user would: the value changes and the
// page hears the change event.
func selectOption(p *browserPage, id, value string) {
	p.t.Helper()
	got := evalJS[string](p, fmt.Sprintf(`(() => {
		const s = document.getElementById(%q);
		s.value = %q;
		s.dispatchEvent(new Event('change', {bubbles: true}));
		return s.value;
	})()`, id, value))
	if got != value {
		p.fatalf("select #%s has no option %q", id, value)
	}
}

func (p *browserPage) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Errorf("screenshot: %v", err)
		return
	}
	// CI collects testdata/artifacts (or TOKENSHIFT_TEST_ARTIFACTS when set).
	dir := filepath.Join("testdata", "artifacts")
	if d := os.Getenv("TOKENSHIFT_TEST_ARTIFACTS"); d != "" {
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Errorf("screenshot: %v", err)
		return
	}
	// A blank or broken capture would be a useless artifact.
	if len(png) < 10_000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		p.t.Errorf("screenshot %s is not a real PNG capture (%d bytes)", path, len(png))
	}
	abs, _ := filepath.Abs(path)
	p.t.Logf("dashboard screenshot: %s", abs)
}

// fatalf ends the test with what the page showed, which is what a failed
// wait most needs to be understood.
func (p *browserPage) fatalf(format string, args ...any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	if err != nil {
		text = "(page text unavailable: " + err.Error() + ")"
	}
	p.mu.Lock()
	errs := strings.Join(p.errors, "\n")
	p.mu.Unlock()
	p.t.Fatalf(format+"\n--- page text ---\n%s\n--- page errors ---\n%s", append(args, text, errs)...)
}
