package httpapi

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanUserAgent(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{name: "plain", in: "Mozilla/5.0 (X11; Linux x86_64)", want: "Mozilla/5.0 (X11; Linux x86_64)"},
		{name: "escape sequences", in: "curl/8\x1b]0;owned\a\x1b[2J", want: "curl/8]0;owned[2J"},
		{name: "CR LF DEL NUL", in: "a\r\nb\x7fc\x00d", want: "abcd"},
		{name: "C1 CSI", in: "x\u009b31my", want: "x31my"},
		{name: "bidi override", in: "app\u202etxt.exe", want: "apptxt.exe"},
		{name: "invalid UTF-8", in: "a\xff\xfeb", want: "ab"},
		{name: "printable Unicode kept", in: "Navigateur élégant ✓", want: "Navigateur élégant ✓"},
		{name: "cut at 256 bytes on a rune boundary", in: strings.Repeat("é", 200), want: strings.Repeat("é", 128)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cleanUserAgent(tc.in); got != tc.want {
				t.Fatalf("cleanUserAgent(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestLoginStoresACleanUserAgent: what a client sends as User-Agent reaches
// operators' listings without any character a terminal would interpret.
func TestLoginStoresACleanUserAgent(t *testing.T) {
	s := newDevServer(t)
	a := s.do(t, call{method: "POST", path: "/auth/login", ctype: "application/json",
		body:   `{"email":"` + aliceEmail + `","password":"` + alicePassword + `","client_id":"mobile"}`,
		header: map[string]string{"User-Agent": "evil/1.0 \x1b]0;pwned\a\x1b[31m\u009b2J\u202eok\x7f"}})
	if a.status != 200 {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	list := s.do(t, call{path: "/auth/sessions", bearer: a.json(t)["access_token"].(string)})
	sessions, _ := list.json(t)["sessions"].([]any)
	if len(sessions) != 1 {
		t.Fatalf("sessions: %s", list.body)
	}
	ua, _ := sessions[0].(map[string]any)["user_agent"].(string)
	if !strings.HasPrefix(ua, "evil/1.0") {
		t.Fatalf("user agent %q lost its text", ua)
	}
	for _, r := range ua {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			t.Fatalf("stored user agent %q holds %U", ua, r)
		}
	}
}
