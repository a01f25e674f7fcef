// Package citest decides what a test does when a real component it needs
// (redis-server, Chromium, nginx, PostgreSQL, MariaDB) is missing.
package citest

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run under CI=true, where .ci/run has
// installed and started every component.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends t because a component is missing: a skip on a developer's
// machine, a failure under CI=true, where a skip would hide a broken suite.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (under CI=true nothing may skip: .ci/run must provide it)", msg)
	}
	t.Skipf("%s (skipped; set CI=true to make this a failure)", msg)
}
