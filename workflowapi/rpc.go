package workflowapi

import (
	"context"
	"fmt"

	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/workflow"
)

// ServeRPC serves save_workflow and reset_workflow for the session's own document (both
// protocols: y-websocket's application channel and Hocuspocus requests).
func (a *API) ServeRPC(ctx context.Context, call session.RPCCall) (any, *session.RPCError) {
	if call.Method != MethodSaveWorkflow && call.Method != MethodResetWorkflow {
		return nil, session.NewRPCError(session.RPCErrorUnsupported, fmt.Sprintf("unknown method %q", call.Method))
	}
	id, ok := workflow.ParseDocName(call.DocName)
	if !ok {
		return nil, session.NewRPCError(errorNotFound, fmt.Sprintf("%q is not a workflow document (workflow:<uuid>)", call.DocName))
	}
	if !call.CanWrite {
		return nil, session.NewRPCError(workflow.ErrorUnauthorized, "this session may not change the workflow (read-only or expired)")
	}
	wf := a.cfg.Workflows
	if wf == nil {
		return nil, session.NewRPCError(errorUnavailable, unavailableMsg)
	}
	live := workflow.SharedDoc(call.Doc)
	if call.Method == MethodResetWorkflow {
		res, err := wf.Service.Reset(ctx, live, id, call.Session.User)
		if err != nil {
			return nil, rpcError(err)
		}
		return res, nil
	}
	res, err := a.save(ctx, wf, live, id, call.Session.User)
	if err != nil {
		return nil, rpcError(err)
	}
	a.announceSaved(ctx, call.Doc, call.Session.ID, res)
	return res, nil
}

// announceSaved sends workflow_saved to the sessions of doc that receive events, but except,
// then runs the AfterSave hook.
func (a *API) announceSaved(ctx context.Context, doc *shareddoc.Doc, except string, res *workflow.SaveResult) {
	payload := struct {
		LockVersion int                `json:"lock_version"`
		Workflow    *workflow.Workflow `json:"workflow"`
	}{res.LockVersion, res.Workflow}
	if err := session.BroadcastEvent(ctx, doc, except, EventWorkflowSaved, payload); err != nil {
		a.log.Warn("workflow_saved event not sent", "doc", doc.Name(), "err", err)
	}
	if a.cfg.AfterSave != nil {
		a.cfg.AfterSave(ctx, doc.Name(), res.LockVersion)
	}
}
