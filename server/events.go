package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/workflow"
)

// handleEvents streams the events of one pubsub topic as Server-Sent Events:
//
//	GET /api/events?topic=workflows          every workflow's events
//	GET /api/events?topic=workflow:<uuid>     one workflow's events
//
// Each event is "event: <type>" (saved, reset, updated, deleted) and "data: <JSON>" ({"type",
// "id", "lock_version"}), flushed at once. A comment line goes out first (the subscription is
// live from then on) and every Heartbeat while nothing happens. The stream ends when the client
// goes away, when the server shuts down, and when the client falls so far behind that the broker
// dropped its subscription (it then reconnects and re-reads what it mirrors).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	wf := s.workflows(w)
	if wf == nil {
		return
	}
	if wf.Broker == nil {
		writeAPIError(w, session.NewRPCError(errorUnavailable, "no event source configured"))
		return
	}
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		topic = workflow.TopicWorkflows
	}
	if _, ok := workflow.ParseDocName(topic); topic != workflow.TopicWorkflows && !ok {
		writeAPIError(w, session.NewRPCError(errorBadRequest, `topic must be "workflows" or "workflow:<uuid>"`))
		return
	}
	if id, ok := workflow.ParseDocName(topic); ok {
		if _, ok := s.authorizeWorkflow(w, r, id, auth.Read); !ok {
			return
		}
	} else if !s.Open() {
		// Every workflow's events: an admin's view (requireAdmin answers 401/403 itself).
		admin := false
		s.requireAdmin(func(http.ResponseWriter, *http.Request) { admin = true })(w, r)
		if !admin {
			return
		}
	}
	heartbeat := wf.Heartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	rc := http.NewResponseController(w)
	events, cancel := wf.Broker.Subscribe(topic)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(chunk string) bool {
		if _, err := fmt.Fprint(w, chunk); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(": subscribed to " + topic + "\n\n") {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				send(": subscription ended (too far behind or server stopping); reconnect\n\n")
				return
			}
			js, _ := json.Marshal(ev) // a struct of strings and an int
			if !send("event: " + ev.Type + "\ndata: " + string(js) + "\n\n") {
				return
			}
		case <-t.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.wf.stop:
			return
		}
	}
}
