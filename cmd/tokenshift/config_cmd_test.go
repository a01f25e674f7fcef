package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenshift/tokenshift/configs"
	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/token"
)

// TestConfigValidateReadsFiles: "config validate" refuses (exit 2: an error
// matching config.ErrInvalid) the configs serve refuses at start for their
// key directory or users file, and accepts a good one, without any network.
func TestConfigValidateReadsFiles(t *testing.T) {
	goodKeys := t.TempDir()
	for _, kid := range []string{"k1", "k2"} {
		if _, err := token.GenerateKeyFile(goodKeys, kid, token.AlgEdDSA); err != nil {
			t.Fatal(err)
		}
	}
	emptyKeys := t.TempDir()
	badKeys := t.TempDir()
	if err := os.WriteFile(filepath.Join(badKeys, "k1.pem"), []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	goodUsers := filepath.Join(files, "users.yaml")
	if err := os.WriteFile(goodUsers, configs.DevUsersYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	badUsers := filepath.Join(files, "broken.yaml")
	if err := os.WriteFile(badUsers, []byte("users: [ {id: u1, email: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		env  map[string]string
		// keys whose problems the error must list; none = valid.
		wantKeys []string
		wantText string
	}{
		{name: "good keys and users", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": goodKeys, "TOKENSHIFT_JWT_SIGNING_KID": "k1", "TOKENSHIFT_USERS_FILE": goodUsers}},
		{name: "no keys dir: ephemeral development key", env: map[string]string{}},
		{name: "keys dir missing", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": filepath.Join(emptyKeys, "nope")}, wantKeys: []string{"jwt.keys_dir"}},
		{name: "keys dir empty", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": emptyKeys}, wantKeys: []string{"jwt.keys_dir"}, wantText: "no *.pem files"},
		{name: "key file not a key", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": badKeys}, wantKeys: []string{"jwt.keys_dir"}},
		{name: "signing kid not in the dir", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": goodKeys, "TOKENSHIFT_JWT_SIGNING_KID": "k9"},
			wantKeys: []string{"jwt.keys_dir"}, wantText: `signing kid "k9"`},
		{name: "users file missing", env: map[string]string{"TOKENSHIFT_USERS_FILE": filepath.Join(files, "nope.yaml")}, wantKeys: []string{"users.file"}},
		{name: "users file malformed", env: map[string]string{"TOKENSHIFT_USERS_FILE": badUsers}, wantKeys: []string{"users.file"}},
		{name: "both at once", env: map[string]string{"TOKENSHIFT_JWT_KEYS_DIR": emptyKeys, "TOKENSHIFT_USERS_FILE": badUsers}, wantKeys: []string{"jwt.keys_dir", "users.file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			root := newRootCmd()
			var out, errOut bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&errOut)
			root.SetArgs([]string{"config", "validate"})
			err := root.ExecuteContext(context.Background())
			if len(tt.wantKeys) == 0 {
				if err != nil {
					t.Fatalf("config validate: %v", err)
				}
				if !strings.Contains(out.String(), "# effective configuration (valid)") {
					t.Errorf("output: %s", out.String())
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("config validate = %v, want a config.ErrInvalid error (exit 2)", err)
			}
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not a *config.ValidationError", err)
			}
			var keys []string
			for _, f := range ve.Fields {
				keys = append(keys, f.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tt.wantKeys, ",") {
				t.Errorf("bad keys %v, want %v (%v)", keys, tt.wantKeys, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
			if strings.Contains(out.String(), "(valid)") {
				t.Errorf("an invalid config was printed as valid")
			}
		})
	}
}
