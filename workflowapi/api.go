package workflowapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
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
	// registry's LoadState hook (after any hook given in the server's Config.Hooks).
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
	// (Config.MaxWorkflowBodyBytes): save and reset take {"after": <state vector>}.
	maxJSONBody = 1 << 20
)

// RPC methods of workflow documents and the server event of a save.
const (
	MethodSaveWorkflow  = "save_workflow"
	MethodResetWorkflow = "reset_workflow"
	EventWorkflowSaved  = "workflow_saved"
)

// Auth is what the API needs from the server's authentication. Both methods answer the request
// themselves (401, 403, 503) when they return false.
type Auth interface {
	// Open reports whether the server runs without authentication: everyone may read and write
	// every document, and there are no admins.
	Open() bool
	// AuthorizeDoc checks that the request's principal has at least need on doc. The token comes
	// from the Authorization header only, or also from ?token= when tokenInQuery (EventSource
	// streams, which cannot set headers).
	AuthorizeDoc(w http.ResponseWriter, r *http.Request, doc string, need auth.Permission, tokenInQuery bool) (*auth.Principal, bool)
	// RequireAdmin checks that the request carries an admin token (header only).
	RequireAdmin(w http.ResponseWriter, r *http.Request) bool
}

// Docs is what the API needs from the document registry.
type Docs interface {
	// Get returns the loaded document of name, or nil.
	Get(name string) *shareddoc.Doc
	// Hold loads the document (if it is not loaded) and keeps it loaded until release, without
	// a session; shareddoc.ErrClosed once the server is shutting down.
	Hold(ctx context.Context, name string) (doc *shareddoc.Doc, release func(), err error)
}

// Locker serializes the saves of one workflow across processes (store.Postgres: an advisory
// lock). lock_version stays the guard against lost updates; the lock only keeps two nodes from
// validating and writing the same workflow at the same moment.
type Locker interface {
	LockWorkflow(ctx context.Context, id string) (unlock func(), err error)
}

// Metrics are the server's counters this API moves (the server owns and exports them). A nil
// field is not counted.
type Metrics struct {
	BodyTooLarge *atomic.Int64 // requests answered 413
	EventStreams *atomic.Int64 // open /api/events streams
	EventDropped *atomic.Int64 // event streams ended because a write did not finish in time
}

func count(c *atomic.Int64, delta int64) {
	if c != nil {
		c.Add(delta)
	}
}

// Config builds an API. Zero values mean the defaults noted per field.
type Config struct {
	// Workflows is the workflow domain. Nil: every route answers 503 and every request
	// "unavailable".
	Workflows *Workflows
	// Auth decides who may do what. Required.
	Auth Auth
	// Docs is the document registry. Required.
	Docs Docs
	// Locker takes the cross-process lock of a save. Nil means saves take no lock (one process).
	Locker Locker
	// MaxWorkflowBodyBytes bounds the body of a create or replace; a bigger one is answered 413.
	// Other bodies are bounded by maxJSONBody (1 MiB). Zero means maxJSONBody too; the server
	// passes its Limits.MaxWorkflowBodyBytes.
	MaxWorkflowBodyBytes int64
	// Metrics are the counters to move.
	Metrics Metrics
	// Remote names a request's client in logs (behind a trusted proxy, the proxied address). Nil
	// means r.RemoteAddr.
	Remote func(r *http.Request) string
	// AfterSave runs after every successful save of a workflow document (the server stores an
	// automatic version). Nil means nothing.
	AfterSave func(ctx context.Context, doc string, lockVersion int)
	// Logger receives the logs. Nil means discard.
	Logger *slog.Logger
}

// API serves the workflow routes and requests. Its methods are safe for concurrent use.
type API struct {
	cfg      Config
	log      *slog.Logger
	stop     chan struct{} // closed by Stop: ends event streams
	stopOnce sync.Once
}

// New returns the API of cfg.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxWorkflowBodyBytes <= 0 {
		cfg.MaxWorkflowBodyBytes = maxJSONBody
	}
	if cfg.Remote == nil {
		cfg.Remote = func(r *http.Request) string { return r.RemoteAddr }
	}
	return &API{cfg: cfg, log: cfg.Logger, stop: make(chan struct{})}
}

// Register mounts the routes on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/workflows", a.handleCreate)                           // crud.go
	mux.HandleFunc("GET /api/workflows/{id}", a.handleGet)                          // crud.go
	mux.HandleFunc("PUT /api/workflows/{id}", a.handlePut)                          // crud.go
	mux.HandleFunc("DELETE /api/workflows/{id}", a.handleDelete)                    // crud.go
	mux.HandleFunc("GET /api/workflows/{id}/snapshots", a.handleSnapshots)          // snapshots.go
	mux.HandleFunc("GET /api/workflows/{id}/snapshots/{version}", a.handleSnapshot) // snapshots.go
	mux.HandleFunc("POST /api/workflows/{id}/save", a.handleSave)                   // docops.go
	mux.HandleFunc("POST /api/workflows/{id}/reset", a.handleReset)                 // docops.go
	mux.HandleFunc("GET /api/events", a.handleEvents)                               // events.go
}

// Stop ends the open event streams and makes new ones end at once. http.Server.Shutdown waits
// for active requests and an event stream never ends by itself, so the server calls Stop from
// its RegisterOnShutdown. Calling it again does nothing.
func (a *API) Stop() { a.stopOnce.Do(func() { close(a.stop) }) }

// WireSession gives a new WebSocket session the application channel; ?events=1 (or true) makes
// it receive server events before its first request.
func (a *API) WireSession(c *session.Client, r *http.Request) {
	c.SetRPC(a)
	if v := r.URL.Query().Get("events"); v == "1" || v == "true" {
		c.EnableEvents()
	}
}

// Hooks adds the workflow service's LoadState to h: workflow documents are built from the
// tables the first time they open. Without workflows it returns h.
func Hooks(h shareddoc.Hooks, wf *Workflows) shareddoc.Hooks {
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
