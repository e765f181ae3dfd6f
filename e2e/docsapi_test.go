package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/webhook"
)

// runDocsScenario runs one scenario of docsapi.mjs and returns its result line.
func runDocsScenario(t *testing.T, scenario, httpBase, wsBase, arg string) json.RawMessage {
	t.Helper()
	nodeBin, root := node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(root, "e2e", "docsapi.mjs"), scenario, httpBase, wsBase, arg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	last := lastLine(stdout.String())
	var res result
	_ = json.Unmarshal([]byte(last), &res)
	if err != nil || !res.OK {
		t.Fatalf("docsapi.mjs %s: %v; result %s\nstderr:\n%s", scenario, err, last, stderr.String())
	}
	return json.RawMessage(last)
}

// For fuzzed yjs documents (text with formats, arrays, maps, nested types, XML, emoji), the
// update POSTed from yjs reaches a connected y-websocket client, GET /api/docs/{name} equals
// yjs's toJSON and GET /update decodes in yjs to the same content.
func TestDocsAPIMatchesYjs(t *testing.T) {
	t.Parallel()
	wsBase, _ := startServer(t, server.Config{})
	httpBase := "http://" + strings.TrimSuffix(strings.TrimPrefix(wsBase, "ws://"), "/ws")
	runDocsScenario(t, "fuzz", httpBase, wsBase, "fuzz:doc|60")
}

// Edit, version, edit more, restore while two y-websocket editors keep typing: everyone converges
// on the version's content plus the concurrent edits; the "before restore" version undoes it.
func TestRestoreWithYWebsocketEditors(t *testing.T) {
	t.Parallel()
	wsBase, _ := startServer(t, server.Config{IdleTimeout: time.Minute})
	httpBase := "http://" + strings.TrimSuffix(strings.TrimPrefix(wsBase, "ws://"), "/ws")
	runDocsScenario(t, "restore", httpBase, wsBase, "restore:live/doc")
}

// hookReceiver is a webhook endpoint on a fixed address that checks signatures, answers 500
// `fail` times to the first event it gets, and counts accepted deliveries per event id.
type hookReceiver struct {
	mu       sync.Mutex
	fail     int
	failID   string
	hits     map[string]int // event id → requests
	accepted map[string]int // event id → 2xx answers
	events   []map[string]any
	bad      int
	srv      *httptest.Server
}

var e2eHookSecret = []byte("e2e-webhook-secret")

func startHookReceiver(t *testing.T, addr string, r *hookReceiver) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // the port was just released by the previous receiver
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if webhook.Verify(e2eHookSecret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute) != nil {
			r.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		id, _ := ev["id"].(string)
		r.hits[id]++
		if r.fail > 0 && (r.failID == "" || r.failID == id) { // the first event fails twice
			r.failID = id
			r.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.accepted[id]++
		if r.accepted[id] == 1 {
			r.events = append(r.events, ev)
		}
	})}}
	r.srv.Start()
}

func (r *hookReceiver) has(typ, doc string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e["type"] == typ && e["doc"] == doc {
			return true
		}
	}
	return false
}

// The real binary on PostgreSQL: updates POSTed from yjs survive a restart; webhooks are signed,
// retried after two 500s and accepted once per event id; an event whose receiver is down across
// a restart is delivered after it.
func TestDocsAPIAndWebhooksAcrossRestart(t *testing.T) {
	dbURL := pgtest.NewSchema(t)
	bin := buildBinary(t)
	hookAddr := freeAddr(t)
	rcv := &hookReceiver{fail: 2, hits: map[string]int{}, accepted: map[string]int{}}
	startHookReceiver(t, hookAddr, rcv)
	hookFlags := []string{"--webhook-url", "http://" + hookAddr + "/hook"}
	t.Setenv("YSYNC_WEBHOOK_SECRET", string(e2eHookSecret))

	addr := freeAddr(t)
	p := startServeAt(t, bin, dbURL, addr, hookFlags...)
	httpBase, wsBase := "http://"+addr, "ws://"+addr+"/ws"
	raw := runDocsScenario(t, "fuzz", httpBase, wsBase, "restart:doc|8")
	var res struct {
		Expected map[string]string `json:"expected"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Expected) != 8 {
		t.Fatalf("fuzz result %s: %v", raw, err)
	}
	waitUntil(t, time.Minute, "document.changed of a POSTed document", func() bool { return rcv.has(webhook.DocumentChanged, "restart:doc-3") })
	waitUntil(t, time.Minute, "the event that got two 500s to be retried and accepted", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return rcv.failID != "" && rcv.hits[rcv.failID] == 3 && rcv.accepted[rcv.failID] == 1
	})

	// A named version, kept across the restart.
	vresp, err := http.Post(httpBase+"/api/docs/restart:doc-2/versions", "application/json", strings.NewReader(`{"label":"before the restart"}`))
	if err != nil || vresp.StatusCode != 201 {
		t.Fatalf("create version: %v %v", vresp, err)
	}
	var version struct{ ID int64 }
	_ = json.NewDecoder(vresp.Body).Decode(&version)
	vresp.Body.Close()

	// The receiver goes down; an edit happens; the server restarts; the receiver comes back.
	rcv.srv.Close()
	doc := crdt.NewDoc(crdt.DocOptions{ClientID: 77})
	var upd []byte
	doc.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { upd = append([]byte(nil), u...) })
	_ = doc.GetText("t").Insert(0, "while the receiver is down", nil)
	resp, err := http.Post(httpBase+"/api/docs/down:doc/update", "application/octet-stream", bytes.NewReader(upd))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	var pending int
	if err := queryRow(t, dbURL, `SELECT count(*) FROM webhook_deliveries WHERE doc_name = 'down:doc' AND state = 'pending'`).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("no pending delivery for the edit made while the receiver was down")
	}
	rcv2 := &hookReceiver{hits: map[string]int{}, accepted: map[string]int{}}
	startHookReceiver(t, hookAddr, rcv2)
	t.Cleanup(rcv2.srv.Close)
	startServeAt(t, bin, dbURL, addr, hookFlags...)
	waitUntil(t, 2*time.Minute, "the event to be delivered after the restart", func() bool { return rcv2.has(webhook.DocumentChanged, "down:doc") })

	// The version is there and restores the document (here: to what it already is, then after a
	// change back to it).
	if _, err := http.Post(httpBase+"/api/docs/restart:doc-2/update", "application/octet-stream", bytes.NewReader(upd)); err != nil {
		t.Fatal(err)
	}
	rresp, err := http.Post(fmt.Sprintf("%s/api/docs/restart:doc-2/versions/%d/restore", httpBase, version.ID), "", nil)
	if err != nil || rresp.StatusCode != 200 {
		t.Fatalf("restore after restart: %v %v", rresp, err)
	}
	rresp.Body.Close()
	want, _ := json.Marshal(res.Expected)
	runDocsScenario(t, "read", httpBase, wsBase, string(want))
	for _, r := range []*hookReceiver{rcv, rcv2} {
		r.mu.Lock()
		for id, n := range r.accepted {
			if n != 1 {
				t.Errorf("event %s accepted %d times", id, n)
			}
		}
		if r.bad != 0 {
			t.Errorf("%d requests with a bad signature", r.bad)
		}
		r.mu.Unlock()
	}
}
