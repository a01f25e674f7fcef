package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadReportsBadValuesWithTheValue(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "duration", env: map[string]string{"TOKENSHIFT_SESSION_IDLE_TIMEOUT": "banana"},
			want: []string{"session.idle_timeout", `"banana"`, "TOKENSHIFT_SESSION_IDLE_TIMEOUT"}},
		{name: "int", env: map[string]string{"TOKENSHIFT_SERVER_BODY_LIMIT": "64k"},
			want: []string{"server.body_limit", `"64k"`, "whole number"}},
		{name: "bool", env: map[string]string{"TOKENSHIFT_SESSION_COOKIE_SECURE": "maybe"},
			want: []string{"session.cookie_secure", `"maybe"`, "true or false"}},
		{name: "float", env: map[string]string{"TOKENSHIFT_GUARD_MAX_SESSION_SHARE": "1%"},
			want: []string{"guard.max_session_share", `"1%"`}},
		{name: "every bad key at once", env: map[string]string{"TOKENSHIFT_SESSION_IDLE_TIMEOUT": "x", "TOKENSHIFT_SERVER_BODY_LIMIT": "y"},
			want: []string{"session.idle_timeout", "server.body_limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := Load("", nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestLoadRefusesUnknownKeys(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{name: "top-level typo", yaml: "sesion:\n  idle_timeout: 5m\n", want: "sesion: unknown key"},
		{name: "nested typo", yaml: "session:\n  idle_timout: 5m\n", want: "session.idle_timout: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(file, nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tt.want)
			}
		})
	}
	// Free-form maps still take any key.
	file := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(file, []byte("migration:\n  clients:\n    mobile: jwt-only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, nil)
	if err != nil || c.Migration.Clients["mobile"] != "jwt-only" {
		t.Fatalf("per-client override: %v %+v", err, c)
	}
}
