package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ysync/ysync/internal/pgtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func queryRow(t *testing.T, dbURL, sql string, args ...any) pgx.Row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn.QueryRow(ctx, sql, args...)
}

func readItems(t *testing.T, base, doc string) []int {
	t.Helper()
	raw := runScenario(t, "reader", base, doc)
	var res struct {
		Items []int `json:"items"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("reader result %s: %v", raw, err)
	}
	return res.Items
}

// wantFirstItems fails the test unless the document holds the items 0 to n-1, in order.
func wantFirstItems(t *testing.T, base, doc string, n int) {
	t.Helper()
	items := readItems(t, base, doc)
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(items, want) {
		t.Fatalf("after restart items = %v, want %v", items, want)
	}
}

// ackedBeforeKill runs a writer of many items on doc against p and SIGKILLs p once the writer saw
// 60 of them acknowledged, while it keeps writing; then it kills the writer. It returns the
// highest item acknowledged: every ack the writer printed came from the server before it died,
// so its output after the kill still counts.
func ackedBeforeKill(t *testing.T, p *proc, doc string) int {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := exec.CommandContext(ctx, nodeBin, filepath.Join(root, "e2e", "scenarios.mjs"), "writer", p.base, doc+"|100000")
	out, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Process.Kill(); _ = w.Wait() }()
	acked := -1
	sc := bufio.NewScanner(out)
	read := func() {
		var line struct {
			Acked *int `json:"acked"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Acked != nil {
			acked = max(acked, *line.Acked)
		}
	}
	for acked < 60 && sc.Scan() {
		read()
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t)
	_ = w.Process.Kill()
	for sc.Scan() {
		read()
	}
	_ = w.Wait()
	if acked < 60 {
		t.Fatalf("writer acked only %d items", acked)
	}
	return acked
}

// wantAcked fails the test unless the document holds every item up to acked.
func wantAcked(t *testing.T, base, doc string, acked int) {
	t.Helper()
	items := readItems(t, base, doc)
	for i := 0; i <= acked; i++ {
		if !slices.Contains(items, i) {
			t.Fatalf("item %d was acked before the kill but is missing after restart (have %d items)", i, len(items))
		}
	}
	t.Logf("acked %d, found %d items after SIGKILL + restart", acked+1, len(items))
}

// Edits acknowledged before a graceful stop (SIGTERM) are there after a restart, and the
// server exits 0.
func TestRestartAfterSIGTERM(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	doc := "restart:term/doc"

	p := startBinary(t, bin, dbURL)
	runScenario(t, "writer", p.base, doc+"|40")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("ysync exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", p.stderr)
	}

	// The graceful stop checkpointed the document: its log is compacted into one checkpoint.
	var logRows, checkpoints int
	if err := queryRow(t, dbURL, `SELECT (SELECT count(*) FROM document_updates WHERE doc_name = $1),
		(SELECT count(*) FROM document_checkpoints WHERE doc_name = $1)`, doc).Scan(&logRows, &checkpoints); err != nil {
		t.Fatal(err)
	}
	if logRows != 0 || checkpoints != 1 {
		t.Errorf("after SIGTERM: %d log rows and %d checkpoints, want 0 and 1", logRows, checkpoints)
	}

	p2 := startBinary(t, bin, dbURL)
	wantFirstItems(t, p2.base, doc, 40)
}

// Every update a client saw echoed is on disk, even when the server is killed with SIGKILL.
func TestRestartAfterSIGKILL(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	doc := "restart:kill/doc"

	p := startBinary(t, bin, dbURL)
	acked := ackedBeforeKill(t, p, doc)
	p2 := startBinary(t, bin, dbURL)
	wantAcked(t, p2.base, doc, acked)
}
