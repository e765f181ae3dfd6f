// Package e2e runs the real server against real Yjs clients: the npm packages yjs and
// y-websocket under Node (scenarios.mjs), and, for the restart tests, the ysync binary against
// PostgreSQL.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/internal/leaktest"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// TestMain checks that every server the tests started (shut down in t.Cleanup) left no
// session, document or storage goroutine behind.
func TestMain(m *testing.M) { leaktest.Main(m) }

// node returns the node binary and the repository root (for node_modules), or skips.
func node(t *testing.T) (nodeBin, root string) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node not found; the end-to-end tests need Node and npm ci")
		}
		t.Skip("node not found")
	}
	root, err = filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "y-websocket")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node_modules/y-websocket missing; run npm ci")
		}
		t.Skip("node_modules/y-websocket missing; run npm ci")
	}
	return nodeBin, root
}

// startServer runs an in-process server with an in-memory store on 127.0.0.1:0 and returns the
// base URL a WebsocketProvider takes.
func startServer(t *testing.T, cfg server.Config) (base string, srv *server.Server) {
	t.Helper()
	st := store.NewMemory()
	srv = server.New(cfg, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	return "ws://" + ln.Addr().String() + "/ws", srv
}

type result struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error"`
	Raw   json.RawMessage `json:"-"`
}

// runScenario runs one scenario of scenarios.mjs and fails the test unless it reports ok.
func runScenario(t *testing.T, scenario, base, arg string) json.RawMessage {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{filepath.Join(root, "e2e", "scenarios.mjs"), scenario, base}
	if arg != "" {
		args = append(args, arg)
	}
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	last := lastLine(stdout.String())
	var res result
	_ = json.Unmarshal([]byte(last), &res)
	if err != nil || !res.OK {
		t.Fatalf("scenario %s: %v; result %s\nstderr:\n%s", scenario, err, last, stderr.String())
	}
	return json.RawMessage(last)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestTwoClientsSyncBothWays(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "twoWay", base, "")
	// Document names may contain ':' and '/'.
	runScenario(t, "twoWay", base, "workflow:1234/sub/doc")
}

func TestLateJoinerGetsFullState(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "lateJoiner", base, "")
}

func TestFiveClientsConverge(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "converge5", base, "")
}

func TestAwarenessAppearsAndLeaves(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "awareness", base, "")
}

func TestOfflineEditReconnect(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "offline", base, "")
}

func TestTwoMegabyteText(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "big", base, "")
}

func TestFiftyDocumentsIndependent(t *testing.T) {
	t.Parallel()
	base, srv := startServer(t, server.Config{IdleTimeout: time.Minute})
	runScenario(t, "manyDocs", base, "")
	if n := srv.Registry().Count(); n < 50 {
		t.Errorf("documents loaded = %d, want >= 50", n)
	}
}

func TestBadFramesCloseOnlyTheSender(t *testing.T) {
	t.Parallel()
	base, _ := startServer(t, server.Config{})
	runScenario(t, "garbage", base, "")
}

// --- restart tests against PostgreSQL, with the real binary --------------------------------

// buildBinary builds cmd/ysync once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ysync-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ysync")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/ysync/ysync/cmd/ysync").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a running `ysync serve`.
type proc struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer // read it with logs() while the process runs
	logged *lockedWriter // the process's stderr, into stderr
	exited chan error
}

// logs returns what the server has written to stderr so far.
func (p *proc) logs() string {
	p.logged.mu.Lock()
	defer p.logged.mu.Unlock()
	return p.stderr.String()
}

func startBinary(t *testing.T, bin, dbURL string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", dbURL, "--auto-migrate", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "YSYNC_DATABASE_URL=")
	return startCmd(t, cmd)
}

// startCmd starts cmd (a `ysync serve`) and waits until it prints the address it listens on.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.logged = &lockedWriter{w: p.stderr}
	cmd.Stderr = p.logged
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ysync listening on http://"); ok {
				addr <- a
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case a := <-addr:
		p.base = "ws://" + a + "/ws"
	case err := <-p.exited:
		t.Fatalf("ysync exited at start: %v\n%s", err, firstLines(p.logs(), 40))
	case <-time.After(60 * time.Second):
		t.Fatalf("ysync did not start\n%s", firstLines(p.logs(), 40))
	}
	return p
}

func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.exited:
		return err
	case <-time.After(60 * time.Second):
		t.Fatalf("ysync did not exit\n%s", p.stderr)
		return nil
	}
}
