package session_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/session"
)

// fuzzReply is a type-5 reply as the fuzz targets read it: the id is kept raw so that any JSON
// value (huge numbers included) survives the comparison.
type fuzzReply struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Type string `json:"type"`
	} `json:"error"`
}

// rpcReplies returns the type-5 frames conn received, in order, decoded as replies.
func rpcReplies(t *testing.T, conn *fakeConn) []fuzzReply {
	t.Helper()
	var out []fuzzReply
	for _, m := range conn.messages(t) {
		if m.Type != syncproto.TypeRPC {
			continue
		}
		if !json.Valid(m.Payload) {
			t.Fatalf("reply is not JSON: %q", m.Payload)
		}
		var r fuzzReply
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("reply %q: %v", m.Payload, err)
		}
		out = append(out, r)
	}
	return out
}

// jsonValue decodes raw keeping numbers as written, for comparing two encodings of one value.
func jsonValue(t *testing.T, raw []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return v
}

// recordingHandler records the calls it serves; "fail" returns an error, "panic" panics, any
// other method echoes its method and params.
type recordingHandler struct {
	mu    sync.Mutex
	calls []session.RPCCall
}

func (h *recordingHandler) ServeRPC(_ context.Context, call session.RPCCall) (any, *session.RPCError) {
	h.mu.Lock()
	h.calls = append(h.calls, call)
	h.mu.Unlock()
	switch call.Method {
	case "fail":
		return nil, session.NewRPCError("validation_error", "no")
	case "panic":
		panic("fuzz handler panic")
	}
	return map[string]any{"method": call.Method, "params": call.Params}, nil
}

func (h *recordingHandler) recorded() []session.RPCCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]session.RPCCall(nil), h.calls...)
}

// rpcOracle is what a request payload should produce, worked out from the documented protocol
// (rpc.go): a request is a JSON object with a non-empty string "method" (field names match
// case-insensitively, as encoding/json does); anything else is answered bad_request.
type rpcOracle struct {
	valid  bool            // served by the handler
	method string          // when valid
	params json.RawMessage // when valid
	// id is the id the reply must carry; nil when the payload has no single unambiguous id
	// (then only a non-object or id-less payload pins it to null, see idNull).
	id     json.RawMessage
	idNull bool // the reply id must be null: not JSON, not an object, or no id key at all
}

func oracleFor(payload []byte) rpcOracle {
	var o rpcOracle
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method any             `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if !json.Valid(payload) {
		o.idNull = true
		return o
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil || obj == nil {
		o.idNull = true // valid JSON but not an object (null, array, string, number, bool)
		return o
	}
	var idKeys []string
	for k := range obj {
		if strings.EqualFold(k, "id") {
			idKeys = append(idKeys, k)
		}
	}
	switch len(idKeys) {
	case 0:
		o.idNull = true
	case 1:
		o.id = obj[idKeys[0]]
	}
	if err := json.Unmarshal(payload, &req); err == nil {
		if m, ok := req.Method.(string); ok && m != "" {
			o.valid, o.method, o.params = true, m, req.Params
		}
	}
	return o
}

// FuzzRPCRequest sends one arbitrary JSON payload as a type-5 request on a session with a
// handler. Whatever the payload: no panic; exactly one reply, carrying the request's id (null
// when it has none or is not a JSON object) and ok false with bad_request for anything that is
// not an object with a method; the handler sees exactly the valid requests; the session stays
// open and still answers a SyncStep1 and a further request.
func FuzzRPCRequest(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"method":"save_workflow","params":{"name":"w","nodes":[]}}`,
		`{"id":"r-2","method":"reset_workflow","params":{}}`,
		`{"id":{"n":[1,2,{"x":null}]},"method":"save_workflow"}`,
		`{"id":3,"method":"fail","params":null}`,
		`{"id":4,"method":"panic"}`,
		`{"method":"save_workflow","params":{}}`,
		`{"id":5}`,
		`{"id":6,"method":""}`,
		`{"id":7,"method":7}`,
		`{"ID":8,"METHOD":"save_workflow"}`,
		`{"id":9,"Id":10,"method":"save_workflow"}`,
		`{"id":1e999,"method":"save_workflow"}`,
		`{"id":-0.000,"method":"x","params":"\u2028<&>"}`,
		`{"id":"` + "\xff\xfe" + `","method":"save` + "\xc3" + `"}`,
		"\xff{\"id\":1}",
		`{"id":11,"method":"save_workflow"} trailing`,
		`{"id":12,"method":"save_workflow"}{}`,
		`{"id":13,"method":"save_workflow"`,
		`[{"id":14,"method":"save_workflow"}]`,
		`null`, `true`, `"id"`, `42`, ``, ` `, `{}`,
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
		`{"id":15,"method":"save_workflow","params":` + strings.Repeat(`{"a":`, 11000) + `1` + strings.Repeat(`}`, 11000) + `}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		want := oracleFor(payload)
		e := newEnv(t)
		h := new(recordingHandler)
		c, conn, done := e.startRPC(t, "doc", "fuzz", h)
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeRPC(payload))
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0}))
		conn.deliver(websocket.BinaryMessage, syncproto.EncodeRPC([]byte(`{"id":"after","method":"echo"}`)))
		eventually(t, func() bool {
			if c.Disconnect().Code != 0 {
				return true
			}
			step2 := false
			for _, m := range conn.messages(t) {
				if m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2 {
					step2 = true
				}
			}
			return step2 && len(rpcReplies(t, conn)) >= 2
		}, "request, step1 and follow-up answered")
		// rpc.go never closes a session over a request's content.
		if d := c.Disconnect(); d.Code != 0 {
			t.Fatalf("session closed with %v", d)
		}
		rs := rpcReplies(t, conn)
		if len(rs) != 2 {
			t.Fatalf("%d replies, want 2", len(rs))
		}
		r := rs[0]
		switch {
		case want.idNull:
			if string(r.ID) != "null" {
				t.Fatalf("reply id %s, want null", r.ID)
			}
		case want.id != nil:
			if !reflect.DeepEqual(jsonValue(t, r.ID), jsonValue(t, want.id)) {
				t.Fatalf("reply id %s, want %s", r.ID, want.id)
			}
		}
		calls := h.recorded()
		if want.valid {
			if len(calls) != 2 || calls[0].Method != want.method ||
				!bytes.Equal(calls[0].Params, want.params) || calls[0].DocName != "doc" || calls[0].Session.ID != "fuzz" {
				t.Fatalf("calls %+v, want method %q params %s first", calls, want.method, want.params)
			}
			switch want.method {
			case "fail", "panic":
				typ := map[string]string{"fail": "validation_error", "panic": session.RPCErrorInternal}[want.method]
				if r.OK || r.Error == nil || r.Error.Type != typ {
					t.Fatalf("reply %+v, want error %s", r, typ)
				}
			default:
				var res struct {
					Method string          `json:"method"`
					Params json.RawMessage `json:"params"`
				}
				if !r.OK || r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.Method != want.method {
					t.Fatalf("reply %+v (result %s), want ok for %q", r, r.Result, want.method)
				}
			}
		} else {
			if len(calls) != 1 {
				t.Fatalf("handler saw %d calls, want only the follow-up", len(calls))
			}
			if r.OK || r.Error == nil || r.Error.Type != session.RPCErrorBadRequest {
				t.Fatalf("reply %+v to a bad request", r)
			}
		}
		if string(rs[1].ID) != `"after"` || !rs[1].OK {
			t.Fatalf("follow-up reply %+v", rs[1])
		}
		conn.hangUp()
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	})
}
