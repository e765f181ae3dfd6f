package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/store"
)

// freeAddr returns a 127.0.0.1 address nothing listens on, so that a server can be restarted on
// the same address and y-websocket clients reconnect to it by themselves.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServeAt runs `ysync serve` on addr against dbURL (empty: the in-memory store, which is no
// longer the default) and waits until it listens.
func startServeAt(t *testing.T, bin, dbURL, addr string, extra ...string) *proc {
	t.Helper()
	args := []string{"serve", "--addr", addr, "--database-url", dbURL, "--auto-migrate", "--idle-timeout", "1m", "--log-level", "warn"}
	if dbURL == "" {
		args = append(args, "--store", "memory")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "YSYNC_DATABASE_URL=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: "ws://" + addr + "/ws", stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{w: p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ysync listening on") {
				once.Do(func() { close(listening) })
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
	case <-listening:
	case err := <-p.exited:
		t.Fatalf("ysync exited at start: %v\n%s", err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("ysync did not start\n%s", p.stderr)
	}
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// kill sends SIGKILL and waits for the process.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.wait(t)
}

// editors is a running e2e/crash.mjs: continuous y-websocket editors of one document.
type editors struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	acked  map[string]bool
	result chan string
	stderr bytes.Buffer
	errw   *lockedWriter // writes stderr under its own lock; stderrString takes the same one
}

func startEditors(t *testing.T, base, doc string, clients int, token string) *editors {
	t.Helper()
	args := []string{base, doc, fmt.Sprint(clients)}
	if token != "" {
		args = append(args, token)
	}
	return runEditors(t, "crash.mjs", args...)
}

// runEditors runs an editors script of e2e (crash.mjs, cluster.mjs) with args.
func runEditors(t *testing.T, script string, args ...string) *editors {
	t.Helper()
	nodeBin, root := node(t)
	cmd := exec.Command(nodeBin, append([]string{filepath.Join(root, "e2e", script)}, args...)...)
	e := &editors{cmd: cmd, acked: map[string]bool{}, result: make(chan string, 1)}
	e.errw = &lockedWriter{w: &e.stderr}
	cmd.Stderr = e.errw
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if e.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var line struct {
				Acked *string `json:"acked"`
				OK    *bool   `json:"ok"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			switch {
			case line.Acked != nil:
				e.mu.Lock()
				e.acked[*line.Acked] = true
				e.mu.Unlock()
			case line.OK != nil:
				e.result <- sc.Text()
			}
		}
	}()
	return e
}

func (e *editors) ackedCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.acked)
}

func (e *editors) ackedLabels() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.acked))
	for k := range e.acked {
		out = append(out, k)
	}
	return out
}

// stop makes the editors stop, converge and report the converged items.
func (e *editors) stop(t *testing.T) []string {
	t.Helper()
	if _, err := io.WriteString(e.stdin, "stop\n"); err != nil {
		t.Fatalf("editors gone: %v\n%s", err, e.stderrString())
	}
	var res string
	select {
	case res = <-e.result:
	case <-time.After(240 * time.Second): // crash.mjs gives up by itself after 180 s of waits
		t.Fatalf("editors did not converge\n%s", e.stderrString())
	}
	_ = e.cmd.Wait()
	var out struct {
		OK    bool     `json:"ok"`
		Error string   `json:"error"`
		Items []string `json:"items"`
	}
	if err := json.Unmarshal([]byte(res), &out); err != nil || !out.OK {
		t.Fatalf("editors: %s\n%s", res, e.stderrString())
	}
	return out.Items
}

func (e *editors) stderrString() string {
	e.errw.mu.Lock()
	defer e.errw.mu.Unlock()
	return e.stderr.String()
}

// readStrings reads the items array of doc with a fresh y-websocket client.
func readStrings(t *testing.T, base, doc string) []string {
	t.Helper()
	raw := runScenario(t, "reader", base, doc)
	var res struct {
		Items []string `json:"items"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("reader result %s: %v", raw, err)
	}
	return res.Items
}

// waitStored polls the admin API until doc has no update waiting for the store.
func waitStored(t *testing.T, httpBase, doc, token string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", httpBase+"/api/rooms/"+doc, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var room struct {
				PendingUpdates int `json:"pending_updates"`
			}
			err = json.NewDecoder(resp.Body).Decode(&room)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 && room.PendingUpdates == 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s still has updates waiting for the store", doc)
}

func httpBase(p *proc) string {
	return "http://" + strings.TrimSuffix(strings.TrimPrefix(p.base, "ws://"), "/ws")
}

// storedItems reads doc's items array straight from the database.
func storedItems(t *testing.T, dbURL, doc string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg, err := store.OpenPostgres(ctx, dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	checkpoint, updates, _, err := pg.Load(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	d := crdt.NewDoc(crdt.DocOptions{})
	if checkpoint != nil {
		updates = append([][]byte{checkpoint}, updates...)
	}
	for _, u := range updates {
		if err := crdt.ApplyUpdate(d, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, v := range d.GetArray("items").ToJSON() {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// checkAll fails unless every label of want is in have.
func checkAll(t *testing.T, what string, want, have []string) {
	t.Helper()
	set := make(map[string]bool, len(have))
	for _, h := range have {
		set[h] = true
	}
	missing := 0
	for _, w := range want {
		if !set[w] {
			if missing < 10 {
				t.Errorf("%s: %s is missing", what, w)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%s: %d of %d missing", what, missing, len(want))
	}
}

// Real y-websocket clients edit continuously while the real binary is killed with SIGKILL at
// random moments and restarted on the same database, 20 times. Every update a client saw echoed
// is stored, and the clients converge.
func TestCrashLoopSIGKILL(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	addr := freeAddr(t)
	doc := "crash:loop/doc"
	p := startServeAt(t, bin, dbURL, addr)
	ed := startEditors(t, p.base, doc, 3, "")

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const cycles = 20
	for i := range cycles {
		time.Sleep(time.Duration(250+rng.IntN(900)) * time.Millisecond)
		p.kill(t)
		t.Logf("cycle %d: killed with %d acked so far", i+1, ed.ackedCount())
		if i%4 == 3 {
			// With the server dead, every ack printed so far came from a server that
			// committed the update before echoing it: the database has them all.
			time.Sleep(100 * time.Millisecond) // drain the editors' pipe
			checkAll(t, fmt.Sprintf("database after kill %d", i+1), ed.ackedLabels(), storedItems(t, dbURL, doc))
		}
		p = startServeAt(t, bin, dbURL, addr)
	}
	time.Sleep(500 * time.Millisecond)
	items := ed.stop(t)
	acked := ed.ackedLabels()
	if len(acked) < 100 {
		t.Fatalf("only %d updates acked over %d cycles", len(acked), cycles)
	}
	checkAll(t, "converged clients", acked, items)

	// Once stored, a last SIGKILL loses nothing either: a fresh client reads exactly the
	// converged state.
	waitStored(t, httpBase(p), doc, "")
	p.kill(t)
	p = startServeAt(t, bin, dbURL, addr)
	got := readStrings(t, p.base, doc)
	checkAll(t, "after restart (acked)", acked, got)
	checkAll(t, "after restart (converged)", items, got)
	if len(got) != len(items) {
		t.Fatalf("after restart %d items, converged clients had %d", len(got), len(items))
	}
	t.Logf("%d cycles: %d items, %d acked, all present", cycles, len(items), len(acked))
}
