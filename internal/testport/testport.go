// Package testport hands out loopback ports for the servers tests start.
//
// Why not just listen on port 0 and close: go test runs several test
// binaries at once, and Caddy binds with SO_REUSEPORT. A port that two
// processes were both told is free can then be bound by two Caddys at
// once, and the kernel quietly splits the connections between them: a
// test talks to the other test's server. So every port comes from one
// counter shared by all test processes on the machine (a file, guarded
// by a lock file that only one process can create at a time: portable,
// unlike flock), in a range below the kernel's ephemeral ports, and is
// checked to be free before it is handed out.
package testport

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	first = 20000
	last  = 29999 // below the ephemeral range (32768 and up), so bind(0) never picks these
)

var (
	counterFile = filepath.Join(os.TempDir(), "implicit-grant-test-ports")
	lockFile    = counterFile + ".lock"
)

// lock waits until this process holds the lock file. A lock older than a
// few seconds was left by a process that died holding it.
func lock() (unlock func(), err error) {
	for deadline := time.Now().Add(30 * time.Second); ; {
		f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(lockFile) }, nil
		}
		if !os.IsExist(err) {
			return nil, err
		}
		if fi, err := os.Stat(lockFile); err == nil && time.Since(fi.ModTime()) > 5*time.Second {
			os.Remove(lockFile)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is held by another process", lockFile)
		}
		time.Sleep(time.Millisecond)
	}
}

// Free returns a loopback port no other test process has been given lately
// and nobody listens on now.
func Free(t testing.TB) int {
	t.Helper()
	p, err := next()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func next() (int, error) {
	unlock, err := lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, err := os.OpenFile(counterFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 16)
	n, _ := f.ReadAt(buf, 0)
	port, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || port < first || port > last {
		port = first + os.Getpid()%(last-first)
	}
	for tries := 0; tries <= last-first; tries++ {
		if port++; port > last {
			port = first
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue // in use
		}
		l.Close()
		if err := f.Truncate(0); err != nil {
			return 0, err
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(port)), 0); err != nil {
			return 0, err
		}
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d", first, last)
}
