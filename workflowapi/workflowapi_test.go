package workflowapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/internal/servertest"
	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/workflow"
	"github.com/ysync/ysync/workflowapi"
)

type apiReply struct {
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  struct {
		Type   string         `json:"type"`
		Errors map[string]any `json:"errors"`
	} `json:"error"`
}

// call sends a JSON request and decodes the reply envelope.
func call(t *testing.T, method, u string, body any) (int, apiReply) {
	t.Helper()
	return callToken(t, method, u, "", body)
}

// callToken is call with "Authorization: Bearer tok" (none when tok is empty).
func callToken(t *testing.T, method, u, tok string, body any) (int, apiReply) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, u, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out apiReply
	if err := json.Unmarshal(raw, &out); err != nil && resp.StatusCode < 400 {
		t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// rpc sends one request on the application channel and returns the reply.
func rpc(t *testing.T, c *websocket.Conn, req string) map[string]any {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeRPC([]byte(req))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		m, _ := syncproto.Decode(data)
		if m.Type != syncproto.TypeRPC {
			continue
		}
		var out map[string]any
		if err := json.Unmarshal(m.Payload, &out); err != nil {
			t.Fatal(err)
		}
		if _, isEvent := out["event"]; !isEvent {
			return out
		}
	}
}

func errType(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

// Without a database the workflow routes say why they are unavailable, and so do the requests.
func TestWorkflowsNeedDatabase(t *testing.T) {
	t.Parallel()
	_, hs := servertest.Start(t, server.Config{})
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/workflows"},
		{"GET", "/api/workflows/" + workflow.NewID()},
		{"POST", "/api/workflows/" + workflow.NewID() + "/save"},
		{"GET", "/api/events?topic=workflows"},
	} {
		status, out := call(t, r.method, hs.URL+r.path, nil)
		if status != http.StatusServiceUnavailable || out.Error.Type != "unavailable" {
			t.Fatalf("%s %s: %d %+v", r.method, r.path, status, out)
		}
	}
	c := servertest.Dial(t, hs, workflow.DocName(workflow.NewID()), "u")
	servertest.SyncOnce(t, c)
	if got := rpc(t, c, `{"id": 1, "method": "save_workflow"}`); errType(got) != "unavailable" || got["id"] != float64(1) {
		t.Fatalf("reply %v", got)
	}
	if got := rpc(t, c, `[1, 2]`); errType(got) != "bad_request" || got["id"] != nil {
		t.Fatalf("reply %v", got)
	}
	plain := servertest.Dial(t, hs, "notes", "u")
	servertest.SyncOnce(t, plain)
	if got := rpc(t, plain, `{"id": "x", "method": "reset_workflow"}`); errType(got) != "not_found" || got["id"] != "x" {
		t.Fatalf("reply %v", got)
	}
}

// A read-only session may not save or reset.
func TestWorkflowRPCReadOnly(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0) // workflows "enabled" without a service: nothing may get that far
	t.Cleanup(broker.Close)
	_, _, base := servertest.StartMem(t, server.Config{Authenticator: servertest.JWTAuth(t), Workflows: &workflowapi.Workflows{Broker: broker}})
	doc := workflow.DocName(workflow.NewID())
	c, _ := servertest.DialToken(t, base, doc, servertest.Token(t, auth.Claims{Subject: "viewer", Docs: map[string]string{"workflow:*": "read"}}), nil)
	servertest.SyncOnce(t, c)
	if got := rpc(t, c, `{"id": 1, "method": "save_workflow"}`); errType(got) != "unauthorized" {
		t.Fatalf("reply %v", got)
	}
	// HTTP needs a token with write on the document.
	id := strings.TrimPrefix(doc, "workflow:")
	status, _ := call(t, "POST", base+"/api/workflows/"+id+"/save", nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("save without token: %d", status)
	}
	readTok := servertest.Token(t, auth.Claims{Subject: "viewer", Docs: map[string]string{"workflow:*": "read"}})
	status, _ = callToken(t, "POST", base+"/api/workflows/"+id+"/save", readTok, nil)
	if status != http.StatusForbidden {
		t.Fatalf("save with a read token: %d", status)
	}
	if status, _ := callToken(t, "GET", base+"/api/events?topic=workflows", readTok, nil); status != http.StatusForbidden {
		t.Fatalf("all events with a non-admin token: %d", status)
	}
}

// wfServer is a server with workflows on a fresh schema (documents in memory).
func wfServer(t *testing.T) (*server.Server, string, *workflow.Repo, *pubsub.Broker) {
	t.Helper()
	return wfServerAuth(t, nil)
}

// wfServerAuth is wfServer with authentication by authn (nil: none).
func wfServerAuth(t *testing.T, authn auth.Authenticator) (*server.Server, string, *workflow.Repo, *pubsub.Broker) {
	t.Helper()
	url := pgtest.NewSchema(t)
	ctx := context.Background()
	if err := migrations.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	repo := workflow.NewRepo(pool)
	svc := workflow.NewService(workflow.Config{Repo: repo, Broker: broker})
	srv, _, base := servertest.StartMem(t, server.Config{Authenticator: authn, IdleTimeout: time.Hour, Workflows: &workflowapi.Workflows{
		Service: svc, Repo: repo, Broker: broker, AfterTimeout: 300 * time.Millisecond,
	}})
	return srv, base, repo, broker
}

func newWorkflow() *workflow.Workflow {
	j1, j2, t1 := workflow.NewID(), workflow.NewID(), workflow.NewID()
	return &workflow.Workflow{
		ProjectID: workflow.NewID(),
		Name:      "api " + workflow.NewID()[:8],
		Jobs:      []workflow.Job{{ID: j1, Name: "first", Body: "fn()"}, {ID: j2, Name: "second", Body: ""}},
		Triggers:  []workflow.Trigger{{ID: t1, Type: workflow.TriggerWebhook, Enabled: true}},
		Edges: []workflow.Edge{
			{ID: workflow.NewID(), SourceTriggerID: &t1, TargetJobID: j1, ConditionType: workflow.ConditionAlways, Enabled: true},
			{ID: workflow.NewID(), SourceJobID: &j1, TargetJobID: j2, ConditionType: workflow.ConditionOnSuccess, Enabled: true},
		},
	}
}

func decodeWorkflow(t *testing.T, raw json.RawMessage) *workflow.Workflow {
	t.Helper()
	var w workflow.Workflow
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatal(err)
	}
	return &w
}

type nopPeer struct{}

func (nopPeer) Send([]byte) bool                   { return true }
func (nopPeer) Close(shareddoc.CloseReason, error) {}

func TestWorkflowCRUD(t *testing.T) {
	t.Parallel()
	srv, base, repo, _ := wfServer(t)
	ctx := context.Background()
	api := base + "/api/workflows"

	status, out := call(t, "POST", api, newWorkflow())
	if status != http.StatusCreated || !out.OK {
		t.Fatalf("create: %d %+v", status, out)
	}
	created := decodeWorkflow(t, out.Result)
	if !workflow.ValidID(created.ID) || created.LockVersion != 0 || len(created.Jobs) != 2 {
		t.Fatalf("created %+v", created)
	}
	id := created.ID
	if status, out := call(t, "POST", api, created); status != http.StatusConflict || out.Error.Type != "conflict" {
		t.Fatalf("create again: %d %+v", status, out)
	}
	bad := newWorkflow()
	bad.Name = ""
	if status, out := call(t, "POST", api, bad); status != http.StatusUnprocessableEntity || out.Error.Type != "validation_error" || out.Error.Errors["name"] == nil {
		t.Fatalf("create invalid: %d %+v", status, out)
	}

	status, out = call(t, "GET", api+"/"+id, nil)
	if status != http.StatusOK || !workflow.Equal(decodeWorkflow(t, out.Result), created) {
		t.Fatalf("get: %d %s", status, out.Result)
	}
	for _, missing := range []string{workflow.NewID(), "not-a-uuid"} {
		if status, out := call(t, "GET", api+"/"+missing, nil); status != http.StatusNotFound || out.Error.Type != "not_found" {
			t.Fatalf("get %s: %d %+v", missing, status, out)
		}
	}

	// An open document is reconciled by a PUT.
	doc, _, err := srv.Registry().JoinOrCreate(ctx, workflow.DocName(id), shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: "watcher", User: "w"}, Peer: nopPeer{}})
	if err != nil {
		t.Fatal(err)
	}
	defer doc.Leave("watcher")

	next := created.Clone()
	next.Name = "renamed"
	next.Jobs[1].Body = "second body"
	noVersion := map[string]any{"name": "x", "jobs": []any{}}
	if status, out := call(t, "PUT", api+"/"+id, noVersion); status != http.StatusBadRequest {
		t.Fatalf("put without lock_version: %d %+v", status, out)
	}
	status, out = call(t, "PUT", api+"/"+id, next)
	if status != http.StatusOK {
		t.Fatalf("put: %d %+v", status, out)
	}
	replaced := decodeWorkflow(t, out.Result)
	if replaced.LockVersion != 1 || replaced.Name != "renamed" {
		t.Fatalf("put result %+v", replaced)
	}
	var inDoc *workflow.Workflow
	if err := workflow.SharedDoc(doc).Read(ctx, func(d *crdt.Doc) (err error) { inDoc, err = workflow.ReadDoc(d); return err }); err != nil {
		t.Fatal(err)
	}
	inDoc.ProjectID = replaced.ProjectID
	if !workflow.Equal(inDoc, replaced) {
		t.Fatalf("open document not reconciled: %+v", inDoc)
	}
	if status, out := call(t, "PUT", api+"/"+id, next); status != http.StatusConflict || out.Error.Type != "optimistic_lock_error" {
		t.Fatalf("stale put: %d %+v", status, out)
	}
	if status, _ := call(t, "PUT", api+"/"+workflow.NewID(), next); status != http.StatusBadRequest {
		t.Fatalf("put with another id in the body: %d", status)
	}

	// Save and reset over HTTP; "after" with a state the document never reaches times out.
	status, out = call(t, "POST", api+"/"+id+"/save", nil)
	var saved workflow.SaveResult
	if status != http.StatusOK || json.Unmarshal(out.Result, &saved) != nil || saved.LockVersion != 1 {
		t.Fatalf("save: %d %s", status, out.Result)
	}
	future := crdt.EncodeStateVectorFromMap(map[uint64]int{12345: 10})
	status, out = call(t, "POST", api+"/"+id+"/save", map[string]string{"after": base64.StdEncoding.EncodeToString(future)})
	if status != http.StatusGatewayTimeout || out.Error.Type != "timeout" {
		t.Fatalf("save after unreachable state: %d %+v", status, out)
	}
	if status, out := call(t, "POST", api+"/"+id+"/save", map[string]string{"after": "%%%"}); status != http.StatusBadRequest {
		t.Fatalf("bad after: %d %+v", status, out)
	}
	if status, out := call(t, "POST", api+"/"+id+"/reset", nil); status != http.StatusOK || !out.OK {
		t.Fatalf("reset: %d %+v", status, out)
	}
	if status, out := call(t, "POST", api+"/"+workflow.NewID()+"/save", nil); status != http.StatusNotFound {
		t.Fatalf("save unknown: %d %+v", status, out)
	}

	// Delete: conditional on a version, then soft; afterwards everything says deleted.
	if status, out := call(t, "DELETE", api+"/"+id+"?lock_version=0", nil); status != http.StatusConflict {
		t.Fatalf("stale delete: %d %+v", status, out)
	}
	status, out = call(t, "DELETE", api+"/"+id, nil)
	if status != http.StatusOK || decodeWorkflow(t, out.Result).DeletedAt == nil {
		t.Fatalf("delete: %d %+v", status, out)
	}
	if w, err := repo.Get(ctx, id); err != nil || w.DeletedAt == nil || w.LockVersion != 2 {
		t.Fatalf("stored after delete: %+v %v", w, err)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", ""}, {"DELETE", ""}, {"POST", "/save"}, {"POST", "/reset"},
	} {
		if status, out := call(t, r.method, api+"/"+id+r.path, map[string]any{}); status != http.StatusGone || out.Error.Type != "workflow_deleted" {
			t.Fatalf("%s %s after delete: %d %+v", r.method, r.path, status, out)
		}
	}
	next.LockVersion = 2
	if status, out := call(t, "PUT", api+"/"+id, next); status != http.StatusGone {
		t.Fatalf("put after delete: %d %+v", status, out)
	}
}

// The event stream: heartbeats, one event per publish, and it ends when the server shuts down
// (instead of holding the shutdown).
func TestEventStream(t *testing.T) {
	t.Parallel()
	broker := pubsub.New(0)
	t.Cleanup(broker.Close)
	srv, _, base := servertest.StartMem(t, server.Config{Workflows: &workflowapi.Workflows{Broker: broker, Heartbeat: 50 * time.Millisecond}})
	if status, _ := call(t, "GET", base+"/api/events?topic=nonsense", nil); status != http.StatusBadRequest {
		t.Fatalf("bad topic: %d", status)
	}
	id := workflow.NewID()
	resp, err := http.Get(base + "/api/events?topic=" + workflow.Topic(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() string {
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		return sc.Text()
	}
	if l := next(); !strings.HasPrefix(l, ": subscribed") {
		t.Fatalf("first line %q", l)
	}
	for next() != ": heartbeat" {
	}
	broker.Publish(workflow.Topic(workflow.NewID()), pubsub.Event{Type: pubsub.EventSaved}) // another workflow
	broker.Publish(workflow.Topic(id), pubsub.Event{Type: pubsub.EventDeleted, ID: id, LockVersion: 3})
	var l string
	for l = next(); l != "event: deleted"; l = next() {
		if strings.HasPrefix(l, "event:") {
			t.Fatalf("unexpected %q", l)
		}
	}
	if l := next(); l != `data: {"type":"deleted","id":"`+id+`","lock_version":3}` {
		t.Fatalf("data line %q", l)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for sc.Scan() {
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
}

// TestWorkflowExternalWritesNeedAdmin: with authentication on, create/replace/delete through
// /api/workflows are admin operations (like the rest of the admin API); a token that may edit
// the document is not enough. Save and reset stay editor operations.
func TestWorkflowExternalWritesNeedAdmin(t *testing.T) {
	_, base, _, _ := wfServerAuth(t, servertest.JWTAuth(t))

	editor := servertest.Token(t, auth.Claims{Subject: "editor", Docs: map[string]string{"workflow:*": "write"}})
	admin := servertest.Token(t, auth.Claims{Subject: "ops", Admin: true})
	wf := newWorkflow()
	wf.ID = workflow.NewID()
	if status, _ := callToken(t, "POST", base+"/api/workflows", editor, wf); status != http.StatusForbidden {
		t.Fatalf("create with an editor token: %d, want 403", status)
	}
	status, reply := callToken(t, "POST", base+"/api/workflows", admin, wf)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("create with an admin token: %d %+v", status, reply)
	}
	for _, m := range []string{"PUT", "DELETE"} {
		if status, _ := callToken(t, m, base+"/api/workflows/"+wf.ID, editor, wf); status != http.StatusForbidden {
			t.Fatalf("%s with an editor token: %d, want 403", m, status)
		}
	}
	if status, reply := callToken(t, "POST", base+"/api/workflows/"+wf.ID+"/save", editor, nil); status != http.StatusOK {
		t.Fatalf("save with an editor token: %d %+v", status, reply)
	}
	if status, _ := callToken(t, "GET", base+"/api/workflows/"+wf.ID, editor, nil); status != http.StatusOK {
		t.Fatalf("get with an editor token: %d", status)
	}
}

// TestUnknownWorkflowClosesForGood: a workflow document the tables do not know closes its session
// with 4404, which y-websocket treats as permanent, instead of 1011 and an endless reconnect loop.
func TestUnknownWorkflowClosesForGood(t *testing.T) {
	_, base, _, _ := wfServer(t)
	c, _ := servertest.DialToken(t, base, workflow.DocName(workflow.NewID()), "", nil)
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4404) {
			t.Fatalf("read: %v, want close 4404", err)
		}
		return
	}
}

// Snapshots: every create and replace writes one; the list and each snapshot are readable, and
// unknown workflows or versions are 404.
func TestWorkflowSnapshots(t *testing.T) {
	t.Parallel()
	_, base, _, _ := wfServer(t)
	api := base + "/api/workflows"
	status, out := call(t, "POST", api, newWorkflow())
	if status != http.StatusCreated {
		t.Fatalf("create: %d %+v", status, out)
	}
	created := decodeWorkflow(t, out.Result)
	next := created.Clone()
	next.Name = "second name"
	if status, out := call(t, "PUT", api+"/"+created.ID, next); status != http.StatusOK {
		t.Fatalf("put: %d %+v", status, out)
	}

	status, out = call(t, "GET", api+"/"+created.ID+"/snapshots", nil)
	var list []struct {
		LockVersion int `json:"lock_version"`
	}
	if status != http.StatusOK || json.Unmarshal(out.Result, &list) != nil {
		t.Fatalf("list: %d %s", status, out.Result)
	}
	if len(list) != 2 || list[0].LockVersion != 0 || list[1].LockVersion != 1 {
		t.Fatalf("snapshots %+v, want lock_versions 0 and 1", list)
	}
	for v, want := range map[string]string{"0": created.Name, "1": "second name"} {
		status, out := call(t, "GET", api+"/"+created.ID+"/snapshots/"+v, nil)
		if status != http.StatusOK || decodeWorkflow(t, out.Result).Name != want {
			t.Fatalf("snapshot %s: %d %s", v, status, out.Result)
		}
	}
	for _, path := range []string{
		"/" + created.ID + "/snapshots/7", "/" + created.ID + "/snapshots/x",
		"/" + workflow.NewID() + "/snapshots", "/not-a-uuid/snapshots",
	} {
		if status, out := call(t, "GET", api+path, nil); status != http.StatusNotFound || out.Error.Type != "not_found" {
			t.Fatalf("GET %s: %d %+v", path, status, out)
		}
	}
}
