package server

import (
	"context"

	"github.com/ysync/ysync/workflow"
)

// WorkflowLocker serializes the saves of one workflow across processes (store.Postgres:
// an advisory lock). lock_version stays the guard against lost updates; the lock only keeps two
// nodes from validating and writing the same workflow at the same moment.
type WorkflowLocker interface {
	LockWorkflow(ctx context.Context, id string) (unlock func(), err error)
}

// saveWorkflow runs a save under the cluster-wide lock of the workflow when the store has one.
func (s *Server) saveWorkflow(ctx context.Context, wf *Workflows, live workflow.LiveDoc, id, user string) (*workflow.SaveResult, error) {
	if l, ok := s.store.(WorkflowLocker); ok {
		unlock, err := l.LockWorkflow(ctx, id)
		if err != nil {
			return nil, &workflow.Error{Type: workflow.ErrorInternal, Errors: map[string]any{"base": []string{"could not take the workflow's save lock: " + err.Error()}}}
		}
		defer unlock()
	}
	return wf.Service.Save(ctx, live, id, user)
}
