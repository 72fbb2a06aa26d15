package browsers

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// RequireTool finds a program the engine suites need; without it they
// skip, or fail when IMPLICIT_GRANT_REQUIRE_ALL=1 (CI).
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("IMPLICIT_GRANT_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is not installed (apt-get install %s); IMPLICIT_GRANT_REQUIRE_ALL=1 forbids skipping", name, pkg)
	}
	t.Skipf("%s not installed", name)
	return ""
}

// startGroup runs cmd in a process group of its own, ended with t: the
// browser's helpers must not outlive the test.
func startGroup(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

// waitUntil polls check (which decodes a boolean) until it says true, for
// up to 20 s; then it fails the test, saying where the page is.
func waitUntil(t testing.TB, what string, check, location func(out any) error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if check(&ok) == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var at string
	_ = location(&at)
	t.Fatalf("timed out waiting for %s; at %s", what, at)
}
