// Package testcaddy builds Caddy from ../cmd/caddy once per test binary and
// runs it as a real process: the integration and end-to-end suites drive
// the module through real sockets and Caddy's real handler chain.
package testcaddy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// caddyBin is the Caddy built for this test binary.
var caddyBin string

// Main builds Caddy (with the race detector when the tests use it), runs
// the tests and exits: call it from TestMain. cmdDir is the path of
// cmd/caddy relative to the test's package.
func Main(m *testing.M, cmdDir string) {
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
	os.RemoveAll(dir)
	os.Exit(code)
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Proc is one running Caddy.
type Proc struct {
	Cmd       *exec.Cmd
	AdminPort int
	Output    *syncBuffer // everything Caddy wrote: its logs
	dataDir   string
}

// Start runs Caddy with a Caddyfile and waits until it serves.
// dataDir is Caddy's storage (several instances may share one); "" gives
// this instance its own.
func Start(t testing.TB, globals, caddyfile, dataDir string, env ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	adminPort := FreePort(t)
	caddyfile = globalOptions(adminPort, globals) + caddyfile
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Proc{AdminPort: adminPort, Output: new(syncBuffer), dataDir: dataDir}
	p.Cmd = exec.Command(caddyBin, "run", "--config", file, "--adapter", "caddyfile")
	p.Cmd.Env = append(os.Environ(), append(env, "XDG_DATA_HOME="+dataDir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(p.Output.String(), "serving initial configuration") {
			return p
		}
		if p.Cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("caddy did not start:\n%s", p.Output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func globalOptions(adminPort int, extra string) string {
	return fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tauto_https off\n\tpersist_config off\n\t%s\n}\n", adminPort, extra)
}

func (p *Proc) Stop() {
	if p.Cmd.Process == nil || p.Cmd.ProcessState != nil {
		return
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-done
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
