// Package redistest gives tests a Redis server.
//
// URL returns the shared test server from YSYNC_TEST_REDIS_URL (scripts/test.sh starts one via
// scripts/redis.sh); Start runs a private redis-server process on a free loopback port, which a
// test may SIGKILL and restart on the same port. When the server or the binary is missing, tests
// are skipped, or fail when the CI environment variable is set, so a missing Redis never passes
// silently in CI.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable holding the shared test server's URL.
const EnvURL = "YSYNC_TEST_REDIS_URL"

// EnvServer names the environment variable holding the redis-server binary (scripts/redis.sh).
const EnvServer = "YSYNC_TEST_REDIS_SERVER"

func missing(t testing.TB, msg string) {
	t.Helper()
	msg += ". Run scripts/test.sh (it installs and starts Redis), or `scripts/redis.sh go test ./...`"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// URL returns the shared test server's URL.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		missing(t, EnvURL+" is not set: these tests need Redis")
	}
	return u
}

// Prefix returns a fresh key and channel prefix, so tests sharing one server do not see each
// other's keys and messages.
func Prefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:]) + ":"
}

// Server is a private redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// Start runs a private redis-server on a free loopback port; it is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv(EnvServer)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			missing(t, "redis-server not found")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// URL returns the server's URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Kill sends SIGKILL and waits for the process to end (no-op when not running).
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: nothing is persisted) and waits
// until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
			"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			s.t.Fatalf("start redis-server: %v", err)
		}
		s.cmd = cmd
		if s.waitReady(cmd, 10*time.Second) {
			return
		}
		s.Kill() // the port may still be held by the killed one; try again
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not start on port %d", s.port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) waitReady(cmd *exec.Cmd, within time.Duration) bool {
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return true
		}
		if cmd.ProcessState != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
