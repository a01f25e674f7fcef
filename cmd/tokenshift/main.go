// Command tokenshift runs the session-to-JWT migration service and its operator
// tools. This package only wires: configuration comes from internal/config,
// behaviour from the internal packages.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/tokenshift/tokenshift/internal/config"
	"github.com/tokenshift/tokenshift/internal/termsafe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage.
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors that are the caller's fault (bad flags, bad config).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		// Errors can carry server answers and file contents: printed
		// with their lines, anything else a terminal would act on escaped.
		fmt.Fprintln(os.Stderr, "tokenshift:", termsafe.EscapeLines(err.Error()))
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, config.ErrInvalid) {
			os.Exit(exitUsage)
		}
		os.Exit(exitFailure)
	}
}
