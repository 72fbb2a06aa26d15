// Package testredis starts a real redis-server for tests, on a free
// loopback port, and stops it when the test ends.
package testredis

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/implicitgrant/caddy-implicit-grant/internal/testport"
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

// External returns the URL of the redis-server that .ci/run starts
// (IMPLICIT_GRANT_REDIS_URL). Without it the test is skipped, or failed
// when Required.
func External(t testing.TB) string {
	t.Helper()
	url := os.Getenv("IMPLICIT_GRANT_REDIS_URL")
	if url == "" {
		if Required() {
			t.Fatal("IMPLICIT_GRANT_REDIS_URL is not set: .ci/run starts a redis-server and sets it")
		}
		t.Skip("IMPLICIT_GRANT_REDIS_URL not set (.ci/run sets it)")
	}
	return url
}

// redisServer finds redis-server, or skips (fails when Required).
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if Required() {
			t.Fatal("redis-server is not installed (apt-get install redis-server); IMPLICIT_GRANT_REQUIRE_ALL=1 forbids skipping")
		}
		t.Skip("redis-server not installed")
	}
	return bin
}

// Start runs redis-server for t, keeping nothing on disk. Without
// redis-server on PATH the test is skipped, or failed when Required.
func Start(t testing.TB) *Server { return start(t, false) }

// StartPersistent is Start with an append-only file, so the data survives
// Restart (an outage rather than a loss).
func StartPersistent(t testing.TB) *Server { return start(t, true) }

func start(t testing.TB, persistent bool) *Server {
	t.Helper()
	aof := "no"
	if persistent {
		aof = "yes"
	}
	return run(t, "--appendonly", aof, "--appendfsync", "always")
}

// run starts redis-server on a free port with extra arguments.
func run(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := redisServer(t)
	s := &Server{dir: t.TempDir(), Port: testport.Free(t)}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port)
	s.cmd = exec.Command(bin, append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--dir", s.dir}, args...)...)
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartReplica runs a replica of master.
func StartReplica(t testing.TB, master *Server) *Server {
	t.Helper()
	return run(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port), "--appendonly", "no")
}

// StartSentinel runs a master and a Sentinel watching it, and returns the
// Sentinel with the URL a client uses: the sentinel's address and
// ?master_set=mymaster.
func StartSentinel(t testing.TB) *Server {
	t.Helper()
	return startSentinel(t, run(t, "--appendonly", "no"), "")
}

// Failover is a master with one replica and a Sentinel that promotes the
// replica within seconds of the master's death.
type Failover struct {
	Master, Replica, Sentinel *Server
}

// StartFailover runs a master, a replica of it and a Sentinel watching
// them (down after 1 s, failover within 5 s).
func StartFailover(t testing.TB) *Failover {
	t.Helper()
	master := run(t, "--appendonly", "no")
	replica := StartReplica(t, master)
	sentinel := startSentinel(t, master, "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n")
	return &Failover{Master: master, Replica: replica, Sentinel: sentinel}
}

func startSentinel(t testing.TB, master *Server, extra string) *Server {
	t.Helper()
	bin := redisServer(t)
	s := &Server{dir: t.TempDir(), Port: testport.Free(t)}
	conf := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n%s", s.Port, master.Port, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.URL = fmt.Sprintf("redis://127.0.0.1:%d?master_set=mymaster", s.Port)
	s.cmd = exec.Command(bin, conf, "--sentinel")
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartCluster runs a three-master Redis Cluster and returns the URL a
// client uses: the first node, with the others as addr parameters.
func StartCluster(t testing.TB) string {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is missing (it comes with redis-server)")
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		// A node's cluster bus listens on port+10000 unless told otherwise,
		// which lands in the kernel's ephemeral range: give it a safe port.
		bus := strconv.Itoa(testport.Free(t))
		n := run(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", bus, "--appendonly", "no")
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	create := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("creating the cluster: %v\n%s", err, out)
	}
	// Every node must see the cluster as ok before it serves its slots.
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range addrs {
		for {
			out, _ := exec.Command(cli, "-h", "127.0.0.1", "-p", strings.TrimPrefix(addr, "127.0.0.1:"), "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s is not ready:\n%s", addr, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return "redis://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
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
