package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// startDefault runs `ysync serve` with no flags at all in dir (the address comes from
// YSYNC_ADDR, so the command line is the newcomer's), with every other YSYNC_* and DATABASE_URL
// blanked: the default store is the SQLite file dir/ysync-data/ysync.db.
func startDefault(t *testing.T, bin, dir string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "YSYNC_") && k != "DATABASE_URL" {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "YSYNC_ADDR=127.0.0.1:0", "YSYNC_LOG_LEVEL=debug")
	return startCmd(t, cmd)
}

// A y-websocket client's edits survive a graceful restart of `ysync serve` run without flags.
func TestDefaultStoreSurvivesSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	node(t)
	dir := t.TempDir()
	doc := "sqlite:term/doc"

	p := startDefault(t, bin, dir)
	runScenario(t, "writer", p.base, doc+"|40")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("ysync exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	// (stderr is read only after the process exited: its copying goroutine is done then.)
	if !strings.Contains(p.stderr.String(), filepath.Join("ysync-data", "ysync.db")) {
		t.Errorf("start-up log does not name the database file:\n%s", p.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "ysync-data", "ysync.db")); err != nil {
		t.Fatalf("no database file after the first run: %v", err)
	}

	p2 := startDefault(t, bin, dir)
	wantFirstItems(t, p2.base, doc, 40)
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t); err != nil {
		t.Fatalf("second ysync exit: %v\n%s", err, p2.stderr)
	}
}

// Every update a client saw echoed is in the SQLite file, even when the server is killed with
// SIGKILL in the middle of a stream of edits.
func TestDefaultStoreSurvivesSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	node(t)
	dir := t.TempDir()
	doc := "sqlite:kill/doc"

	p := startDefault(t, bin, dir)
	acked := ackedBeforeKill(t, p, doc)
	p2 := startDefault(t, bin, dir)
	wantAcked(t, p2.base, doc, acked)
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t); err != nil {
		t.Fatalf("second ysync exit: %v\n%s", err, p2.stderr)
	}
}
