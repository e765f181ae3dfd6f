package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/workflow"
)

// wfEnv is a server with workflows over a fresh PostgreSQL schema.
type wfEnv struct {
	ws, http string // ws://.../ws and http://...
	srv      *server.Server
	repo     *workflow.Repo
	stop     func() // shuts the server down (idempotent; also run at cleanup)
}

// newPool returns a pool over a fresh migrated schema, closed at cleanup.
func newPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := pgtest.NewSchema(t)
	ctx := context.Background()
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, url
}

// startWorkflowServer runs an in-process server with the Postgres store and workflows on pool.
func startWorkflowServer(t *testing.T, pool *pgxpool.Pool) *wfEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.NewPostgres(ctx, pool, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	broker := pubsub.New(0)
	repo := workflow.NewRepo(pool)
	svc := workflow.NewService(workflow.Config{Repo: repo, Broker: broker})
	srv := server.New(server.Config{Workflows: &server.Workflows{
		Service: svc, Repo: repo, Broker: broker, Heartbeat: 200 * time.Millisecond,
	}}, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			_ = st.Close()
			broker.Close()
		})
	}
	t.Cleanup(stop)
	addr := ln.Addr().String()
	return &wfEnv{ws: "ws://" + addr + "/ws", http: "http://" + addr, srv: srv, repo: repo, stop: stop}
}

// sampleWorkflow is a valid workflow: a webhook trigger, three jobs, two edges, positions.
func sampleWorkflow() *workflow.Workflow {
	j1, j2, j3, t1 := workflow.NewID(), workflow.NewID(), workflow.NewID(), workflow.NewID()
	str := func(s string) *string { return &s }
	return &workflow.Workflow{
		ProjectID: workflow.NewID(),
		Name:      "e2e " + workflow.NewID()[:8],
		Positions: map[string]workflow.Position{j1: {X: 10, Y: 20}, t1: {X: 0, Y: -5.5}},
		Jobs: []workflow.Job{
			{ID: j1, Name: "fetch", Body: "fn(state => state) // héllo 😀", Adaptor: "@openfn/language-http@6.0.0"},
			{ID: j2, Name: "transform", Body: "each('$.items[*]', post())"},
			{ID: j3, Name: "notify", Body: ""},
		},
		Triggers: []workflow.Trigger{{ID: t1, Type: workflow.TriggerWebhook, Enabled: true, WebhookReply: str(workflow.ReplyBeforeStart)}},
		Edges: []workflow.Edge{
			{ID: workflow.NewID(), SourceTriggerID: &t1, TargetJobID: j1, ConditionType: workflow.ConditionAlways, Enabled: true},
			{ID: workflow.NewID(), SourceJobID: &j1, TargetJobID: j2, ConditionType: workflow.ConditionOnSuccess, Enabled: true},
		},
	}
}

func (e *wfEnv) create(t *testing.T) *workflow.Workflow {
	t.Helper()
	w, err := e.repo.Create(context.Background(), sampleWorkflow())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (e *wfEnv) get(t *testing.T, id string) *workflow.Workflow {
	t.Helper()
	w, err := e.repo.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// runWorkflowScenario runs one scenario of workflow.mjs. steps answer the scenario's
// {"step": name} lines (on the test goroutine); the returned value goes back as JSON.
func runWorkflowScenario(t *testing.T, scenario, wsBase string, arg map[string]any, steps map[string]func() any) json.RawMessage {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, _ := json.Marshal(arg)
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(root, "e2e", "workflow.mjs"), scenario, wsBase, string(js))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var last string
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		last = sc.Text()
		var st struct {
			Step string `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &st) != nil || st.Step == "" {
			continue
		}
		fn := steps[st.Step]
		if fn == nil {
			t.Fatalf("scenario %s: no handler for step %q", scenario, st.Step)
		}
		answer, _ := json.Marshal(fn())
		if _, err := fmt.Fprintf(stdin, "%s\n", answer); err != nil {
			t.Fatal(err)
		}
	}
	err = cmd.Wait()
	var res struct {
		OK bool `json:"ok"`
	}
	_ = json.Unmarshal([]byte(last), &res)
	if err != nil || !res.OK {
		t.Fatalf("scenario %s: %v; result %s\nstderr:\n%s", scenario, err, last, stderr.String())
	}
	return json.RawMessage(last)
}

// docOf returns the "doc" snapshot of a scenario's result as a workflow.
func docOf(t *testing.T, raw json.RawMessage) *workflow.Workflow {
	t.Helper()
	var res struct {
		Doc *workflow.Workflow `json:"doc"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.Doc == nil {
		t.Fatalf("no doc in result %s: %v", raw, err)
	}
	return res.Doc
}

// mustMatch fails unless the document snapshot describes the stored workflow.
func mustMatch(t *testing.T, doc, stored *workflow.Workflow) {
	t.Helper()
	doc.ProjectID = stored.ProjectID
	if !workflow.Equal(doc, stored) {
		a, _ := json.MarshalIndent(doc, "", " ")
		b, _ := json.MarshalIndent(stored, "", " ")
		t.Fatalf("document and tables differ:\ndocument %s\ntables %s", a, b)
	}
}

func snapshots(t *testing.T, e *wfEnv, id string) []int {
	t.Helper()
	vs, err := e.repo.SnapshotVersions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestWorkflowSaveTwoEditors(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	raw := runWorkflowScenario(t, "saveTwoEditors", e.ws, map[string]any{"id": wf.ID, "version": 0}, nil)
	stored := e.get(t, wf.ID)
	if stored.LockVersion != 1 || len(stored.Edges) != len(wf.Edges)+1 {
		t.Fatalf("stored v%d with %d edges", stored.LockVersion, len(stored.Edges))
	}
	if !strings.HasPrefix(stored.Jobs[0].Body, "// edited by a\n") {
		t.Fatalf("job body %q", stored.Jobs[0].Body)
	}
	mustMatch(t, docOf(t, raw), stored)
	// The second save had nothing to do: no version 2.
	if vs := snapshots(t, e, wf.ID); !slices.Equal(vs, []int{0, 1}) {
		t.Fatalf("snapshots %v", vs)
	}
}

func TestWorkflowValidationError(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	raw := runWorkflowScenario(t, "validation", e.ws, map[string]any{"id": wf.ID}, nil)
	var res struct {
		Error struct {
			Type   string              `json:"type"`
			Errors map[string][]string `json:"errors"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.Error.Errors["name"][0] != "can't be blank" {
		t.Fatalf("error %+v (%v)", res.Error, err)
	}
	stored := e.get(t, wf.ID)
	if stored.LockVersion != 1 || stored.Name != "fixed name" {
		t.Fatalf("stored %q v%d", stored.Name, stored.LockVersion)
	}
	mustMatch(t, docOf(t, raw), stored)
}

// The tables change while the document is open but without going through the service (another
// server, a migration script): the document has not seen it, so its save is refused.
func TestWorkflowSaveAfterUnseenChange(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	changed := wf.Clone()
	changed.Name = "changed behind the document"
	raw := runWorkflowScenario(t, "conflict", e.ws, map[string]any{"id": wf.ID, "version": 0, "changedName": changed.Name},
		map[string]func() any{"changeTables": func() any {
			if _, _, err := e.repo.Replace(context.Background(), changed, 0); err != nil {
				t.Fatal(err)
			}
			return map[string]any{}
		}})
	stored := e.get(t, wf.ID)
	if stored.LockVersion != 2 || stored.Name != changed.Name || stored.Jobs[1].Name != "edited after reset" {
		t.Fatalf("stored %q v%d job %q", stored.Name, stored.LockVersion, stored.Jobs[1].Name)
	}
	mustMatch(t, docOf(t, raw), stored)
}

func TestWorkflowDeleted(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	runWorkflowScenario(t, "deleted", e.ws, map[string]any{"id": wf.ID, "http": e.http}, nil)
	if stored := e.get(t, wf.ID); stored.DeletedAt == nil || stored.Name != wf.Name {
		t.Fatalf("stored %+v", stored)
	}
	resp, err := http.Get(e.http + "/api/workflows/" + wf.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("GET after delete: %d", resp.StatusCode)
	}
}

func TestWorkflowResetRestoresBothEditors(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	raw := runWorkflowScenario(t, "reset", e.ws, map[string]any{"id": wf.ID, "version": 0}, nil)
	stored := e.get(t, wf.ID)
	if stored.LockVersion != 0 {
		t.Fatalf("reset changed the tables: v%d", stored.LockVersion)
	}
	mustMatch(t, docOf(t, raw), stored)
}

func TestWorkflowConcurrentSaves(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	raw := runWorkflowScenario(t, "concurrentSaves", e.ws, map[string]any{"id": wf.ID}, nil)
	stored := e.get(t, wf.ID)
	if !strings.HasPrefix(stored.Jobs[0].Body, "A") || !strings.HasPrefix(stored.Jobs[1].Body, "B") {
		t.Fatalf("stored bodies %q, %q", stored.Jobs[0].Body, stored.Jobs[1].Body)
	}
	mustMatch(t, docOf(t, raw), stored)
	// Every version has its snapshot, no version was skipped or written twice.
	vs := snapshots(t, e, wf.ID)
	for i, v := range vs {
		if v != i {
			t.Fatalf("snapshots %v", vs)
		}
	}
	if vs[len(vs)-1] != stored.LockVersion {
		t.Fatalf("snapshots %v, stored v%d", vs, stored.LockVersion)
	}
}

func TestWorkflowWrongShapeKeepsSession(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	runWorkflowScenario(t, "wrongShape", e.ws, map[string]any{"id": wf.ID}, nil)
	if stored := e.get(t, wf.ID); stored.LockVersion != 1 || stored.Jobs[2].Name != "after the fix" {
		t.Fatalf("stored v%d job %q", stored.LockVersion, stored.Jobs[2].Name)
	}
}

func TestWorkflowRPCErrors(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	runWorkflowScenario(t, "rpcErrors", e.ws, map[string]any{"id": wf.ID}, nil)
}

// A PUT while the document is not loaded; the stored Yjs state is then stale and the document
// is rebuilt from the tables when it opens.
func TestWorkflowReopenAfterExternalWrite(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	runWorkflowScenario(t, "read", e.ws, map[string]any{"id": wf.ID}, nil)
	name := workflow.DocName(wf.ID)
	deadline := time.Now().Add(10 * time.Second)
	for e.srv.Registry().Get(name) != nil {
		if time.Now().After(deadline) {
			t.Fatal("document did not unload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	next := wf.Clone()
	next.Name = "renamed over HTTP"
	next.Jobs[2].Body = "rewritten over HTTP"
	body, _ := json.Marshal(next)
	req, _ := http.NewRequest(http.MethodPut, e.http+"/api/workflows/"+wf.ID, bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d %s", resp.StatusCode, out)
	}
	raw := runWorkflowScenario(t, "read", e.ws, map[string]any{"id": wf.ID, "lockVersion": 1}, nil)
	mustMatch(t, docOf(t, raw), e.get(t, wf.ID))
}

// sseLines reads an event stream line by line into a channel.
func sseLines(t *testing.T, url string) (<-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, func() { cancel(); resp.Body.Close(); <-done }
}

// waitLine reads lines until one satisfies pred.
func waitLine(t *testing.T, lines <-chan string, what string, pred func(string) bool) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("event stream ended waiting for %s", what)
			}
			if pred(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// An HTTP save naming the editor's state ("after") includes its edit; the event stream of the
// workflow shows saved and reset, with heartbeats in between.
func TestWorkflowHTTPSaveAfterAndEvents(t *testing.T) {
	t.Parallel()
	pool, _ := newPool(t)
	e := startWorkflowServer(t, pool)
	wf := e.create(t)
	lines, stop := sseLines(t, e.http+"/api/events?topic="+workflow.DocName(wf.ID))
	defer stop()
	all, stopAll := sseLines(t, e.http+"/api/events?topic=workflows")
	defer stopAll()
	waitLine(t, lines, "subscribed", func(l string) bool { return strings.HasPrefix(l, ": subscribed") })
	waitLine(t, all, "subscribed", func(l string) bool { return strings.HasPrefix(l, ": subscribed") })

	raw := runWorkflowScenario(t, "httpSaveAfter", e.ws, map[string]any{"id": wf.ID, "http": e.http, "version": 0}, nil)
	for _, ch := range []<-chan string{lines, all} {
		waitLine(t, ch, "event: saved", func(l string) bool { return l == "event: saved" })
		data := waitLine(t, ch, "data", func(l string) bool { return strings.HasPrefix(l, "data: ") })
		var ev pubsub.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev); err != nil ||
			ev != (pubsub.Event{Type: pubsub.EventSaved, ID: wf.ID, LockVersion: 1}) {
			t.Fatalf("saved event %s (%v)", data, err)
		}
		waitLine(t, ch, "event: reset", func(l string) bool { return l == "event: reset" })
	}
	waitLine(t, lines, "heartbeat", func(l string) bool { return l == ": heartbeat" })
	stored := e.get(t, wf.ID)
	if stored.LockVersion != 1 || !strings.HasPrefix(stored.Jobs[0].Body, "// via http\n") {
		t.Fatalf("stored v%d body %q", stored.LockVersion, stored.Jobs[0].Body)
	}
	mustMatch(t, docOf(t, raw), stored)
}

// The real binary with a database: workflow routes and the RPC are wired, and a document whose
// stored Yjs state went stale while the server was down is rebuilt from the tables on reopen.
func TestWorkflowBinaryRestartRebuildsStaleDocument(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	p := startBinary(t, bin, dbURL)
	httpBase := "http://" + strings.TrimSuffix(strings.TrimPrefix(p.base, "ws://"), "/ws")

	body, _ := json.Marshal(sampleWorkflow())
	resp, err := http.Post(httpBase+"/api/workflows", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		OK     bool               `json:"ok"`
		Result *workflow.Workflow `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || !created.OK {
		t.Fatalf("create: %d %+v %v", resp.StatusCode, created, err)
	}
	id := created.Result.ID
	raw := runWorkflowScenario(t, "editAndSave", p.base, map[string]any{"id": id}, nil)
	var saved struct {
		Reply struct {
			Result struct {
				LockVersion int `json:"lock_version"`
			} `json:"result"`
		} `json:"reply"`
	}
	if err := json.Unmarshal(raw, &saved); err != nil || saved.Reply.Result.LockVersion != 1 {
		t.Fatalf("save over the binary: %s", raw)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	// While the server is down, the tables move on (v2): the stored document says v1.
	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	repo := workflow.NewRepo(pool)
	cur, err := repo.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Clone()
	next.Name = "changed while down"
	next.Jobs[1].Body = "new body while down"
	stored, _, err := repo.Replace(context.Background(), next, 1)
	if err != nil {
		t.Fatal(err)
	}

	p2 := startBinary(t, bin, dbURL)
	raw = runWorkflowScenario(t, "read", p2.base, map[string]any{"id": id, "lockVersion": 2}, nil)
	mustMatch(t, docOf(t, raw), stored)
}
