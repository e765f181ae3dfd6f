package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/internal/redistest"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/workflow"
)

// metrics reads a node's /metrics and returns the unlabelled samples.
func metrics(t *testing.T, p *proc) map[string]float64 {
	t.Helper()
	resp, err := http.Get(httpBase(p) + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		if name, v, ok := strings.Cut(line, " "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[name] = f
			}
		}
	}
	return out
}

func sumMetric(t *testing.T, name string, ps ...*proc) float64 {
	t.Helper()
	var s float64
	for _, p := range ps {
		s += metrics(t, p)[name]
	}
	return s
}

func readyzBody(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get(httpBase(p) + "/readyz")
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// pollUntil polls cond every 50 ms for up to a minute.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three real `ysync serve` processes on one Postgres and one Redis, real y-websocket clients of
// one document spread over them. Redis is SIGKILLed and restarted mid-run (what was published
// meanwhile is lost), then one node is SIGKILLed mid-edit and its clients move to the others.
// The clients converge, the gap metrics show the log filled what Redis lost, and a fresh client
// on each surviving node sees every edit that was echoed to anyone.
func TestClusterThreeNodes(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	rds := redistest.Start(t)
	bin := buildBinary(t)
	doc := "cluster:three/doc"
	var nodes []*proc
	for i := range 3 {
		// The first migrates; the others start on the migrated schema.
		nodes = append(nodes, startServeAt(t, bin, dbURL, freeAddr(t),
			"--redis-url", rds.URL(), "--node-id", fmt.Sprintf("node-%d", i+1), "--position-check-interval", "1s"))
	}
	pollUntil(t, "every node sees the other two", func() bool {
		for _, p := range nodes {
			if metrics(t, p)["ysync_cluster_nodes"] != 3 {
				return false
			}
		}
		return true
	})
	bases := make([]string, len(nodes))
	for i, p := range nodes {
		bases[i] = p.base
	}
	ed := runEditors(t, "cluster.mjs", strings.Join(bases, ","), doc, "6")
	pollUntil(t, "edits acked", func() bool { return ed.ackedCount() > 50 })
	live := sumMetric(t, "ysync_cluster_remote_updates_applied_total", nodes...)
	if live == 0 {
		t.Fatal("no update went from node to node through Redis")
	}

	filledFromLog := func() float64 {
		return sumMetric(t, "ysync_cluster_filled_from_log_total", nodes...) + sumMetric(t, "ysync_cluster_fill_reloads_total", nodes...)
	}
	filledBefore := filledFromLog()

	// Redis dies; nodes keep serving their own sessions and edits keep being acked.
	rds.Kill()
	acked := ed.ackedCount()
	pollUntil(t, "edits acked while Redis is down", func() bool { return ed.ackedCount() > acked+50 })
	rds.Restart()
	pollUntil(t, "nodes reconnected to Redis", func() bool {
		for _, p := range nodes {
			if metrics(t, p)["ysync_cluster_redis_connected"] != 1 {
				return false
			}
		}
		return true
	})
	acked = ed.ackedCount()
	pollUntil(t, "edits acked after Redis came back", func() bool { return ed.ackedCount() > acked+50 })
	// What was published while Redis was down is lost; the nodes read it from the log.
	if after := filledFromLog(); after <= filledBefore {
		t.Fatalf("updates filled from the log: %v before the Redis outage, %v after; want more", filledBefore, after)
	} else {
		t.Logf("updates filled from the log: %v before the Redis outage, %v after", filledBefore, after)
	}

	// A node dies mid-edit; its clients reconnect to the other two.
	nodes[2].kill(t)
	acked = ed.ackedCount()
	pollUntil(t, "edits acked after the node died", func() bool { return ed.ackedCount() > acked+50 })
	survivors := nodes[:2]

	items := ed.stop(t)
	echoed := ed.ackedLabels()
	t.Logf("%d items, %d echoed", len(items), len(echoed))
	checkAll(t, "converged clients", echoed, items)
	for i, p := range survivors {
		var got []string
		// The clients converged, so every edit is in the log; a node catches up within a
		// position check.
		pollUntil(t, fmt.Sprintf("node %d serves every echoed edit", i+1), func() bool {
			got = readStrings(t, p.base, doc)
			return len(got) >= len(echoed)
		})
		checkAll(t, fmt.Sprintf("fresh client on node %d", i+1), echoed, got)
	}
	checkAll(t, "database", echoed, storedItems(t, dbURL, doc))

	filled := sumMetric(t, "ysync_cluster_filled_from_log_total", survivors...) +
		sumMetric(t, "ysync_cluster_fill_reloads_total", survivors...)
	gaps := sumMetric(t, "ysync_cluster_gaps_detected_total", survivors...) +
		sumMetric(t, "ysync_cluster_position_catchups_total", survivors...)
	t.Logf("survivors: %v gaps or catch-ups, %v updates filled from the log, %v relayed live before the outage",
		gaps, filled, live)
	if filled == 0 || gaps == 0 {
		t.Fatalf("the log filled nothing (gaps %v, filled %v) although Redis lost messages", gaps, filled)
	}
}

// Two processes on one database without Redis: both edited (clients on each), both compacted
// (documents unload and checkpoint as soon as their clients leave), both restarted. Every edit
// that was echoed to anyone is there, and they converged through the position check. Each warns
// in /readyz that edits between them travel by polling only.
func TestTwoNodesWithoutRedisLoseNothing(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	doc := "cluster:noredis/doc"
	addrs := []string{freeAddr(t), freeAddr(t)}
	start := func(i int) *proc {
		return startServeAt(t, bin, dbURL, addrs[i], "--idle-timeout", "0", "--position-check-interval", "500ms")
	}
	a := start(0)
	b := start(1)
	pollUntil(t, "the polling-only warning in /readyz", func() bool {
		return strings.Contains(readyzBody(t, a), "polling") && strings.Contains(readyzBody(t, b), "polling")
	})
	var echoed []string
	for round := range 3 {
		// Clients on both nodes; the editors never move (the two bases are tried in turn only
		// after a close).
		ed := runEditors(t, "cluster.mjs", a.base+","+b.base, doc, "4")
		pollUntil(t, "edits acked", func() bool { return ed.ackedCount() > 100 })
		items := ed.stop(t)
		got := ed.ackedLabels()
		checkAll(t, fmt.Sprintf("round %d: converged clients", round), got, items)
		echoed = append(echoed, got...)
		// The clients left: both documents unload, checkpointing up to their prefix. Then
		// both processes restart.
		pollUntil(t, "documents unloaded", func() bool {
			return metrics(t, a)["ysync_documents_loaded"] == 0 && metrics(t, b)["ysync_documents_loaded"] == 0
		})
		if round == 1 {
			a.kill(t)
			b.kill(t)
		} else {
			for _, p := range []*proc{a, b} {
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				_ = p.wait(t)
			}
		}
		a, b = start(0), start(1)
		checkAll(t, fmt.Sprintf("round %d: database", round), echoed, storedItems(t, dbURL, doc))
	}
	checkAll(t, "fresh client on node a", echoed, readStrings(t, a.base, doc))
	checkAll(t, "fresh client on node b", echoed, readStrings(t, b.base, doc))
	var checkpoints int
	if err := queryRow(t, dbURL, `SELECT count(*) FROM document_checkpoints WHERE doc_name = $1`, doc).Scan(&checkpoints); err != nil {
		t.Fatal(err)
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint was written: compaction did not run")
	}
}

// Presence goes across nodes over Redis, and when a node dies without a word the others remove
// the awareness states its sessions introduced and broadcast the removal, before the clients'
// own 30 s timeout would.
func TestClusterAwarenessAndDeadNode(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	rds := redistest.Start(t)
	bin := buildBinary(t)
	a := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "aw-a")
	b := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "aw-b")
	pollUntil(t, "b sees a", func() bool { return metrics(t, b)["ysync_cluster_nodes"] == 2 })

	nodeBin, root := node(t)
	cmd := exec.Command(nodeBin, filepath.Join(root, "e2e", "cluster_awareness.mjs"), a.base, b.base, "cluster:aw/doc")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || !strings.Contains(l, want) {
				t.Fatalf("awareness script: got %q, want %s\n%s", l, want, stderr.String())
			}
			return l
		case <-time.After(90 * time.Second):
			t.Fatalf("awareness script: no %s\n%s", want, stderr.String())
		}
		return ""
	}
	next(`"seen":true`)
	a.kill(t)
	removed := next(`"removed":true`)
	next(`"ok":true`)
	t.Logf("presence of the dead node's client removed on the other node: %s", removed)
	if n := metrics(t, b)["ysync_cluster_nodes_gone_total"]; n < 1 {
		t.Fatalf("node b did not declare a gone (nodes_gone %v): the removal came from the client's own timeout", n)
	}
}

// Workflow events go through Redis: a save on node A shows in node B's /api/events stream,
// marked with the node it happened on.
func TestClusterWorkflowEvents(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	rds := redistest.Start(t)
	bin := buildBinary(t)
	a := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "ev-a")
	b := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "ev-b")

	body, _ := json.Marshal(sampleWorkflow())
	resp, err := http.Post(httpBase(a)+"/api/workflows", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Result *workflow.Workflow `json:"result"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || created.Result == nil {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	lines, stop := sseLines(t, httpBase(b)+"/api/events?topic=workflows")
	defer stop()
	waitLine(t, lines, "subscribed", func(l string) bool { return strings.HasPrefix(l, ": subscribed") })
	// The bridge's SUBSCRIBE may still be on its way: let node b's bridge see a's heartbeat
	// first (both started at once, so their subscriptions are older than this).
	pollUntil(t, "b sees a", func() bool { return metrics(t, b)["ysync_cluster_nodes"] == 2 })
	// An editor of the workflow on node b, asking for server events.
	nodeBin, root := node(t)
	listener := exec.Command(nodeBin, filepath.Join(root, "e2e", "cluster_saved.mjs"), b.base, created.Result.ID)
	lout, _ := listener.StdoutPipe()
	var lerr bytes.Buffer
	listener.Stderr = &lerr
	if err := listener.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = listener.Process.Kill(); _ = listener.Wait() }()
	llines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(lout)
		for sc.Scan() {
			llines <- sc.Text()
		}
		close(llines)
	}()
	if l := <-llines; !strings.Contains(l, `"ready":true`) {
		t.Fatalf("editor on node b: %s\n%s", l, lerr.String())
	}
	runWorkflowScenario(t, "editAndSave", a.base, map[string]any{"id": created.Result.ID}, nil)
	waitLine(t, lines, "event: saved", func(l string) bool { return l == "event: saved" })
	data := waitLine(t, lines, "data", func(l string) bool { return strings.HasPrefix(l, "data: ") })
	var ev pubsub.Event
	if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev); err != nil ||
		ev != (pubsub.Event{Type: pubsub.EventSaved, ID: created.Result.ID, LockVersion: 1, Node: "ev-a"}) {
		t.Fatalf("saved event on node b: %s (%v)", data, err)
	}
	select {
	case l := <-llines:
		var res struct {
			OK    bool `json:"ok"`
			Event struct {
				Event   string `json:"event"`
				Payload struct {
					LockVersion int `json:"lock_version"`
				} `json:"payload"`
			} `json:"event"`
		}
		if json.Unmarshal([]byte(l), &res) != nil || !res.OK || res.Event.Payload.LockVersion != 1 {
			t.Fatalf("editor on node b: %s\n%s", l, lerr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("editor on node b got no workflow_saved\n%s", lerr.String())
	}
}

// /api/sessions and /api/rooms list the whole cluster (?local=1 one node), and DELETE
// /api/sessions/{id} closes a session served by another node.
func TestClusterAdminViews(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	rds := redistest.Start(t)
	bin := buildBinary(t)
	a := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "adm-a")
	b := startServeAt(t, bin, dbURL, freeAddr(t), "--redis-url", rds.URL(), "--node-id", "adm-b")
	nodeBin, root := node(t)
	cmd := exec.Command(nodeBin, filepath.Join(root, "e2e", "hold.mjs"), a.base+","+b.base, "cluster:admin/doc")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = io.WriteString(stdin, "stop\n"); _ = cmd.Wait() }()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("hold.mjs ended waiting for %s\n%s", want, stderr.String())
				}
				if strings.Contains(l, want) {
					return
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("hold.mjs: no %s\n%s", want, stderr.String())
			}
		}
	}
	expect(`"synced":true`)

	type sess struct {
		ID, Doc, User, Node string
	}
	getJSON := func(url string, v any) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	var all []sess
	pollUntil(t, "both nodes' sessions listed on a", func() bool {
		getJSON(httpBase(a)+"/api/sessions", &all)
		return len(all) == 2
	})
	nodes := []string{all[0].Node, all[1].Node}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"adm-a", "adm-b"}) {
		t.Fatalf("sessions on nodes %v", nodes)
	}
	var local []sess
	getJSON(httpBase(a)+"/api/sessions?local=1", &local)
	if len(local) != 1 || local[0].Node != "" {
		t.Fatalf("?local=1 on a: %+v", local)
	}
	var rooms []struct {
		Name     string
		Nodes    []string
		Sessions []sess
	}
	getJSON(httpBase(a)+"/api/rooms", &rooms)
	if len(rooms) != 1 || rooms[0].Name != "cluster:admin/doc" || len(rooms[0].Nodes) != 2 || len(rooms[0].Sessions) != 2 {
		t.Fatalf("rooms on a: %+v", rooms)
	}

	// GET /api/docs counts the document's sessions over the cluster (once it is stored).
	edit := crdt.NewDoc(crdt.DocOptions{ClientID: 91})
	var upd []byte
	edit.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { upd = append([]byte(nil), u...) })
	_ = edit.GetMap("m").Set("k", "v")
	presp, err := http.Post(httpBase(b)+"/api/docs/"+url.PathEscape("cluster:admin/doc")+"/update", "application/octet-stream", bytes.NewReader(upd))
	if err != nil || presp.StatusCode != http.StatusOK {
		t.Fatalf("POST update on b: %v %v", presp, err)
	}
	presp.Body.Close()
	var listed struct {
		Documents []struct {
			Name     string
			Loaded   bool
			Sessions int
			Nodes    []string
		}
	}
	pollUntil(t, "the document listed on a with both nodes' sessions", func() bool {
		getJSON(httpBase(a)+"/api/docs?prefix=cluster:admin/", &listed)
		return len(listed.Documents) == 1 && listed.Documents[0].Sessions == 2
	})
	if d := listed.Documents[0]; !d.Loaded || len(d.Nodes) != 2 {
		t.Fatalf("docs on a: %+v", d)
	}
	getJSON(httpBase(a)+"/api/docs?local=1&prefix=cluster:admin/", &listed)
	if len(listed.Documents) != 1 || listed.Documents[0].Sessions != 1 {
		t.Fatalf("docs on a, ?local=1: %+v", listed.Documents)
	}

	var onB sess
	for _, s := range all {
		if s.Node == "adm-b" {
			onB = s
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, httpBase(a)+"/api/sessions/"+onB.ID, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE of b's session on a: %d", resp.StatusCode)
	}
	expect(`"closed":1,"code":4409`)
	req, _ = http.NewRequest(http.MethodDelete, httpBase(a)+"/api/sessions/nope", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("DELETE of an unknown session: %v %v", resp, err)
	}
}
