package workflowapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
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
// goes away, when the server shuts down (Stop), and when the client falls so far behind that the
// broker dropped its subscription (it then reconnects and re-reads what it mirrors), and when a
// write does not reach the client within EventWriteWait (it stopped reading).
func (a *API) handleEvents(w http.ResponseWriter, r *http.Request) {
	wf := a.workflows(w)
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
		if _, ok := a.authorize(w, r, id, auth.Read, true); !ok {
			return
		}
	} else if !a.cfg.Auth.Open() {
		// Every workflow's events: an admin's view (RequireAdmin answers 401/403 itself).
		if !a.cfg.Auth.RequireAdmin(w, r) {
			return
		}
	}
	heartbeat := wf.Heartbeat
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	rc := http.NewResponseController(w)
	// The stream outlives the http.Server's timeouts: no read deadline (ReadTimeout would end
	// the request's context once it passes), and a write deadline per write instead of one for
	// the whole answer. A client that stops reading fills the socket, a write then misses its
	// deadline and the stream ends: it never holds this goroutine and its connection forever.
	_ = rc.SetReadDeadline(time.Time{})
	events, cancel := wf.Broker.Subscribe(topic)
	defer cancel()
	count(a.cfg.Metrics.EventStreams, 1)
	defer count(a.cfg.Metrics.EventStreams, -1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	writeWait := wf.EventWriteWait
	if writeWait <= 0 {
		writeWait = DefaultEventWriteWait
	}
	send := func(chunk string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeWait))
		_, err := fmt.Fprint(w, chunk)
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				count(a.cfg.Metrics.EventDropped, 1)
				a.log.Info("event stream dropped: the client does not read", "topic", topic, "remote", a.cfg.Remote(r))
			}
			return false
		}
		return true
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
		case <-a.stop:
			return
		}
	}
}
