package httpapi

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAdaptersDoNotImportEachOther: DESIGN section 2, "adapters do not import
// each other". The HTTP server implements what the admin API and the gateway
// need through interfaces and internal/auth types; only cmd wires them (tests
// may mount them together). And "no product decision lives in httpapi":
// handlers parse, call internal/logins, encode, so the session registry,
// the token service and the user store are not theirs to reach (tests may).
func TestAdaptersDoNotImportEachOther(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"/internal/admin", "/internal/gateway", "/internal/session", "/internal/token", "/internal/user"}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if strings.HasSuffix(path, bad) {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}
