package server

import (
	"context"
	"time"

	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/workflow"
)

// remoteSaves sends workflow_saved to this node's editors of a workflow saved on another node
// (cluster mode: the broker is bridged through Redis, and such events carry the node they came
// from). The saving node told its own editors; the payload is read back from the tables.
func (s *Server) remoteSaves(events <-chan pubsub.Event) {
	defer s.cluster.wg.Done()
	for {
		var ev pubsub.Event
		var ok bool
		select {
		case <-s.cluster.stop:
			return
		case ev, ok = <-events:
		}
		if !ok {
			// The broker dropped the subscription (we fell behind) or closed: subscribe again.
			select {
			case <-s.cluster.stop:
				return
			case <-time.After(time.Second):
			}
			var cancel func()
			events, cancel = s.cfg.Workflows.Broker.Subscribe(workflow.TopicWorkflows)
			defer cancel()
			continue
		}
		if ev.Node == "" || ev.Type != pubsub.EventSaved {
			continue
		}
		doc := s.reg.Get(workflow.DocName(ev.ID))
		if doc == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w, err := s.cfg.Workflows.Repo.Get(ctx, ev.ID)
		if err != nil {
			s.log.Warn("workflow saved on another node: read it back", "workflow", ev.ID, "node", ev.Node, "err", err)
		} else {
			s.announceSaved(ctx, doc, "", &workflow.SaveResult{SavedAt: time.Now().UTC(), LockVersion: w.LockVersion, Workflow: w})
		}
		cancel()
	}
}

// startRemoteSaves runs remoteSaves when the broker is bridged to other nodes.
func (s *Server) startRemoteSaves() {
	wf := s.cfg.Workflows
	if s.cfg.Cluster == nil || wf == nil || wf.Broker == nil || wf.Repo == nil {
		return
	}
	events, cancel := wf.Broker.Subscribe(workflow.TopicWorkflows)
	s.cluster.wg.Add(1)
	go func() {
		defer cancel()
		s.remoteSaves(events)
	}()
}
