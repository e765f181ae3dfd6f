package session_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
)

// handlerFunc adapts a function to session.RPCHandler.
type handlerFunc func(ctx context.Context, call session.RPCCall) (any, *session.RPCError)

func (f handlerFunc) ServeRPC(ctx context.Context, call session.RPCCall) (any, *session.RPCError) {
	return f(ctx, call)
}

// startRPC is env.start with a handler installed before Run.
func (e *env) startRPC(t *testing.T, doc, id string, h session.RPCHandler) (*session.Client, *fakeConn, chan error) {
	t.Helper()
	conn := newFakeConn()
	c := session.New(conn, doc, shareddoc.SessionInfo{ID: id, User: id}, session.Config{Clock: e.clock, Stats: e.stats})
	c.SetRPC(h)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), e.reg) }()
	eventually(t, func() bool { return e.reg.Get(doc) != nil }, "joined")
	return c, conn, done
}

// replies returns the type-5 replies conn received, by id.
func replies(t *testing.T, conn *fakeConn) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, m := range conn.messages(t) {
		if m.Type != syncproto.TypeRPC {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatal(err)
		}
		id, _ := json.Marshal(r["id"])
		out[string(id)] = r
	}
	return out
}

func request(id, method string) []byte {
	js, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": map[string]any{}})
	return syncproto.EncodeRPC(js)
}

// Each request sees every update its connection sent before it, and a request whose
// handler is busy does not hold up the connection's updates.
func TestRPCOrderAndNonBlockingReader(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	h := handlerFunc(func(ctx context.Context, call session.RPCCall) (any, *session.RPCError) {
		if call.Method == "block" {
			<-release
			return "released", nil
		}
		var n int
		if err := call.Doc.Update(ctx, func(tx *crdt.Transaction) { n = tx.Doc().GetText("t").Len() }); err != nil {
			return nil, session.NewRPCError("internal_error", err.Error())
		}
		return n, nil
	})
	c, conn, done := e.startRPC(t, "doc", "a", h)
	if session.WantsEvents(c) {
		t.Fatal("events before any request")
	}
	for i := 1; i <= 10; i++ {
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, uint64(i), "x")))
		conn.deliver(websocket.BinaryMessage, request("len", "len"))
	}
	eventually(t, func() bool { return len(conn.messages(t)) >= 20 }, "10 echoes and 10 replies")
	var lens []float64
	for _, m := range conn.messages(t) {
		if m.Type == syncproto.TypeRPC {
			var r struct {
				OK     bool    `json:"ok"`
				Result float64 `json:"result"`
			}
			_ = json.Unmarshal(m.Payload, &r)
			lens = append(lens, r.Result)
		}
	}
	// (A request may also see updates sent after it: it runs behind the reader.)
	for i, n := range lens {
		if n < float64(i+1) {
			t.Fatalf("reply %d saw %v characters, want at least %d (all: %v)", i, n, i+1, lens)
		}
	}
	if !session.WantsEvents(c) {
		t.Fatal("a session that sent a request gets events")
	}

	// A blocked handler: the reader keeps going (the next update is applied and echoed).
	conn.deliver(websocket.BinaryMessage, request("b", "block"))
	before := len(conn.messages(t))
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeUpdate(update(t, 99, "y")))
	eventually(t, func() bool { return len(conn.messages(t)) > before }, "echo while a request is blocked")
	close(release)
	eventually(t, func() bool { return replies(t, conn)[`"b"`] != nil }, "blocked reply")
	conn.hangUp()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestRPCErrorsKeepTheSession(t *testing.T) {
	e := newEnv(t)
	h := handlerFunc(func(_ context.Context, call session.RPCCall) (any, *session.RPCError) {
		switch call.Method {
		case "panic":
			panic("boom")
		case "fail":
			return nil, session.NewRPCError("validation_error", "no")
		}
		return map[string]string{"doc": call.DocName, "session": call.Session.ID}, nil
	})
	_, conn, done := e.startRPC(t, "doc", "a", h)
	conn.deliver(websocket.BinaryMessage, request("1", "panic"))
	conn.deliver(websocket.BinaryMessage, syncproto.EncodeRPC([]byte("{nope")))
	conn.deliver(websocket.BinaryMessage, request("3", "fail"))
	conn.deliver(websocket.BinaryMessage, request("4", "echo"))
	eventually(t, func() bool { return len(replies(t, conn)) == 4 }, "4 replies")
	r := replies(t, conn)
	want := map[string]string{`"1"`: "internal_error", `null`: "bad_request", `"3"`: "validation_error"}
	for id, typ := range want {
		if r[id]["ok"] != false || r[id]["error"].(map[string]any)["type"] != typ {
			t.Fatalf("reply %s = %v, want %s", id, r[id], typ)
		}
	}
	if res := r[`"4"`]["result"].(map[string]any); r[`"4"`]["ok"] != true || res["doc"] != "doc" || res["session"] != "a" {
		t.Fatalf("reply 4 = %v", r[`"4"`])
	}
	if len(conn.closeCodes()) != 0 {
		t.Fatalf("closed: %v", conn.closeCodes())
	}
	conn.hangUp()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// Without a handler every request is answered "unsupported"; EnableEvents opts in to events.
func TestRPCWithoutHandler(t *testing.T) {
	e := newEnv(t)
	conn := newFakeConn()
	c := session.New(conn, "doc", shareddoc.SessionInfo{ID: "a"}, session.Config{Clock: e.clock})
	c.EnableEvents()
	if !session.WantsEvents(c) {
		t.Fatal("EnableEvents")
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background(), e.reg) }()
	conn.deliver(websocket.BinaryMessage, request("1", "save_workflow"))
	eventually(t, func() bool { return replies(t, conn)[`"1"`] != nil }, "reply")
	if typ := replies(t, conn)[`"1"`]["error"].(map[string]any)["type"]; typ != "unsupported" {
		t.Fatalf("type %v", typ)
	}
	// An event reaches it through the document.
	frame, err := session.EventFrame("workflow_saved", map[string]int{"lock_version": 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Get("doc").Broadcast(context.Background(), frame, "", session.WantsEvents); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		for _, m := range conn.messages(t) {
			if m.Type == syncproto.TypeRPC && string(m.Payload) == `{"event":"workflow_saved","payload":{"lock_version":2}}` {
				return true
			}
		}
		return false
	}, "event")
	conn.hangUp()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}
