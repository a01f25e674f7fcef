package e2e

import (
	"net/http"
	"strconv"
	"testing"
)

// operator is an admin talking to the admin API with a bearer token of the
// mobile client, so its own calls add no session traffic.
type operator struct {
	in    *instance
	token string
}

func newOperator(t *testing.T, in *instance) *operator {
	t.Helper()
	tok, _ := in.login(t, opsEmail, opsPass, "mobile").json(t)["access_token"].(string)
	if tok == "" {
		t.Fatal("the operator login gave no access token")
	}
	return &operator{in: in, token: tok}
}

func (o *operator) flags(t *testing.T) map[string]any {
	t.Helper()
	r := o.in.do(t, req{path: "/admin/flags", bearer: o.token})
	if r.status != 200 {
		t.Fatalf("GET /admin/flags: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func (o *operator) version(t *testing.T) float64 {
	t.Helper()
	v, _ := o.flags(t)["version"].(float64)
	return v
}

// put sends body to PUT /admin/flags with the current version added when
// body has none.
func (o *operator) put(t *testing.T, body map[string]any) *resp {
	t.Helper()
	if _, ok := body["version"]; !ok {
		body["version"] = o.version(t)
	}
	return o.in.do(t, req{method: "PUT", path: "/admin/flags", bearer: o.token, json: body})
}

// mustPut is put expecting 200.
func (o *operator) mustPut(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	r := o.put(t, body)
	if r.status != 200 {
		t.Fatalf("PUT /admin/flags %v: %d %s", body, r.status, r.body)
	}
	return r.json(t)
}

func (o *operator) audit(t *testing.T, limit int) []map[string]any {
	t.Helper()
	r := o.in.do(t, req{path: "/admin/audit?limit=" + strconv.Itoa(limit), bearer: o.token})
	if r.status != 200 {
		t.Fatalf("GET /admin/audit: %d %s", r.status, r.body)
	}
	var out []map[string]any
	for _, e := range r.json(t)["entries"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// webSession logs alice in through web and returns the session cookie and
// the CSRF token of that login.
func webSession(t *testing.T, in *instance) (*http.Cookie, string) {
	t.Helper()
	lr := in.login(t, aliceEmail, alicePass, "web")
	c := lr.cookie("ts_session")
	csrf, _ := lr.json(t)["csrf_token"].(string)
	if c == nil || csrf == "" {
		t.Fatalf("the web login gave no session or no CSRF token: %s", lr.body)
	}
	return c, csrf
}
