package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/session"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/workflow"
)

// Workflows wires the workflow domain into the server: save and reset of workflow documents
// (over the WebSocket's application channel and over HTTP), workflow CRUD under /api/workflows
// and the /api/events stream. Workflows live in PostgreSQL, so this is only set when the server
// has a database; without it (Config.Workflows nil) those routes answer 503 and the requests
// "unavailable".
type Workflows struct {
	// Service saves, resets and writes workflows. Required. Its LoadState becomes the
	// registry's LoadState hook (after any hook given in Config.Hooks).
	Service *workflow.Service
	// Repo reads workflows for GET. Required.
	Repo *workflow.Repo
	// Broker is the source of /api/events (the Service's broker). Nil: /api/events answers 503.
	Broker *pubsub.Broker
	// AfterTimeout bounds how long an HTTP save or reset with "after" waits for the document to
	// contain that state. Zero means DefaultAfterTimeout.
	AfterTimeout time.Duration
	// Heartbeat is the interval of the comment lines that keep an idle event stream open through
	// proxies. Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// EventWriteWait bounds one write of an event stream; a client that does not take it in
	// that time (it stopped reading) is dropped. Zero means DefaultEventWriteWait.
	EventWriteWait time.Duration
}

// Defaults of Workflows.
const (
	DefaultAfterTimeout = 10 * time.Second
	DefaultHeartbeat    = 15 * time.Second
	// DefaultEventWriteWait is long next to a heartbeat's few bytes on a live connection.
	DefaultEventWriteWait = 10 * time.Second
	// afterPoll is how often a save with "after" looks at the document's state vector again.
	afterPoll = 10 * time.Millisecond
	// maxJSONBody bounds the JSON body of every route but workflow create/replace
	// (Limits.MaxWorkflowBodyBytes): save and reset take {"after": <state vector>}.
	maxJSONBody = 1 << 20
)

// RPC methods of workflow documents and the server event of a save.
const (
	MethodSaveWorkflow  = "save_workflow"
	MethodResetWorkflow = "reset_workflow"
	EventWorkflowSaved  = "workflow_saved"
)

// Error types of this layer, next to workflow's own (workflow.ErrorValidation, ...).
const (
	errorNotFound    = "not_found"
	errorBadRequest  = "bad_request"
	errorUnavailable = "unavailable"
	errorTimeout     = "timeout"
	errorConflict    = "conflict"
	errorTooLarge    = "too_large"
)

// workflowState is the server's part of the workflow wiring.
type workflowState struct {
	stop     chan struct{} // closed when the server shuts down: ends event streams
	stopOnce sync.Once
}

// workflowHooks adds the workflow service's LoadState to the hooks given in the Config.
func workflowHooks(h shareddoc.Hooks, wf *Workflows) shareddoc.Hooks {
	if wf == nil || wf.Service == nil {
		return h
	}
	prev, load := h.LoadState, wf.Service.LoadState
	h.LoadState = func(ctx context.Context, name string, doc *crdt.Doc) error {
		if prev != nil {
			if err := prev(ctx, name, doc); err != nil {
				return err
			}
		}
		if err := load(ctx, name, doc); err != nil {
			if errors.Is(err, workflow.ErrNotFound) {
				// Tell the session it is gone for good, so the client stops reconnecting.
				return fmt.Errorf("%w: %w", shareddoc.ErrNotFound, err)
			}
			return err
		}
		return nil
	}
	return h
}

// initWorkflows runs in New once s.http exists.
func (s *Server) initWorkflows() {
	s.wf.stop = make(chan struct{})
	// http.Server.Shutdown waits for active requests; an event stream never ends by itself.
	s.http.RegisterOnShutdown(func() { s.wf.stopOnce.Do(func() { close(s.wf.stop) }) })
}

// wireSession gives a new WebSocket session the application channel.
func (s *Server) wireSession(c *session.Client, r *http.Request) {
	c.SetRPC(workflowRPC{s})
	if v := r.URL.Query().Get("events"); v == "1" || v == "true" {
		c.EnableEvents()
	}
}

func (s *Server) workflowRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/workflows", s.handleCreateWorkflow)
	mux.HandleFunc("GET /api/workflows/{id}", s.handleGetWorkflow)
	mux.HandleFunc("PUT /api/workflows/{id}", s.handlePutWorkflow)
	mux.HandleFunc("DELETE /api/workflows/{id}", s.handleDeleteWorkflow)
	mux.HandleFunc("GET /api/workflows/{id}/snapshots", s.handleWorkflowSnapshots)          // workflow_snapshots.go
	mux.HandleFunc("GET /api/workflows/{id}/snapshots/{version}", s.handleWorkflowSnapshot) // workflow_snapshots.go
	mux.HandleFunc("POST /api/workflows/{id}/save", s.handleSaveWorkflow)
	mux.HandleFunc("POST /api/workflows/{id}/reset", s.handleResetWorkflow)
	mux.HandleFunc("GET /api/events", s.handleEvents)
}

// --- the application channel ------------------------------------------------------------------

// workflowRPC serves save_workflow and reset_workflow for the session's own document.
type workflowRPC struct{ s *Server }

func (h workflowRPC) ServeRPC(ctx context.Context, call session.RPCCall) (any, *session.RPCError) {
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
	wf := h.s.cfg.Workflows
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
	res, err := h.s.saveWorkflow(ctx, wf, live, id, call.Session.User)
	if err != nil {
		return nil, rpcError(err)
	}
	h.s.announceSaved(ctx, call.Doc, call.Session.ID, res)
	return res, nil
}

// announceSaved sends workflow_saved to the sessions of doc that receive events, but except.
func (s *Server) announceSaved(ctx context.Context, doc *shareddoc.Doc, except string, res *workflow.SaveResult) {
	payload := struct {
		LockVersion int                `json:"lock_version"`
		Workflow    *workflow.Workflow `json:"workflow"`
	}{res.LockVersion, res.Workflow}
	if err := session.BroadcastEvent(ctx, doc, except, EventWorkflowSaved, payload); err != nil {
		s.log.Warn("workflow_saved event not sent", "doc", doc.Name(), "err", err)
	}
	s.versionAfterSave(ctx, doc.Name(), res.LockVersion, "")
}

const unavailableMsg = "workflows need PostgreSQL: start the server with --database-url"

// rpcError turns a workflow.Error (or anything else) into the error of a reply.
func rpcError(err error) *session.RPCError {
	var we *workflow.Error
	if errors.As(err, &we) {
		return &session.RPCError{Type: we.Type, Errors: we.Errors}
	}
	return session.NewRPCError(workflow.ErrorInternal, "internal error")
}

// --- HTTP ------------------------------------------------------------------------------------------

// Reply bodies of the workflow routes are those of the application channel without the id:
// {"ok": true, "result": ...} or {"ok": false, "error": {"type": ..., "errors": ...}}.
type apiReply struct {
	OK     bool              `json:"ok"`
	Result any               `json:"result,omitempty"`
	Error  *session.RPCError `json:"error,omitempty"`
}

func writeResult(w http.ResponseWriter, status int, result any) {
	writeJSON(w, status, apiReply{OK: true, Result: result})
}

func writeAPIError(w http.ResponseWriter, e *session.RPCError) {
	writeJSON(w, statusOf(e.Type), apiReply{Error: e})
}

func statusOf(typ string) int {
	switch typ {
	case workflow.ErrorValidation, workflow.ErrorDeserialization:
		return http.StatusUnprocessableEntity
	case workflow.ErrorOptimisticLock, errorConflict:
		return http.StatusConflict
	case workflow.ErrorDeleted:
		return http.StatusGone
	case workflow.ErrorUnauthorized:
		return http.StatusForbidden
	case errorNotFound:
		return http.StatusNotFound
	case errorBadRequest:
		return http.StatusBadRequest
	case errorTooLarge:
		return http.StatusRequestEntityTooLarge
	case errorUnavailable:
		return http.StatusServiceUnavailable
	case errorTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// workflows returns the workflow wiring, or answers 503 and returns nil.
func (s *Server) workflows(w http.ResponseWriter) *Workflows {
	if s.cfg.Workflows == nil {
		writeAPIError(w, session.NewRPCError(errorUnavailable, unavailableMsg))
		return nil
	}
	return s.cfg.Workflows
}

// authorizeWorkflow checks that the request may act on workflow id's document with need
// (answering 401/403 itself when not, trust.go) and returns who the workflow service is told
// made it: the token's subject, or on a server without authentication the ?user= label ("api"
// by default).
//
// External writes (create, replace, delete) need an admin principal, as the admin API does; an
// open server has no admins, so there they are as open as everything else.
func (s *Server) authorizeWorkflow(w http.ResponseWriter, r *http.Request, id string, need auth.Permission, src tokenSource) (string, bool) {
	if need == auth.Admin && s.Open() {
		need = auth.Write
	}
	p, ok := s.authorizeDoc(w, r, workflow.DocName(id), need, src)
	if !ok {
		return "", false
	}
	if !s.Open() {
		return p.UserID, true
	}
	if u := r.URL.Query().Get("user"); u != "" {
		return u, true
	}
	return "api", true
}

// workflowTarget is the common start of the /api/workflows/{id} handlers: workflows enabled,
// a valid id in the path, and the request allowed need on it. It answers the request itself when
// any of that fails.
func (s *Server) workflowTarget(w http.ResponseWriter, r *http.Request, need auth.Permission) (wf *Workflows, id, user string, ok bool) {
	if wf = s.workflows(w); wf == nil {
		return nil, "", "", false
	}
	if id, ok = pathID(w, r); !ok {
		return nil, "", "", false
	}
	if user, ok = s.authorizeWorkflow(w, r, id, need, tokenHeader); !ok {
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

// readBody reads a JSON request body of at most limit bytes into v; an empty body leaves v as
// it is unless required. Callers authenticate first. A body over the limit is answered 413, one
// that is not the expected JSON 400.
//
// Nesting depth: encoding/json refuses input nested deeper than 10,000 levels while it scans,
// before decoding anything, and without recursion of its own; every body here decodes into
// typed structs of fixed depth (no `any`, no json.RawMessage that is walked later), so a deeply
// nested body costs a bounded scan of at most limit bytes and nothing further down sees it.
// A lower explicit limit would add nothing; TestJSONBodyDepth holds both facts.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, v any, limit int64, required bool) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.guard.bodyTooLarge.Add(1)
			writeAPIError(w, session.NewRPCError(errorTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit)))
			return false
		}
		writeAPIError(w, session.NewRPCError(errorBadRequest, "request body: "+err.Error()))
		return false
	}
	if len(body) == 0 && !required {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeAPIError(w, session.NewRPCError(errorBadRequest, "request body is not the expected JSON: "+err.Error()))
		return false
	}
	return true
}

// workflowFailed answers with err, a *workflow.Error or another failure.
func (s *Server) workflowFailed(w http.ResponseWriter, op string, err error) {
	var we *workflow.Error
	if !errors.As(err, &we) {
		s.log.Error("workflow "+op, "err", err)
	}
	writeAPIError(w, rpcError(err))
}

// liveDoc returns the open document of workflow id, or nil.
func (s *Server) liveDoc(id string) workflow.LiveDoc {
	return workflow.SharedDoc(s.reg.Get(workflow.DocName(id)))
}

func (s *Server) handleCreateWorkflow(w http.ResponseWriter, r *http.Request) {
	wf := s.workflows(w)
	if wf == nil {
		return
	}
	// The token first, the body after: creating is an admin write whatever the id, so the id
	// the body may name is not needed to decide, and nobody without a token makes the server
	// read (let alone parse) megabytes of JSON.
	id := workflow.NewID()
	user, ok := s.authorizeWorkflow(w, r, id, auth.Admin, tokenHeader)
	if !ok {
		return
	}
	var in workflow.Workflow
	if !s.readBody(w, r, &in, s.cfg.Limits.MaxWorkflowBodyBytes, true) {
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
			s.workflowFailed(w, "create", err)
			return
		}
	}
	if in.ID == "" {
		in.ID = id
	}
	in.DeletedAt = nil
	stored, err := wf.Service.ApplyExternal(r.Context(), nil, &in, user)
	if err != nil {
		s.workflowFailed(w, "create", err)
		return
	}
	w.Header().Set("Location", "/api/workflows/"+stored.ID)
	writeResult(w, http.StatusCreated, stored)
}

func (s *Server) handleGetWorkflow(w http.ResponseWriter, r *http.Request) {
	wf, id, _, ok := s.workflowTarget(w, r, auth.Read)
	if !ok {
		return
	}
	got, err := wf.Repo.Get(r.Context(), id)
	switch {
	case errors.Is(err, workflow.ErrNotFound):
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
	case err != nil:
		s.workflowFailed(w, "get", err)
	case got.DeletedAt != nil:
		writeAPIError(w, session.NewRPCError(workflow.ErrorDeleted, "the workflow has been deleted"))
	default:
		writeResult(w, http.StatusOK, got)
	}
}

func (s *Server) handlePutWorkflow(w http.ResponseWriter, r *http.Request) {
	wf, id, user, ok := s.workflowTarget(w, r, auth.Admin)
	if !ok {
		return
	}
	var in struct {
		workflow.Workflow
		LockVersion *int `json:"lock_version"`
	}
	if !s.readBody(w, r, &in, s.cfg.Limits.MaxWorkflowBodyBytes, true) {
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
			s.workflowFailed(w, "replace", err)
		}
		return
	}
	stored, err := wf.Service.ApplyExternalLookup(r.Context(), func() workflow.LiveDoc { return s.liveDoc(id) }, &next, user)
	if err != nil {
		s.workflowFailed(w, "replace", err)
		return
	}
	writeResult(w, http.StatusOK, stored)
}

// handleDeleteWorkflow soft-deletes; ?lock_version=N makes it conditional on that version.
func (s *Server) handleDeleteWorkflow(w http.ResponseWriter, r *http.Request) {
	wf, id, user, ok := s.workflowTarget(w, r, auth.Admin)
	if !ok {
		return
	}
	cur, err := wf.Repo.Get(r.Context(), id)
	switch {
	case errors.Is(err, workflow.ErrNotFound):
		writeAPIError(w, session.NewRPCError(errorNotFound, fmt.Sprintf("no workflow %s", id)))
		return
	case err != nil:
		s.workflowFailed(w, "delete", err)
		return
	case cur.DeletedAt != nil:
		writeAPIError(w, session.NewRPCError(workflow.ErrorDeleted, "the workflow has been deleted"))
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
	stored, err := wf.Service.ApplyExternalLookup(r.Context(), func() workflow.LiveDoc { return s.liveDoc(id) }, del, user)
	if err != nil {
		s.workflowFailed(w, "delete", err)
		return
	}
	writeResult(w, http.StatusOK, stored)
}

func (s *Server) handleSaveWorkflow(w http.ResponseWriter, r *http.Request) {
	s.workflowDocOp(w, r, MethodSaveWorkflow)
}

func (s *Server) handleResetWorkflow(w http.ResponseWriter, r *http.Request) {
	s.workflowDocOp(w, r, MethodResetWorkflow)
}

// workflowDocOp saves or resets the workflow's document, opening it if it is not loaded. With
// {"after": <base64 state vector>} it first waits (up to AfterTimeout) until the document
// contains that state: a client that just sent edits over its WebSocket names its own state
// so the save includes them.
func (s *Server) workflowDocOp(w http.ResponseWriter, r *http.Request, method string) {
	wf, id, user, ok := s.workflowTarget(w, r, auth.Write)
	if !ok {
		return
	}
	var body struct {
		After string `json:"after"`
	}
	if !s.readBody(w, r, &body, maxJSONBody, false) {
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
	doc, release, err := s.openDoc(ctx, workflow.DocName(id))
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
			s.workflowFailed(w, "open document", err)
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
			s.workflowFailed(w, "reset", err)
			return
		}
		writeResult(w, http.StatusOK, res)
		return
	}
	res, err := s.saveWorkflow(ctx, wf, live, id, user)
	if err != nil {
		s.workflowFailed(w, "save", err)
		return
	}
	s.announceSaved(ctx, doc, "", res)
	writeResult(w, http.StatusOK, res)
}

// openDoc loads the document (if it is not loaded) and keeps it loaded until release, without a
// session (shareddoc.Registry.Hold).
func (s *Server) openDoc(ctx context.Context, name string) (*shareddoc.Doc, func(), error) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		return nil, nil, shareddoc.ErrClosed
	}
	return s.reg.Hold(ctx, name)
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
