package session

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
)

// Stateless messages carry the application channel for Hocuspocus providers: a payload that is
// a JSON request {"id", "method", "params"} is served by HPConfig.RPC exactly as a type-5
// request of a y-websocket session (rpc.go), and the reply goes back as a stateless message
// with the same JSON; any other payload goes to HPConfig.Stateless. Server events (type-5
// frames a document broadcasts) reach Hocuspocus sessions as stateless messages.
//
// Requests of one socket are served one at a time, in arrival order, on the socket's RPC
// goroutine, started at the first stateless message. The reader hands a message over only after
// every earlier frame went to its document, so a handler sees the socket's earlier edits.

// enqueueRPC runs on the reader; it blocks while rpcQueue messages wait.
func (s *HPSocket) enqueueRPC(ctx context.Context, h *HPSession, payload string) bool {
	if s.rpcq == nil {
		s.rpcq = make(chan hpCall, rpcQueue)
		s.rpcDone = make(chan struct{})
		go s.rpcLoop(ctx)
	}
	select {
	case s.rpcq <- hpCall{sess: h, payload: payload}:
		return true
	case <-s.closing:
	case <-ctx.Done():
		s.close(DisconnectGoingAway)
	}
	return false
}

func (s *HPSocket) rpcLoop(ctx context.Context) {
	defer close(s.rpcDone)
	for c := range s.rpcq {
		select {
		case <-s.closing:
			continue // drain: nobody reads the replies
		default:
		}
		s.serveStateless(ctx, c.sess, c.payload)
	}
}

// isRequest reports whether payload is a JSON request of the application channel.
func isRequest(payload string) (rpcRequest, bool) {
	var probe struct {
		ID     json.RawMessage `json:"id"`
		Method *string         `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if len(payload) == 0 || payload[0] != '{' || json.Unmarshal([]byte(payload), &probe) != nil || probe.Method == nil {
		return rpcRequest{}, false
	}
	return rpcRequest{ID: probe.ID, Method: *probe.Method, Params: probe.Params}, true
}

func (s *HPSocket) serveStateless(ctx context.Context, h *HPSession, payload string) {
	ctx, cancel := context.WithTimeout(ctx, RPCTimeout)
	defer cancel()
	req, ok := isRequest(payload)
	if !ok {
		if s.cfg.Stateless != nil {
			s.callStateless(ctx, StatelessCall{Doc: h.doc, DocName: h.name, Session: h.info, CanWrite: h.CanWrite(), Payload: payload})
		}
		return
	}
	if req.Method == "" {
		s.reply(h, rpcReply{ID: req.ID, Error: NewRPCError(RPCErrorBadRequest, `want a JSON object {"id", "method", "params"}`)})
		return
	}
	if s.cfg.RPC == nil {
		s.reply(h, rpcReply{ID: req.ID, Error: NewRPCError(RPCErrorUnsupported, "this server answers no requests")})
		return
	}
	start := time.Now()
	result, rerr := s.callHandler(ctx, s.cfg.RPC, RPCCall{
		Doc: h.doc, DocName: h.name, Session: h.info, CanWrite: h.CanWrite(),
		Method: req.Method, Params: req.Params,
	})
	took := time.Since(start)
	s.cfg.Stats.RPCLatency.Observe(took)
	s.log.Debug("rpc", "doc", h.name, "method", req.Method, "ok", rerr == nil, "took", took)
	if rerr != nil {
		s.reply(h, rpcReply{ID: req.ID, Error: rerr})
		return
	}
	s.reply(h, rpcReply{ID: req.ID, OK: true, Result: result})
}

func (s *HPSocket) callStateless(ctx context.Context, call StatelessCall) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("stateless handler panic", "doc", call.DocName, "panic", v)
		}
	}()
	s.cfg.Stateless(ctx, call)
}

func (s *HPSocket) reply(h *HPSession, r rpcReply) {
	js := s.encodeReply(r)
	s.mu.Lock()
	live := h.state == hpLive
	ok := !live || s.sendLocked(syncproto.EncodeHPStateless(h.key, string(js)))
	s.mu.Unlock()
	if !ok {
		s.slow()
	}
}
