package workflowapi

import (
	"context"
	"time"

	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/workflow"
)

// save runs a save under the cluster-wide lock of the workflow when there is a Locker.
func (a *API) save(ctx context.Context, wf *Workflows, live workflow.LiveDoc, id, user string) (*workflow.SaveResult, error) {
	if l := a.cfg.Locker; l != nil {
		unlock, err := l.LockWorkflow(ctx, id)
		if err != nil {
			return nil, &workflow.Error{Type: workflow.ErrorInternal, Errors: map[string]any{"base": []string{"could not take the workflow's save lock: " + err.Error()}}}
		}
		defer unlock()
	}
	return wf.Service.Save(ctx, live, id, user)
}

// RemoteSaves sends workflow_saved to this node's editors of a workflow saved on another node
// (cluster mode: the broker is bridged through Redis, and such events carry the node they came
// from), until stop is closed. The saving node told its own editors; the payload is read back
// from the tables. events is a subscription to workflow.TopicWorkflows of Workflows.Broker, taken
// by the caller before it starts this goroutine; RemoteSaves cancels it (and any it takes again
// after the broker dropped it) when it returns. It needs Workflows with Broker and Repo.
func (a *API) RemoteSaves(stop <-chan struct{}, events <-chan pubsub.Event) {
	wf := a.cfg.Workflows
	for {
		var ev pubsub.Event
		var ok bool
		select {
		case <-stop:
			return
		case ev, ok = <-events:
		}
		if !ok {
			// The broker dropped the subscription (we fell behind) or closed: subscribe again.
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			var cancel func()
			events, cancel = wf.Broker.Subscribe(workflow.TopicWorkflows)
			defer cancel()
			continue
		}
		if ev.Node == "" || ev.Type != pubsub.EventSaved {
			continue
		}
		doc := a.cfg.Docs.Get(workflow.DocName(ev.ID))
		if doc == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w, err := wf.Repo.Get(ctx, ev.ID)
		if err != nil {
			a.log.Warn("workflow saved on another node: read it back", "workflow", ev.ID, "node", ev.Node, "err", err)
		} else {
			a.announceSaved(ctx, doc, "", &workflow.SaveResult{SavedAt: time.Now().UTC(), LockVersion: w.LockVersion, Workflow: w})
		}
		cancel()
	}
}
