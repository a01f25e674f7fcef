package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// sourceFiles parses the package's non-test files.
func sourceFiles(t *testing.T) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	if len(files) == 0 {
		t.Fatal("no source files")
	}
	return fset, files
}

// TestRootBuildsEveryCommand: root.go lists the whole tree; no file adds a
// command to it from an init function or a registration list, so reading
// newRootCmd is reading every command the binary has.
func TestRootBuildsEveryCommand(t *testing.T) {
	var got []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		got = append(got, c.CommandPath())
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	slices.Sort(got)
	want := []string{
		"tokenshift",
		"tokenshift audit",
		"tokenshift config", "tokenshift config validate",
		"tokenshift keys", "tokenshift keys generate", "tokenshift keys list", "tokenshift keys rotate",
		"tokenshift phase", "tokenshift phase rollback", "tokenshift phase set", "tokenshift phase show",
		"tokenshift serve",
		"tokenshift sessions", "tokenshift sessions list", "tokenshift sessions revoke",
		"tokenshift usage",
		"tokenshift user", "tokenshift user account", "tokenshift user hash-password", "tokenshift user suspend", "tokenshift user unsuspend",
		"tokenshift version",
	}
	if !slices.Equal(got, want) {
		t.Errorf("command tree:\n got %q\nwant %q", got, want)
	}

	fset, files := sourceFiles(t)
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.Name == "init" {
					t.Errorf("%s: an init function; add commands in newRootCmd (root.go)", fset.Position(d.Pos()))
				}
			case *ast.GenDecl:
				if d.Tok != token.VAR {
					continue
				}
				ast.Inspect(d, func(n ast.Node) bool {
					if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Command" {
						t.Errorf("%s: a package variable of commands; add commands in newRootCmd (root.go)", fset.Position(sel.Pos()))
					}
					return true
				})
			}
		}
	}
}

// TestCLIShape keeps the CLI readable: no function over 80 lines (a
// command's help text lives in a constant, its work in named functions),
// and no untyped JSON: answers decode into the server's own types, bodies
// are typed structs.
func TestCLIShape(t *testing.T) {
	const maxLines = 80
	fset, files := sourceFiles(t)
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if lines := fset.Position(n.End()).Line - fset.Position(n.Pos()).Line + 1; lines > maxLines {
					t.Errorf("%s: %s has %d lines, more than %d", fset.Position(n.Pos()), n.Name.Name, lines, maxLines)
				}
			case *ast.MapType:
				if _, ok := n.Value.(*ast.InterfaceType); ok {
					t.Errorf("%s: map[string]any: decode into the server's type, send a typed body", fset.Position(n.Pos()))
				}
				if id, ok := n.Value.(*ast.Ident); ok && id.Name == "any" {
					t.Errorf("%s: map[string]any: decode into the server's type, send a typed body", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
}
