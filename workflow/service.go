package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/pubsub"
)

// LiveDoc is an open workflow document as the Service needs it. Implementations run fn on the
// goroutine that owns the document (shareddoc: the document actor; see SharedDoc) and return
// fn's error, or their own if fn could not run (ctx ended, document closed).
type LiveDoc interface {
	// Read runs fn, which must not change the document.
	Read(ctx context.Context, fn func(*crdt.Doc) error) error
	// Update runs fn in one transaction; what it changes reaches every client and the store.
	Update(ctx context.Context, fn func(*crdt.Doc) error) error
}

// Types of Error, as clients see them.
const (
	ErrorValidation      = "validation_error"
	ErrorOptimisticLock  = "optimistic_lock_error"
	ErrorDeleted         = "workflow_deleted"
	ErrorDeserialization = "deserialization_error"
	ErrorUnauthorized    = "unauthorized"
	ErrorInternal        = "internal_error"
)

// Error is what Service methods return when an operation fails, ready to send as JSON:
// {"type": "validation_error", "errors": {...}}. For validation errors, Errors is keyed as
// ErrorsByID (and the same is written into the document's "errors" map when the document was
// being saved); for the others it holds {"base": ["message"]}. errors.Is matches the
// underlying sentinel (ErrValidation, ErrConflict, ErrDeleted, ErrDeserialization, ...).
type Error struct {
	Type   string         `json:"type"`
	Errors map[string]any `json:"errors"`
	err    error
}

func (e *Error) Error() string {
	if e.err != nil {
		return e.Type + ": " + e.err.Error()
	}
	return e.Type
}

func (e *Error) Unwrap() error { return e.err }

func newError(typ string, err error, msg string) *Error {
	return &Error{Type: typ, Errors: map[string]any{"base": []any{msg}}, err: err}
}

// ErrUnauthorized is wrapped by the Error of a refused operation when Authorize returned nil
// error details.
var ErrUnauthorized = errors.New("workflow: unauthorized")

// Actions passed to Config.Authorize.
const (
	ActionSave  = "save"
	ActionReset = "reset"
	ActionWrite = "write" // ApplyExternal
)

// Topics the service publishes on (pubsub events saved, reset, updated, deleted).
const TopicWorkflows = "workflows"

// Topic is the topic of one workflow's events.
func Topic(id string) string { return "workflow:" + id }

// Config configures a Service.
type Config struct {
	// Repo stores the workflows. Required.
	Repo *Repo
	// Broker receives an event on TopicWorkflows and Topic(id) after every save that changed
	// something, every reset, external write and delete. Nil means no events.
	Broker *pubsub.Broker
	// Logger logs internal errors. Nil means slog.Default().
	Logger *slog.Logger
	// Authorize decides whether user may do action (ActionSave, ...) on workflow id; a non-nil
	// error refuses it with an "unauthorized" Error. Nil allows everything.
	Authorize func(ctx context.Context, user, id, action string) error
	// Now gives the time reported as saved_at. Nil means time.Now.
	Now func() time.Time
}

// Service saves workflow documents into the tables and resets them from there. Operations on the
// same workflow id run one at a time (a per-id lock, taken before the document is read and held
// until the outcome is written back); different ids run in parallel. Safe for concurrent use.
type Service struct {
	cfg   Config
	log   *slog.Logger
	locks keyedLock
}

// NewService returns a service.
func NewService(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger, locks: keyedLock{m: map[string]*lockEntry{}}}
}

// SaveResult is the reply to a successful save.
type SaveResult struct {
	SavedAt     time.Time `json:"saved_at"`
	LockVersion int       `json:"lock_version"`
	Workflow    *Workflow `json:"workflow"`
}

// ResetResult is the reply to a successful reset.
type ResetResult struct {
	LockVersion int    `json:"lock_version"`
	WorkflowID  string `json:"workflow_id"`
}

// Save stores what the document of workflow id describes. It reads the document, validates it,
// and replaces the stored workflow expecting the document's workflow.lock_version. When nothing
// differs from the tables, nothing is written (no new lock_version, no snapshot, no event) and
// the result carries the current version. On success the new lock_version and the stored
// triggers' enabled flags are written back into the document and its errors cleared. On failure
// the error is an *Error: validation_error (also written into the document's errors),
// optimistic_lock_error, workflow_deleted, deserialization_error (the document is left as it
// is), unauthorized or internal_error.
func (s *Service) Save(ctx context.Context, live LiveDoc, id, user string) (*SaveResult, error) {
	if err := s.authorize(ctx, user, id, ActionSave); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return nil, s.internal("save", id, err)
	}
	defer unlock()

	var w *Workflow
	err = live.Read(ctx, func(doc *crdt.Doc) error {
		var err error
		w, err = ReadDoc(doc)
		return err
	})
	switch {
	case errors.Is(err, ErrDeserialization):
		return nil, newError(ErrorDeserialization, err, err.Error())
	case err != nil:
		return nil, s.internal("save: read document", id, err)
	case w.ID != id:
		err := shapeErr("workflow.id", "%q is not the document's workflow %s", w.ID, id)
		return nil, newError(ErrorDeserialization, err, err.Error())
	}
	expected := w.LockVersion
	w.Normalize()
	if v := Validate(w); v != nil {
		return nil, s.validationFailed(ctx, live, w, v)
	}
	stored, changed, err := s.cfg.Repo.Replace(ctx, w, expected)
	var v ValidationErrors
	switch {
	case errors.As(err, &v):
		return nil, s.validationFailed(ctx, live, w, v)
	case errors.Is(err, ErrConflict):
		return nil, newError(ErrorOptimisticLock, err, "the workflow was changed by someone else since this version; reset to see their changes")
	case errors.Is(err, ErrDeleted), errors.Is(err, ErrNotFound):
		return nil, newError(ErrorDeleted, err, "the workflow has been deleted")
	case err != nil:
		return nil, s.internal("save", id, err)
	}
	if err := live.Update(ctx, func(doc *crdt.Doc) error { return applySaved(doc, stored) }); err != nil {
		// The tables have the new version; the document will learn it on its next open
		// (RefreshMeta) or reset.
		return nil, s.internal("save: update document", id, err)
	}
	if changed {
		s.publish(pubsub.EventSaved, stored)
	}
	return &SaveResult{SavedAt: s.cfg.Now().UTC(), LockVersion: stored.LockVersion, Workflow: stored}, nil
}

// validationFailed writes errs into the document and returns the validation Error.
func (s *Service) validationFailed(ctx context.Context, live LiveDoc, w *Workflow, errs ValidationErrors) error {
	if err := live.Update(ctx, func(doc *crdt.Doc) error { return WriteErrors(doc, w, errs) }); err != nil {
		s.log.Warn("workflow: write validation errors into document", "workflow", w.ID, "err", err)
	}
	return &Error{Type: ErrorValidation, Errors: ErrorsByID(w, errs), err: errs}
}

// applySaved writes the outcome of a save into the document: the stored lock_version, the
// stored triggers' enabled flags, no errors.
func applySaved(doc *crdt.Doc, stored *Workflow) error {
	r, err := getRoots(doc)
	if err != nil {
		return err
	}
	enabled := make(map[string]bool, len(stored.Triggers))
	for _, t := range stored.Triggers {
		enabled[t.ID] = t.Enabled
	}
	return transact(doc, func() error {
		if err := setIfChanged(r.workflow, "lock_version", stored.LockVersion); err != nil {
			return err
		}
		for _, v := range r.triggers.ToArray() {
			m, ok := v.(*crdt.Map)
			if !ok {
				continue
			}
			id, _ := m.Get("id")
			idStr, _ := id.(string)
			if e, ok := enabled[idStr]; ok {
				if err := setIfChanged(m, "enabled", e); err != nil {
					return err
				}
			}
		}
		clearMap(r.errors)
		return nil
	})
}

// Reset makes the document of workflow id describe the stored workflow again, dropping unsaved
// edits. Errors: workflow_deleted (no such workflow, or deleted), unauthorized, internal_error.
func (s *Service) Reset(ctx context.Context, live LiveDoc, id, user string) (*ResetResult, error) {
	if err := s.authorize(ctx, user, id, ActionReset); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, id)
	if err != nil {
		return nil, s.internal("reset", id, err)
	}
	defer unlock()
	w, err := s.cfg.Repo.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, newError(ErrorDeleted, err, "the workflow does not exist")
	case err != nil:
		return nil, s.internal("reset", id, err)
	case w.DeletedAt != nil:
		return nil, newError(ErrorDeleted, ErrDeleted, "the workflow has been deleted")
	}
	if err := live.Update(ctx, func(doc *crdt.Doc) error { return ResetDoc(doc, w) }); err != nil {
		if errors.Is(err, ErrDeserialization) {
			return nil, newError(ErrorDeserialization, err, err.Error())
		}
		return nil, s.internal("reset: update document", id, err)
	}
	s.publish(pubsub.EventReset, w)
	return &ResetResult{LockVersion: w.LockVersion, WorkflowID: w.ID}, nil
}

// ApplyExternal writes a workflow that comes from outside its document (the HTTP API, an
// import) and then reconciles the open document, if any (live may be nil). A workflow id that
// does not exist is created (w.LockVersion is ignored); an existing one is replaced, or
// soft-deleted if w.DeletedAt is set, expecting w.LockVersion. It returns the workflow as
// stored. Errors are *Error: validation_error (not written into the document, which did not
// cause it), optimistic_lock_error, workflow_deleted, unauthorized, internal_error.
func (s *Service) ApplyExternal(ctx context.Context, live LiveDoc, w *Workflow, user string) (*Workflow, error) {
	return s.ApplyExternalLookup(ctx, func() LiveDoc { return live }, w, user)
}

// ApplyExternalLookup is ApplyExternal with the open document looked up after the tables were
// written. A document that opens between an earlier lookup and the write would load the old
// tables and never be reconciled; looked up afterwards, it is either open (and reconciled, behind
// its load) or opens later and loads the new tables.
func (s *Service) ApplyExternalLookup(ctx context.Context, lookup func() LiveDoc, w *Workflow, user string) (*Workflow, error) {
	if w.ID == "" {
		w = w.Clone()
		w.ID = NewID()
	}
	if err := s.authorize(ctx, user, w.ID, ActionWrite); err != nil {
		return nil, err
	}
	unlock, err := s.locks.lock(ctx, w.ID)
	if err != nil {
		return nil, s.internal("write", w.ID, err)
	}
	defer unlock()

	event := pubsub.EventUpdated
	changed := true
	var stored *Workflow
	_, err = s.cfg.Repo.Get(ctx, w.ID)
	switch {
	case errors.Is(err, ErrNotFound) && w.DeletedAt == nil:
		stored, err = s.cfg.Repo.Create(ctx, w)
	case err != nil:
	case w.DeletedAt != nil:
		event = pubsub.EventDeleted
		stored, err = s.cfg.Repo.SoftDelete(ctx, w.ID, w.LockVersion)
	default:
		stored, changed, err = s.cfg.Repo.Replace(ctx, w, w.LockVersion)
	}
	var v ValidationErrors
	switch {
	case errors.As(err, &v):
		return nil, &Error{Type: ErrorValidation, Errors: ErrorsByID(w, v), err: err}
	case errors.Is(err, ErrConflict):
		return nil, newError(ErrorOptimisticLock, err, "the workflow was changed by someone else since this version")
	case errors.Is(err, ErrDeleted), errors.Is(err, ErrNotFound):
		return nil, newError(ErrorDeleted, err, "the workflow has been deleted")
	case err != nil:
		return nil, s.internal("write", w.ID, err)
	}
	if live := lookup(); live != nil && changed {
		if err := live.Update(ctx, func(doc *crdt.Doc) error { return ReconcileDoc(doc, stored) }); err != nil {
			// The tables are written; the document catches up when it is next opened.
			s.log.Warn("workflow: reconcile open document", "workflow", w.ID, "err", err)
		}
	}
	if changed {
		s.publish(event, stored)
	}
	return stored, nil
}

// LoadState fills a workflow document from the tables when it is opened; its signature is
// shareddoc.Hooks.LoadState's. Documents whose name is not "workflow:<uuid>" are left alone. A
// document without content is built from the tables; one with stored content is refreshed
// (RefreshMeta). A workflow id the tables do not know is an error wrapping ErrNotFound.
func (s *Service) LoadState(ctx context.Context, name string, doc *crdt.Doc) error {
	id, ok := ParseDocName(name)
	if !ok {
		return nil
	}
	w, err := s.cfg.Repo.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	if err := RefreshMeta(doc, w); err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	return nil
}

func (s *Service) authorize(ctx context.Context, user, id, action string) error {
	if s.cfg.Authorize == nil {
		return nil
	}
	if err := s.cfg.Authorize(ctx, user, id, action); err != nil {
		return &Error{Type: ErrorUnauthorized, Errors: map[string]any{"base": []any{err.Error()}},
			err: fmt.Errorf("%w: %w", ErrUnauthorized, err)}
	}
	return nil
}

func (s *Service) internal(op, id string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Info("workflow: "+op+" abandoned", "workflow", id, "err", err)
	} else {
		s.log.Error("workflow: "+op+" failed", "workflow", id, "err", err)
	}
	return newError(ErrorInternal, err, "internal error")
}

func (s *Service) publish(typ string, w *Workflow) {
	if s.cfg.Broker == nil {
		return
	}
	ev := pubsub.Event{Type: typ, ID: w.ID, LockVersion: w.LockVersion}
	s.cfg.Broker.Publish(TopicWorkflows, ev)
	s.cfg.Broker.Publish(Topic(w.ID), ev)
}

// keyedLock is a set of mutexes by key that can be waited for with a context. Entries exist
// only while someone holds or waits for them.
type keyedLock struct {
	mu sync.Mutex
	m  map[string]*lockEntry
}

type lockEntry struct {
	sem  chan struct{} // holds one token while locked
	refs int           // holders and waiters
}

func (k *keyedLock) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	e := k.m[key]
	if e == nil {
		e = &lockEntry{sem: make(chan struct{}, 1)}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
	}
	select {
	case e.sem <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-e.sem
				release()
			})
		}, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
