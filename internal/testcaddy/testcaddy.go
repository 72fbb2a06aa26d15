// Package testcaddy builds Caddy from ../cmd/caddy once per test binary and
// runs it as a real process: the integration and end-to-end suites drive
// the module through real sockets and Caddy's real handler chain.
package testcaddy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testport"
)

// caddyBin is the Caddy built for this test binary.
var caddyBin string

// Main builds Caddy (with the race detector when the tests use it), runs
// the tests, then the teardowns, and exits: call it from TestMain. cmdDir
// is the path of cmd/caddy relative to the test's package.
func Main(m *testing.M, cmdDir string, teardown ...func()) {
	dir, err := os.MkdirTemp("", "implicit-grant-caddy")
	if err != nil {
		panic(err)
	}
	caddyBin = filepath.Join(dir, "caddy")
	args := []string{"build", "-o", caddyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, cmdDir)...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building caddy:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range teardown {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreePort returns a port for a test server (see package testport).
func FreePort(t testing.TB) int { return testport.Free(t) }

// Buffer collects output written concurrently (a process's, a logger's)
// while tests read it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Sync is a no-op, so a Buffer can be a zap WriteSyncer.
func (b *Buffer) Sync() error { return nil }

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is one running Caddy.
type Proc struct {
	Cmd       *exec.Cmd
	AdminPort int
	Output    *Buffer // everything Caddy wrote: its logs
	exited    chan struct{}
}

// Start runs Caddy with a Caddyfile (after a global block with a free
// admin port, no automatic HTTPS and globals) and waits until it serves.
// dataDir is Caddy's storage (several instances may share one); "" gives
// this instance its own.
func Start(t testing.TB, globals, caddyfile, dataDir string, env ...string) *Proc {
	t.Helper()
	adminPort := FreePort(t)
	return run(t, globalOptions(adminPort, globals)+caddyfile, adminPort, dataDir, env)
}

// StartRaw runs a complete Caddyfile as it is, global options included:
// its admin endpoint must be on adminPort.
func StartRaw(t testing.TB, caddyfile string, adminPort int, env ...string) *Proc {
	t.Helper()
	return run(t, caddyfile, adminPort, "", env)
}

func run(t testing.TB, caddyfile string, adminPort int, dataDir string, env []string) *Proc {
	t.Helper()
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Proc{AdminPort: adminPort, Output: new(Buffer), exited: make(chan struct{})}
	p.Cmd = exec.Command(caddyBin, "run", "--config", file, "--adapter", "caddyfile")
	p.Cmd.Env = append(os.Environ(), append(env, "XDG_DATA_HOME="+dataDir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.Stop)
	deadline := time.After(30 * time.Second)
	for !strings.Contains(p.Output.String(), "serving initial configuration") {
		select {
		case <-p.exited:
			t.Fatalf("caddy exited:\n%s", p.Output.String())
		case <-deadline:
			t.Fatalf("caddy did not start:\n%s", p.Output.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

func globalOptions(adminPort int, extra string) string {
	return fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n\tpersist_config off\n\t%s\n}\n", adminPort, extra)
}

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop shuts Caddy down gracefully, or kills it after 10 s.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Load replaces the running config through the admin API, as `caddy reload` does.
func (p *Proc) Load(t testing.TB, caddyfile string) {
	t.Helper()
	caddyfile = globalOptions(p.AdminPort, "") + caddyfile
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/load", p.AdminPort), strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("reload: %d %s", resp.StatusCode, b)
	}
}
