// Package httpcheck holds the assertions every HTTP test harness makes on an
// answer: an RFC 9457 problem with its status and stable code, and a JSON body.
// Harnesses keep their own request builders and hand the answer over as an
// Answer.
package httpcheck

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// Answer is an HTTP response read in full.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Object decodes body as a JSON object and fails the test otherwise.
func Object(t testing.TB, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", body)
	}
	return m
}

// Decode decodes body into v and fails the test otherwise.
func Decode(t testing.TB, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("body does not decode into %T: %v: %q", v, err, body)
	}
}

// Problem asserts that a is a problem+json answer with status and code, and
// returns its members. code is a string or a string type (auth.Code).
func Problem[C ~string](t testing.TB, a Answer, status int, code C) map[string]any {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status = %d, want %d (body %s)", a.Status, status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, ProblemContentType) {
		t.Fatalf("Content-Type = %q, want %s (body %s)", ct, ProblemContentType, a.Body)
	}
	m := Object(t, a.Body)
	if m["code"] != string(code) {
		t.Fatalf("code = %v, want %s (body %s)", m["code"], code, a.Body)
	}
	return m
}

// CompleteProblem is Problem that also holds the body to RFC 9457's members as
// tokenshift writes them: "status" equal to the HTTP status, a "title", and
// "type" about:blank.
func CompleteProblem[C ~string](t testing.TB, a Answer, status int, code C) map[string]any {
	t.Helper()
	m := Problem(t, a, status, code)
	if title, _ := m["title"].(string); m["status"] != float64(status) || title == "" || m["type"] != "about:blank" {
		t.Fatalf("incomplete problem: %s, want status %d, a title and type about:blank", a.Body, status)
	}
	return m
}
