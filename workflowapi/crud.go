package workflowapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/workflow"
)

// authorize checks that the request may act on workflow id's document with need (answering
// 401/403 itself when not) and returns who the workflow service is told made it: the token's
// subject, or on a server without authentication the ?user= label ("api" by default).
//
// External writes (create, replace, delete) need an admin principal, as the admin API does; an
// open server has no admins, so there they are as open as everything else.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, id string, need auth.Permission, tokenInQuery bool) (string, bool) {
	open := a.cfg.Auth.Open()
	if need == auth.Admin && open {
		need = auth.Write
	}
	p, ok := a.cfg.Auth.AuthorizeDoc(w, r, workflow.DocName(id), need, tokenInQuery)
	if !ok {
		return "", false
	}
	if !open {
		return p.UserID, true
	}
	if u := r.URL.Query().Get("user"); u != "" {
		return u, true
	}
	return "api", true
}

// target is the common start of the /api/workflows/{id} handlers: workflows enabled, a valid id
// in the path, and the request allowed need on it. It answers the request itself when any of
// that fails.
func (a *API) target(w http.ResponseWriter, r *http.Request, need auth.Permission) (wf *Workflows, id, user string, ok bool) {
	if wf = a.workflows(w); wf == nil {
		return nil, "", "", false
	}
	if id, ok = pathID(w, r); !ok {
		return nil, "", "", false
	}
	if user, ok = a.authorize(w, r, id, need, false); !ok {
		return nil, "", "", false
	}
	return wf, id, user, true
}

// pathID returns the workflow id of the path, or answers 404.
func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !workflow.ValidID(id) {
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %q (ids are lowercase UUIDs)", id)))
		return "", false
	}
	return id, true
}

// liveDoc returns the open document of workflow id, or nil.
func (a *API) liveDoc(id string) workflow.LiveDoc {
	return workflow.SharedDoc(a.cfg.Docs.Get(workflow.DocName(id)))
}

func (a *API) handleCreate(w http.ResponseWriter, r *http.Request) {
	wf := a.workflows(w)
	if wf == nil {
		return
	}
	// The token first, the body after: creating is an admin write whatever the id, so the id
	// the body may name is not needed to decide, and nobody without a token makes the server
	// read (let alone parse) megabytes of JSON.
	id := workflow.NewID()
	user, ok := a.authorize(w, r, id, auth.Admin, false)
	if !ok {
		return
	}
	var in workflow.Workflow
	if !a.readBody(w, r, &in, a.cfg.MaxWorkflowBodyBytes, true) {
		return
	}
	if in.ID != "" {
		if !workflow.ValidID(in.ID) {
			writeAPIError(w, session.NewRPCError(errorBadRequest, "id must be a lowercase UUID, or absent"))
			return
		}
		_, err := wf.Repo.Get(r.Context(), in.ID)
		switch {
		case err == nil:
			writeAPIError(w, session.NewRPCError(errorConflict, fmt.Sprintf("workflow %s already exists", in.ID)))
			return
		case !errors.Is(err, workflow.ErrNotFound):
			a.failed(w, "create", err)
			return
		}
	}
	if in.ID == "" {
		in.ID = id
	}
	in.DeletedAt = nil
	stored, err := wf.Service.ApplyExternal(r.Context(), nil, &in, user)
	if err != nil {
		a.failed(w, "create", err)
		return
	}
	w.Header().Set("Location", "/api/workflows/"+stored.ID)
	writeResult(w, http.StatusCreated, stored)
}

func (a *API) handleGet(w http.ResponseWriter, r *http.Request) {
	wf, id, _, ok := a.target(w, r, auth.Read)
	if !ok {
		return
	}
	if got, ok := a.current(w, r, wf, id, "get"); ok {
		writeResult(w, http.StatusOK, got)
	}
}

// current reads workflow id as stored, or answers 404 (no such workflow), 410 (deleted) or the
// failure of op, and returns false.
func (a *API) current(w http.ResponseWriter, r *http.Request, wf *Workflows, id, op string) (*workflow.Workflow, bool) {
	cur, err := wf.Repo.Get(r.Context(), id)
	switch {
	case errors.Is(err, workflow.ErrNotFound):
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
		return nil, false
	case err != nil:
		a.failed(w, op, err)
		return nil, false
	case cur.DeletedAt != nil:
		writeAPIError(w, session.NewRPCError(workflow.ErrorDeleted, "the workflow has been deleted"))
		return nil, false
	}
	return cur, true
}

func (a *API) handlePut(w http.ResponseWriter, r *http.Request) {
	wf, id, user, ok := a.target(w, r, auth.Admin)
	if !ok {
		return
	}
	var in struct {
		workflow.Workflow
		LockVersion *int `json:"lock_version"`
	}
	if !a.readBody(w, r, &in, a.cfg.MaxWorkflowBodyBytes, true) {
		return
	}
	if in.LockVersion == nil {
		writeAPIError(w, session.NewRPCError(errorBadRequest, "lock_version is required (the version this replaces)"))
		return
	}
	if in.ID != "" && in.ID != id {
		writeAPIError(w, session.NewRPCError(errorBadRequest, "the body's id is not the path's"))
		return
	}
	next := in.Workflow
	next.ID, next.LockVersion, next.DeletedAt = id, *in.LockVersion, nil
	if _, err := wf.Repo.Get(r.Context(), id); err != nil {
		if errors.Is(err, workflow.ErrNotFound) {
			writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
		} else {
			a.failed(w, "replace", err)
		}
		return
	}
	stored, err := wf.Service.ApplyExternalLookup(r.Context(), func() workflow.LiveDoc { return a.liveDoc(id) }, &next, user)
	if err != nil {
		a.failed(w, "replace", err)
		return
	}
	writeResult(w, http.StatusOK, stored)
}

// handleDelete soft-deletes; ?lock_version=N makes it conditional on that version.
func (a *API) handleDelete(w http.ResponseWriter, r *http.Request) {
	wf, id, user, ok := a.target(w, r, auth.Admin)
	if !ok {
		return
	}
	cur, ok := a.current(w, r, wf, id, "delete")
	if !ok {
		return
	}
	del := cur.Clone()
	if v := r.URL.Query().Get("lock_version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeAPIError(w, session.NewRPCError(errorBadRequest, "lock_version must be an integer"))
			return
		}
		del.LockVersion = n
	}
	now := time.Now().UTC()
	del.DeletedAt = &now
	stored, err := wf.Service.ApplyExternalLookup(r.Context(), func() workflow.LiveDoc { return a.liveDoc(id) }, del, user)
	if err != nil {
		a.failed(w, "delete", err)
		return
	}
	writeResult(w, http.StatusOK, stored)
}
