package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/shareddoc"
)

// The application channel (message type 5) carries one JSON value per frame, in both directions:
//
//	request  {"id": <any JSON>, "method": "save_workflow", "params": {...}}
//	reply    {"id": <the same>, "ok": true, "result": {...}}
//	         {"id": <the same>, "ok": false, "error": {"type": "...", "errors": {...}}}
//	event    {"event": "workflow_saved", "payload": {...}}   (server → client only)
//
// Requests of one connection are served one at a time, in the order they arrived, by a goroutine
// of the session's own (started at the first request), so the reader never waits on a handler.
// A request is handed to that goroutine only after every frame the connection sent before it
// was handed to the document, and the document applies commands in order: a handler that reads
// the document through the document's goroutine sees every earlier edit of the connection.
//
// Server events go only to sessions that asked for them (EnableEvents, for ?events=1) or that
// have used the channel themselves: a stock y-websocket client logs an error for a message type
// it does not know.

// Timing and sizes of the application channel.
const (
	// RPCTimeout bounds one request, the handler's database work included.
	RPCTimeout = 30 * time.Second
	// rpcQueue is how many requests of one connection may wait for the RPC goroutine before the
	// reader blocks (inbound backpressure, as for document commands).
	rpcQueue = 16
)

// Error types the session itself replies with; handlers add their own.
const (
	RPCErrorBadRequest  = "bad_request" // not a JSON object with a method
	RPCErrorUnsupported = "unsupported" // no handler, or a method it does not know
	RPCErrorInternal    = "internal_error"
)

// RPCError is the error of a failed request, sent as {"type": ..., "errors": ...}. Errors holds
// {"base": ["message"]} unless the type says otherwise (validation errors by field).
type RPCError struct {
	Type   string         `json:"type"`
	Errors map[string]any `json:"errors"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("%s: %v", e.Type, e.Errors) }

// NewRPCError returns an error of type typ with one base message.
func NewRPCError(typ, msg string) *RPCError {
	return &RPCError{Type: typ, Errors: map[string]any{"base": []any{msg}}}
}

// RPCCall is one request as a handler sees it.
type RPCCall struct {
	// Doc is the session's document; DocName its name.
	Doc     *shareddoc.Doc
	DocName string
	// Session is the requesting session (its ID is the one to leave out of broadcasts).
	Session shareddoc.SessionInfo
	// CanWrite is the session's Client.CanWrite at the time of the request: false for a
	// read-only session or one whose credentials expired.
	CanWrite bool
	Method   string
	Params   json.RawMessage
}

// RPCHandler serves the requests of the application channel. It runs on the session's RPC
// goroutine (one request at a time per session; many sessions at once) with a context that ends
// after RPCTimeout or when the server gives up on shutdown. It returns the result to send (any
// JSON-able value) or an error.
type RPCHandler interface {
	ServeRPC(ctx context.Context, call RPCCall) (result any, err *RPCError)
}

// rpcState is a session's part of the application channel.
type rpcState struct {
	handler RPCHandler    // set before Run
	events  atomic.Bool   // the session receives server events
	queue   chan []byte   // created by the reader at the first request; closed by Run
	done    chan struct{} // closed when the RPC goroutine ends
}

// SetRPC installs the handler of the session's requests; without one every request is answered
// "unsupported". Call it before Run.
func (c *Client) SetRPC(h RPCHandler) { c.rpc.handler = h }

// EnableEvents makes the session receive server events even before it sends a request of its
// own (the ?events=1 query parameter).
func (c *Client) EnableEvents() { c.rpc.events.Store(true) }

// WantsEvents reports whether p is a session that receives server events: a y-websocket session
// that asked for them, or any Hocuspocus session.
func WantsEvents(p shareddoc.Peer) bool {
	if IsHocuspocus(p) {
		return true // a provider hands stateless messages to the application, which may ignore them
	}
	c, ok := p.(*Client)
	return ok && c.rpc.events.Load()
}

// EventFrame encodes a server event as a type-5 frame.
func EventFrame(event string, payload any) ([]byte, error) {
	js, err := json.Marshal(struct {
		Event   string `json:"event"`
		Payload any    `json:"payload"`
	}{event, payload})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", event, err)
	}
	return syncproto.EncodeRPC(js), nil
}

// BroadcastEvent sends a server event to every session of doc that receives events, except the
// session whose id is except (empty: none). It is queued behind the document's earlier commands.
func BroadcastEvent(ctx context.Context, doc *shareddoc.Doc, except, event string, payload any) error {
	frame, err := EventFrame(event, payload)
	if err != nil {
		return err
	}
	return doc.Broadcast(ctx, frame, except, WantsEvents)
}

// enqueueRPC runs on the reader: it hands one request to the RPC goroutine, starting it at the
// first request, and blocks while rpcQueue requests are waiting. It returns false when the
// session is closing or ctx ended.
func (c *Client) enqueueRPC(ctx context.Context, doc *shareddoc.Doc, payload []byte) bool {
	c.rpc.events.Store(true)
	if c.rpc.queue == nil {
		c.rpc.queue = make(chan []byte, rpcQueue)
		c.rpc.done = make(chan struct{})
		go c.rpcLoop(ctx, doc)
	}
	select {
	case c.rpc.queue <- payload:
		return true
	case <-c.closing:
	case <-ctx.Done():
		c.close(DisconnectGoingAway)
	}
	return false
}

// stopRPC runs on the reader's goroutine after the reader ended: requests still queued are
// dropped (the session is gone), the one being served finishes.
func (c *Client) stopRPC() {
	if c.rpc.queue == nil {
		return
	}
	close(c.rpc.queue)
	<-c.rpc.done
}

func (c *Client) rpcLoop(ctx context.Context, doc *shareddoc.Doc) {
	defer close(c.rpc.done)
	for payload := range c.rpc.queue {
		select {
		case <-c.closing:
			continue // drain without serving: nobody would read the reply
		default:
		}
		c.serveRPC(ctx, doc, payload)
	}
}

type rpcRequest struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Result any             `json:"result,omitempty"`
	Error  *RPCError       `json:"error,omitempty"`
}

func (c *Client) serveRPC(ctx context.Context, doc *shareddoc.Doc, payload []byte) {
	var req rpcRequest
	if err := json.Unmarshal(payload, &req); err != nil || req.Method == "" {
		c.log.Debug("bad rpc request", "bytes", len(payload), "err", err)
		c.reply(rpcReply{ID: req.ID, Error: NewRPCError(RPCErrorBadRequest, `want a JSON object {"id", "method", "params"}`)})
		return
	}
	if c.rpc.handler == nil {
		c.reply(rpcReply{ID: req.ID, Error: NewRPCError(RPCErrorUnsupported, "this server answers no requests")})
		return
	}
	ctx, cancel := context.WithTimeout(ctx, RPCTimeout)
	defer cancel()
	start := time.Now()
	result, rerr := c.callHandler(ctx, c.rpc.handler, RPCCall{
		Doc: doc, DocName: c.docName, Session: c.info, CanWrite: c.CanWrite(),
		Method: req.Method, Params: req.Params,
	})
	took := time.Since(start)
	c.cfg.Stats.RPCLatency.Observe(took)
	c.log.Debug("rpc", "method", req.Method, "ok", rerr == nil, "took", took)
	if rerr != nil {
		c.reply(rpcReply{ID: req.ID, Error: rerr})
		return
	}
	c.reply(rpcReply{ID: req.ID, OK: true, Result: result})
}

// callHandler runs the handler h (a Client's or a Hocuspocus socket's), turning a panic into an
// internal error: one bad request must not take the process down.
func (k *connCore) callHandler(ctx context.Context, h RPCHandler, call RPCCall) (result any, rerr *RPCError) {
	defer func() {
		if v := recover(); v != nil {
			k.log.Error("rpc handler panic", "method", call.Method, "panic", v)
			result, rerr = nil, NewRPCError(RPCErrorInternal, "internal error")
		}
	}()
	return h.ServeRPC(ctx, call)
}

// encodeReply returns r as JSON, with a null id when it has none; a reply that does not encode
// becomes an internal error.
func (k *connCore) encodeReply(r rpcReply) []byte {
	if r.ID == nil {
		r.ID = json.RawMessage("null")
	}
	js, err := json.Marshal(r)
	if err != nil {
		k.log.Error("encode rpc reply", "err", err)
		js, _ = json.Marshal(rpcReply{ID: r.ID, Error: NewRPCError(RPCErrorInternal, "reply could not be encoded")})
	}
	return js
}

func (c *Client) reply(r rpcReply) {
	js := c.encodeReply(r)
	if !c.Send(syncproto.EncodeRPC(js)) {
		c.cfg.Stats.SlowCloses.Add(1)
		c.close(DisconnectSlow)
	}
}
