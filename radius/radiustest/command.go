package radiustest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedCommand returns the path of the external program name, for interop
// tests. When it is not installed the test is skipped, except in CI (the
// CI environment variable is set), where the program is part of the setup and
// its absence is a failure rather than a silently skipped test.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI but not found: %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}
