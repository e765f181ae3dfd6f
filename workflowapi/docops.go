package workflowapi

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/workflow"
)

func (a *API) handleSave(w http.ResponseWriter, r *http.Request) {
	a.docOp(w, r, MethodSaveWorkflow)
}

func (a *API) handleReset(w http.ResponseWriter, r *http.Request) {
	a.docOp(w, r, MethodResetWorkflow)
}

// docOp saves or resets the workflow's document, opening it if it is not loaded. With
// {"after": <base64 state vector>} it first waits (up to AfterTimeout) until the document
// contains that state: a client that just sent edits over its WebSocket names its own state
// so the save includes them.
func (a *API) docOp(w http.ResponseWriter, r *http.Request, method string) {
	wf, id, user, ok := a.target(w, r, auth.Write)
	if !ok {
		return
	}
	var body struct {
		After string `json:"after"`
	}
	if !a.readBody(w, r, &body, maxJSONBody, false) {
		return
	}
	var after map[uint64]int
	if body.After != "" {
		raw, err := base64.StdEncoding.DecodeString(body.After)
		if err == nil {
			after, err = crdt.DecodeStateVector(raw)
		}
		if err != nil {
			writeAPIError(w, session.NewRPCError(errorBadRequest, "after must be a base64 encoded Yjs state vector"))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), session.RPCTimeout)
	defer cancel()
	doc, release, err := a.cfg.Docs.Hold(ctx, workflow.DocName(id))
	if err != nil {
		switch {
		case errors.Is(err, workflow.ErrNotFound):
			writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
		case errors.Is(err, shareddoc.ErrJoinRefused):
			writeAPIError(w, session.NewRPCError(workflow.ErrorUnauthorized, "not allowed to open this document"))
		case errors.Is(err, shareddoc.ErrClosed):
			writeAPIError(w, session.NewRPCError(errorUnavailable, "server shutting down"))
		case errors.Is(err, shareddoc.ErrTooManyDocuments):
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, session.NewRPCError(errorUnavailable, "too many documents loaded; try again later"))
		default:
			a.failed(w, "open document", err)
		}
		return
	}
	defer release()
	if after != nil {
		timeout := wf.AfterTimeout
		if timeout <= 0 {
			timeout = DefaultAfterTimeout
		}
		if err := waitForState(ctx, doc, after, timeout); err != nil {
			writeAPIError(w, session.NewRPCError(errorTimeout, "the document did not reach the given state in time: "+err.Error()))
			return
		}
	}
	live := workflow.SharedDoc(doc)
	if method == MethodResetWorkflow {
		res, err := wf.Service.Reset(ctx, live, id, user)
		if err != nil {
			a.failed(w, "reset", err)
			return
		}
		writeResult(w, http.StatusOK, res)
		return
	}
	res, err := a.save(ctx, wf, live, id, user)
	if err != nil {
		a.failed(w, "save", err)
		return
	}
	a.announceSaved(ctx, doc, "", res)
	writeResult(w, http.StatusOK, res)
}

// waitForState polls the document until its state vector covers want.
func waitForState(ctx context.Context, doc *shareddoc.Doc, want map[uint64]int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(afterPoll)
	defer t.Stop()
	for {
		covered := false
		err := doc.Update(ctx, func(tx *crdt.Transaction) {
			have := tx.Doc().StateVector()
			covered = true
			for client, clock := range want {
				if have[client] < clock {
					covered = false
					return
				}
			}
		})
		if err != nil {
			return err
		}
		if covered {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
