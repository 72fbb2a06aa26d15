// Package testredis starts a real redis-server for tests, on a free
// loopback port, and stops it when the test ends.
package testredis

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Port int
	URL  string // redis://127.0.0.1:port/0
	cmd  *exec.Cmd
	dir  string
}

// Required reports whether suites must fail rather than skip when a tool
// they need is missing: CI sets IMPLICIT_GRANT_REQUIRE_ALL=1.
func Required() bool { return os.Getenv("IMPLICIT_GRANT_REQUIRE_ALL") == "1" }

// Start runs redis-server for t, keeping nothing on disk. Without
// redis-server on PATH the test is skipped, or failed when Required.
func Start(t testing.TB) *Server { return start(t, false) }

// StartPersistent is Start with an append-only file, so the data survives
// Restart (an outage rather than a loss).
func StartPersistent(t testing.TB) *Server { return start(t, true) }

func start(t testing.TB, persistent bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if Required() {
			t.Fatal("redis-server is not installed (apt-get install redis-server); IMPLICIT_GRANT_REQUIRE_ALL=1 forbids skipping")
		}
		t.Skip("redis-server not installed")
	}
	s := &Server{dir: t.TempDir()}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port)
	aof := "no"
	if persistent {
		aof = "yes"
	}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", aof, "--appendfsync", "always", "--dir", s.dir)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redis-server did not listen on %d", s.Port)
}

// Stop ends the server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Restart starts the server again on the same port.
func (s *Server) Restart() error {
	s.Stop()
	s.cmd = exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	return s.start()
}
