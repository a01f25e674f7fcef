package httpcheck

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Fatalf ends only the goroutine of the check,
// so a test can see that a check fails and why.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
	runtime.Goexit()
}

// run runs check against a recorder and reports what it said.
func run(t *testing.T, check func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r
}

func answer(status int, ctype, body string) Answer {
	h := http.Header{}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	return Answer{Status: status, Header: h, Body: []byte(body)}
}

const complete = `{"type":"about:blank","title":"Unauthorized","status":401,"code":"invalid_token","detail":"expired"}`

func TestProblem(t *testing.T) {
	tests := []struct {
		name     string
		answer   Answer
		complete bool   // CompleteProblem instead of Problem
		fails    string // part of the failure message; "" = passes
	}{
		{name: "complete problem", answer: answer(401, ProblemContentType, complete)},
		{name: "content type with parameters", answer: answer(401, ProblemContentType+"; charset=utf-8", complete)},
		{name: "only a code", answer: answer(401, ProblemContentType, `{"code":"invalid_token"}`)},
		{name: "other status", answer: answer(403, ProblemContentType, complete), fails: "status"},
		{name: "plain JSON", answer: answer(401, "application/json", complete), fails: "Content-Type"},
		{name: "no content type", answer: answer(401, "", complete), fails: "Content-Type"},
		{name: "other code", answer: answer(401, ProblemContentType, `{"code":"session_retired"}`), fails: "code"},
		{name: "no code", answer: answer(401, ProblemContentType, `{"title":"Unauthorized"}`), fails: "code"},
		{name: "not JSON", answer: answer(401, ProblemContentType, `Unauthorized`), fails: "not a JSON object"},
		{name: "complete: passes", answer: answer(401, ProblemContentType, complete), complete: true},
		{name: "complete: no title", answer: answer(401, ProblemContentType, `{"type":"about:blank","status":401,"code":"invalid_token"}`), complete: true, fails: "incomplete"},
		{name: "complete: status member differs", answer: answer(401, ProblemContentType, `{"type":"about:blank","title":"x","status":400,"code":"invalid_token"}`), complete: true, fails: "incomplete"},
		{name: "complete: other type", answer: answer(401, ProblemContentType, `{"type":"https://x.test/p","title":"x","status":401,"code":"invalid_token"}`), complete: true, fails: "incomplete"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			r := run(t, func(tb testing.TB) {
				if tc.complete {
					got = CompleteProblem(tb, tc.answer, 401, "invalid_token")
				} else {
					got = Problem(tb, tc.answer, 401, "invalid_token")
				}
			})
			switch {
			case tc.fails == "" && r.failed:
				t.Fatalf("failed: %s", r.msg)
			case tc.fails != "" && !r.failed:
				t.Fatalf("passed, want a failure about %s", tc.fails)
			case tc.fails != "" && !strings.Contains(r.msg, tc.fails):
				t.Fatalf("failure %q does not name %s", r.msg, tc.fails)
			case tc.fails == "" && got["code"] != "invalid_token":
				t.Fatalf("returned members %v", got)
			}
		})
	}
}

// A string type such as auth.Code is taken as it is.
func TestProblemCodeType(t *testing.T) {
	type code string
	m := Problem(t, answer(401, ProblemContentType, complete), 401, code("invalid_token"))
	if m["detail"] != "expired" {
		t.Fatalf("members %v", m)
	}
}

func TestDecode(t *testing.T) {
	var v struct {
		Code string `json:"code"`
	}
	Decode(t, []byte(complete), &v)
	if v.Code != "invalid_token" {
		t.Fatalf("decoded %+v", v)
	}
	if r := run(t, func(tb testing.TB) { Decode(tb, []byte(`{"code":`), &v) }); !r.failed {
		t.Fatal("a truncated body decoded")
	}
	if r := run(t, func(tb testing.TB) { Object(tb, []byte(`[1,2]`)) }); !r.failed {
		t.Fatal("a JSON array passed as an object")
	}
}
