package server

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/webhook"
	"github.com/ysync/ysync/workflow"
)

// Webhooks: events of the document lifecycle (shareddoc hooks), of sessions and of workflows
// (pubsub) go to the webhook dispatcher, which stores and delivers them (package webhook).
// Nothing here blocks a document: the dispatcher only queues.

// webhookState is the server's share of webhooks.
type webhookState struct {
	d    *webhook.Dispatcher // nil without --webhook-url
	stop chan struct{}
	wg   sync.WaitGroup
}

// newWebhooks creates the dispatcher (when URLs are configured) and wraps the document hooks so
// that they emit events. It runs in New, before the registry is made.
func newWebhooks(cfg *Config, st Store) *webhookState {
	ws := &webhookState{stop: make(chan struct{})}
	if len(cfg.Webhooks.URLs) == 0 {
		return ws
	}
	ob, ok := st.(webhook.Outbox)
	if !ok {
		cfg.Logger.Error("webhooks disabled: the store has no outbox")
		return ws
	}
	if _, mem := st.(*store.Memory); mem {
		cfg.Logger.Warn("webhook outbox is in memory (no database): events not yet delivered are lost on restart")
	}
	if len(cfg.Webhooks.Secret) == 0 {
		cfg.Logger.Warn("webhooks are not signed: set --webhook-secret")
	}
	wc := cfg.Webhooks
	if wc.Logger == nil {
		wc.Logger = cfg.Logger.With("component", "webhook")
	}
	d := webhook.New(wc, ob)
	ws.d = d
	h := cfg.Hooks
	prevLoad, prevUnload, prevStored, prevJoin, prevLeave := h.LoadState, h.OnUnload, h.OnStored, h.OnJoin, h.OnLeave
	h.LoadState = func(ctx context.Context, name string, doc *crdt.Doc) error {
		if prevLoad != nil {
			if err := prevLoad(ctx, name, doc); err != nil {
				return err
			}
		}
		d.Emit(webhook.DocumentLoaded, name, nil)
		return nil
	}
	h.OnUnload = func(name string) {
		if prevUnload != nil {
			prevUnload(name)
		}
		d.Emit(webhook.DocumentUnloaded, name, nil)
	}
	h.OnStored = func(name string, seq int64) {
		if prevStored != nil {
			prevStored(name, seq)
		}
		d.Changed(name, seq)
	}
	h.OnJoin = func(ctx context.Context, name, user string) (any, error) {
		var meta any
		if prevJoin != nil {
			m, err := prevJoin(ctx, name, user)
			if err != nil {
				return nil, err
			}
			meta = m
		}
		d.Emit(webhook.SessionJoined, name, map[string]any{"user": user})
		return meta, nil
	}
	h.OnLeave = func(name string, info shareddoc.SessionInfo) {
		if prevLeave != nil {
			prevLeave(name, info)
		}
		d.Emit(webhook.SessionLeft, name, map[string]any{"user": info.User, "session": info.ID})
	}
	cfg.Hooks = h
	cfg.Logger.Info("webhooks enabled", "urls", len(cfg.Webhooks.URLs), "signed", len(cfg.Webhooks.Secret) > 0)
	return ws
}

// startWebhookForwarding starts forwarding workflow events (New, once s exists).
func (s *Server) startWebhookForwarding() {
	if wf := s.cfg.Workflows; s.hooks.d != nil && wf != nil && wf.Broker != nil {
		s.hooks.wg.Add(1)
		go s.workflowEvents(wf)
	}
}

// workflowEvents forwards the workflow events of the broker until shutdown.
func (s *Server) workflowEvents(wf *Workflows) {
	defer s.hooks.wg.Done()
	types := map[string]string{"saved": webhook.WorkflowSaved, "reset": webhook.WorkflowReset, "updated": webhook.WorkflowUpdated, "deleted": webhook.WorkflowDeleted}
	for {
		ch, cancel := wf.Broker.Subscribe(workflow.TopicWorkflows)
		for open := true; open; {
			select {
			case <-s.hooks.stop:
				cancel()
				return
			case ev, ok := <-ch:
				if !ok {
					open = false
					break
				}
				typ, known := types[ev.Type]
				if !known {
					typ = "workflow." + ev.Type
				}
				s.hooks.d.Emit(typ, workflow.DocName(ev.ID), map[string]any{"workflow_id": ev.ID, "lock_version": ev.LockVersion})
			}
		}
		cancel()
		select {
		case <-s.hooks.stop:
			return
		default:
		}
		// Fell a buffer behind (or the broker closed): events were missed; subscribe again.
		s.log.Warn("webhooks: workflow events missed; resubscribing")
		select {
		case <-s.hooks.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// closeWebhooks stops forwarding and closes the dispatcher (queued events go to the outbox).
func (s *Server) closeWebhooks(ctx context.Context) error {
	select {
	case <-s.hooks.stop:
	default:
		close(s.hooks.stop)
	}
	s.hooks.wg.Wait()
	return s.hooks.d.Close(ctx)
}

// Webhooks returns the dispatcher, or nil without webhooks (for tests and metrics).
func (s *Server) Webhooks() *webhook.Dispatcher { return s.hooks.d }

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request) {
	ob, ok := s.store.(webhook.Outbox)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this store has no webhook outbox")
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	switch state {
	case "", store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed:
	default:
		writeError(w, http.StatusBadRequest, "state must be pending, delivered or failed")
		return
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxListLimit {
			writeError(w, http.StatusBadRequest, "limit must be 1.."+strconv.Itoa(store.MaxListLimit))
			return
		}
		limit = n
	}
	ctx, cancel := requestCtx(r)
	defer cancel()
	ds, err := ob.ListDeliveries(ctx, state, limit)
	if err != nil {
		s.docFailed(w, "list deliveries", "", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds, "enabled": s.hooks.d != nil})
}
