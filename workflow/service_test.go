package workflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/pubsub"
	"github.com/ysync/ysync/workflow"
)

// fakeLive is a LiveDoc over a plain document guarded by a mutex (the actor's stand-in).
type fakeLive struct {
	mu  sync.Mutex
	doc *crdt.Doc
}

func (f *fakeLive) Read(_ context.Context, fn func(*crdt.Doc) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f.doc)
}

func (f *fakeLive) Update(_ context.Context, fn func(*crdt.Doc) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	f.doc.Transact(func(*crdt.Transaction) { err = fn(f.doc) }, nil)
	return err
}

// edit changes the document like a client would.
func (f *fakeLive) edit(fn func(doc *crdt.Doc)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.doc.Transact(func(*crdt.Transaction) { fn(f.doc) }, nil)
}

func (f *fakeLive) read(t *testing.T) *workflow.Workflow {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	w, err := workflow.ReadDoc(f.doc)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type env struct {
	repo   *workflow.Repo
	svc    *workflow.Service
	broker *pubsub.Broker
	wf     *workflow.Workflow // as created
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{repo: newRepo(t), broker: pubsub.New(16)}
	t.Cleanup(e.broker.Close)
	e.svc = workflow.NewService(workflow.Config{Repo: e.repo, Broker: e.broker})
	var err error
	if e.wf, err = e.repo.Create(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	return e
}

// open loads the workflow's document as the server does on first open.
func (e *env) open(t *testing.T) *fakeLive {
	t.Helper()
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := e.svc.LoadState(context.Background(), workflow.DocName(e.wf.ID), doc); err != nil {
		t.Fatal(err)
	}
	return &fakeLive{doc: doc}
}

func job(doc *crdt.Doc, i int) *crdt.Map {
	v, _ := doc.GetArray("jobs").Get(i)
	return v.(*crdt.Map)
}

func body(doc *crdt.Doc, i int) *crdt.Text {
	v, _ := job(doc, i).Get("body")
	return v.(*crdt.Text)
}

func wantType(t *testing.T, err error, typ string) *workflow.Error {
	t.Helper()
	var we *workflow.Error
	if !errors.As(err, &we) || we.Type != typ {
		t.Fatalf("error = %v, want *workflow.Error of type %s", err, typ)
	}
	return we
}

func noEvent(t *testing.T, ch <-chan pubsub.Event) {
	t.Helper()
	select {
	case ev := <-ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func TestSaveWithoutEditsChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	events, cancel := e.broker.Subscribe(workflow.TopicWorkflows)
	defer cancel()
	before := state(t, live.doc)
	n, _ := countUpdates(live.doc, func() {
		res, err := e.svc.Save(ctx, live, e.wf.ID, "u")
		if err != nil || res.LockVersion != 0 {
			t.Fatalf("Save = %+v, %v; want v0", res, err)
		}
	})
	if n != 0 || !bytes.Equal(before, state(t, live.doc)) {
		t.Fatalf("a save without edits changed the document (%d updates)", n)
	}
	if vs, _ := e.repo.SnapshotVersions(ctx, e.wf.ID); !slices.Equal(vs, []int{0}) {
		t.Fatalf("snapshots = %v", vs)
	}
	noEvent(t, events)
}

func TestSaveEdits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	all, cancelAll := e.broker.Subscribe(workflow.TopicWorkflows)
	defer cancelAll()
	one, cancelOne := e.broker.Subscribe(workflow.Topic(e.wf.ID))
	defer cancelOne()

	live.edit(func(doc *crdt.Doc) {
		job(doc, 1).Set("name", "transformed")
		body(doc, 0).Insert(0, "// v2\n", nil)
		doc.GetMap("workflow").Set("concurrency", nil)
	})
	res, err := e.svc.Save(ctx, live, e.wf.ID, "u")
	if err != nil {
		t.Fatal(err)
	}
	if res.LockVersion != 1 || res.Workflow.Jobs[1].Name != "transformed" || time.Since(res.SavedAt) > time.Minute {
		t.Fatalf("Save = %+v", res)
	}
	stored, _ := e.repo.Get(ctx, e.wf.ID)
	if stored.LockVersion != 1 || stored.Concurrency != nil || stored.Jobs[0].Body != "// v2\n"+e.wf.Jobs[0].Body {
		t.Fatalf("stored = %+v", stored)
	}
	doc := live.read(t)
	doc.ProjectID = stored.ProjectID
	mustEqual(t, doc, stored) // the document now says v1, like the tables
	for _, ch := range []<-chan pubsub.Event{all, one} {
		if ev := <-ch; ev != (pubsub.Event{Type: pubsub.EventSaved, ID: e.wf.ID, LockVersion: 1}) {
			t.Fatalf("event = %+v", ev)
		}
	}
	// Saving again: nothing to do.
	if res, err := e.svc.Save(ctx, live, e.wf.ID, "u"); err != nil || res.LockVersion != 1 {
		t.Fatalf("second Save = %+v, %v", res, err)
	}
	noEvent(t, all)
}

func TestSaveValidationError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	live.edit(func(doc *crdt.Doc) { job(doc, 2).Set("name", "bad/name") })
	_, err := e.svc.Save(ctx, live, e.wf.ID, "u")
	we := wantType(t, err, workflow.ErrorValidation)
	if !errors.Is(err, workflow.ErrValidation) {
		t.Fatal("not ErrValidation")
	}
	jobID := e.wf.Jobs[2].ID
	if msgs := we.Errors["jobs"].(map[string]any)[jobID].(map[string]any)["name"]; msgs == nil {
		t.Fatalf("errors = %#v", we.Errors)
	}
	js, _ := json.Marshal(we)
	var shape struct {
		Type   string                    `json:"type"`
		Errors map[string]map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(js, &shape); err != nil || shape.Type != "validation_error" || shape.Errors["jobs"][jobID] == nil {
		t.Fatalf("JSON %s", js)
	}
	// Written into the document, keyed by job id.
	live.mu.Lock()
	docErrs := live.doc.GetMap("errors").ToJSON()
	live.mu.Unlock()
	if docErrs["jobs"].(map[string]any)[jobID] == nil {
		t.Fatalf("document errors = %#v", docErrs)
	}
	if cur, _ := e.repo.Get(ctx, e.wf.ID); cur.LockVersion != 0 {
		t.Fatal("invalid save was stored")
	}
	// Fixed: saved, errors cleared.
	live.edit(func(doc *crdt.Doc) { job(doc, 2).Set("name", "good name") })
	if _, err := e.svc.Save(ctx, live, e.wf.ID, "u"); err != nil {
		t.Fatal(err)
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	if live.doc.GetMap("errors").Size() != 0 {
		t.Fatal("errors not cleared after a successful save")
	}
}

func TestSaveConflictAndDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b := e.open(t), e.open(t) // two copies at v0 (e.g. a stale replica)
	a.edit(func(doc *crdt.Doc) { doc.GetMap("workflow").Set("name", "from a") })
	b.edit(func(doc *crdt.Doc) { doc.GetMap("workflow").Set("name", "from b") })
	if _, err := e.svc.Save(ctx, a, e.wf.ID, "u"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Save(ctx, b, e.wf.ID, "u")
	wantType(t, err, workflow.ErrorOptimisticLock)
	if !errors.Is(err, workflow.ErrConflict) {
		t.Fatal("not ErrConflict")
	}
	// Reset brings b to the stored state; then it can save.
	res, err := e.svc.Reset(ctx, b, e.wf.ID, "u")
	if err != nil || res.LockVersion != 1 || res.WorkflowID != e.wf.ID {
		t.Fatalf("Reset = %+v, %v", res, err)
	}
	if got := b.read(t); got.Name != "from a" || got.LockVersion != 1 {
		t.Fatalf("after reset: %s v%d", got.Name, got.LockVersion)
	}

	// Deleted elsewhere: save and reset say so; the open document shows it.
	del := e.wf.Clone()
	del.LockVersion = 1
	now := time.Now()
	del.DeletedAt = &now
	events, cancel := e.broker.Subscribe(workflow.Topic(e.wf.ID))
	defer cancel()
	if _, err := e.svc.ApplyExternal(ctx, a, del, "admin"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != pubsub.EventDeleted || ev.LockVersion != 2 {
		t.Fatalf("event = %+v", ev)
	}
	if got := a.read(t); got.DeletedAt == nil || got.LockVersion != 2 {
		t.Fatalf("open document after delete: %+v", got)
	}
	a.edit(func(doc *crdt.Doc) { doc.GetMap("workflow").Set("name", "too late") })
	_, err = e.svc.Save(ctx, a, e.wf.ID, "u")
	wantType(t, err, workflow.ErrorDeleted)
	_, err = e.svc.Reset(ctx, a, e.wf.ID, "u")
	wantType(t, err, workflow.ErrorDeleted)
}

func TestSaveDeserializationError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	live.edit(func(doc *crdt.Doc) { doc.GetArray("edges").Push("not a map") })
	before := state(t, live.doc)
	_, err := e.svc.Save(ctx, live, e.wf.ID, "u")
	wantType(t, err, workflow.ErrorDeserialization)
	if !bytes.Equal(before, state(t, live.doc)) {
		t.Fatal("document changed by a failed save")
	}
	// A document of another workflow.
	other := &fakeLive{doc: crdt.NewDoc(crdt.DocOptions{})}
	w := normalized()
	if err := workflow.BuildDoc(other.doc, w); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Save(ctx, other, e.wf.ID, "u")
	wantType(t, err, workflow.ErrorDeserialization)
}

func TestConcurrentSaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)

	// Same document, two saves at once: one stores, the other finds nothing left to do.
	live := e.open(t)
	live.edit(func(doc *crdt.Doc) { doc.GetMap("workflow").Set("name", "shared edit") })
	results := make([]*workflow.SaveResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.svc.Save(ctx, live, e.wf.ID, "u")
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil || results[i].LockVersion != 1 {
			t.Fatalf("save %d = %+v, %v; want v1", i, results[i], errs[i])
		}
	}

	// Two copies with different edits: one wins, the other gets optimistic_lock_error.
	a, b := e.open(t), e.open(t)
	a.edit(func(doc *crdt.Doc) { body(doc, 0).Insert(0, "A", nil) })
	b.edit(func(doc *crdt.Doc) { body(doc, 0).Insert(0, "B", nil) })
	lives := []*fakeLive{a, b}
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.svc.Save(ctx, lives[i], e.wf.ID, "u")
		}()
	}
	wg.Wait()
	winner := -1
	for i := range 2 {
		if errs[i] == nil {
			if winner >= 0 {
				t.Fatal("both saves won")
			}
			winner = i
			continue
		}
		wantType(t, errs[i], workflow.ErrorOptimisticLock)
	}
	if winner < 0 {
		t.Fatalf("no save won: %v", errs)
	}
	stored, _ := e.repo.Get(ctx, e.wf.ID)
	got := lives[winner].read(t)
	got.ProjectID = stored.ProjectID
	if stored.LockVersion != 2 {
		t.Fatalf("stored v%d, want 2", stored.LockVersion)
	}
	mustEqual(t, got, stored)
	if vs, _ := e.repo.SnapshotVersions(ctx, e.wf.ID); !slices.Equal(vs, []int{0, 1, 2}) {
		t.Fatalf("snapshots = %v", vs)
	}
}

func TestApplyExternal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	bodyText := body(live.doc, 1)
	events, cancel := e.broker.Subscribe(workflow.TopicWorkflows)
	defer cancel()

	next := e.wf.Clone()
	next.Name = "changed by the API"
	next.Jobs[0].Body = "rewritten"
	next.Jobs = append(next.Jobs, workflow.Job{ID: workflow.NewID(), Name: "api job"})
	stored, err := e.svc.ApplyExternal(ctx, live, next, "api")
	if err != nil || stored.LockVersion != 1 {
		t.Fatalf("ApplyExternal = %+v, %v", stored, err)
	}
	got := live.read(t)
	got.ProjectID = stored.ProjectID
	mustEqual(t, got, stored)
	if body(live.doc, 1) != bodyText {
		t.Fatal("an unchanged job's Y.Text was replaced")
	}
	if ev := <-events; ev.Type != pubsub.EventUpdated || ev.LockVersion != 1 {
		t.Fatalf("event = %+v", ev)
	}
	// Stale version: refused, document untouched.
	before := state(t, live.doc)
	_, err = e.svc.ApplyExternal(ctx, live, next, "api") // next.LockVersion is 0
	wantType(t, err, workflow.ErrorOptimisticLock)
	if !bytes.Equal(before, state(t, live.doc)) {
		t.Fatal("refused write changed the document")
	}
	// Invalid.
	bad := stored.Clone()
	bad.Edges[0].TargetJobID = workflow.NewID()
	_, err = e.svc.ApplyExternal(ctx, nil, bad, "api")
	wantType(t, err, workflow.ErrorValidation)

	// Create (no open document).
	fresh := sample()
	created, err := e.svc.ApplyExternal(ctx, nil, fresh, "api")
	if err != nil || created.ID != fresh.ID || created.LockVersion != 0 {
		t.Fatalf("create = %+v, %v", created, err)
	}
	if ev := <-events; ev.Type != pubsub.EventUpdated || ev.ID != fresh.ID {
		t.Fatalf("event = %+v", ev)
	}
}

func TestLoadState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := e.svc.LoadState(ctx, "notes", doc); err != nil || len(state(t, doc)) > 2 {
		t.Fatalf("non-workflow document: %v", err)
	}
	if err := e.svc.LoadState(ctx, workflow.DocName(workflow.NewID()), doc); !errors.Is(err, workflow.ErrNotFound) {
		t.Fatalf("unknown workflow: %v, want ErrNotFound", err)
	}

	// Reopen from stored Yjs state after a save made elsewhere: rebuilt at the new version.
	live := e.open(t)
	saved := state(t, live.doc)
	other := e.open(t)
	other.edit(func(doc *crdt.Doc) { job(doc, 0).Set("name", "saved elsewhere") })
	if _, err := e.svc.Save(ctx, other, e.wf.ID, "u"); err != nil {
		t.Fatal(err)
	}
	reopened := crdt.NewDoc(crdt.DocOptions{})
	if err := crdt.ApplyUpdate(reopened, saved, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.LoadState(ctx, workflow.DocName(e.wf.ID), reopened); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.repo.Get(ctx, e.wf.ID)
	mustEqual(t, readBack(t, reopened, stored), stored)
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	svc := workflow.NewService(workflow.Config{Repo: e.repo, Authorize: func(_ context.Context, user, _, action string) error {
		if user == "viewer" && action != "" {
			return errors.New("read-only access")
		}
		return nil
	}})
	live := e.open(t)
	_, err := svc.Save(ctx, live, e.wf.ID, "viewer")
	wantType(t, err, workflow.ErrorUnauthorized)
	_, err = svc.Reset(ctx, live, e.wf.ID, "viewer")
	wantType(t, err, workflow.ErrorUnauthorized)
	if _, err := svc.Save(ctx, live, e.wf.ID, "editor"); err != nil {
		t.Fatal(err)
	}
}

// TestApplyExternalLooksUpAfterWrite: the open document is looked up only once the tables hold
// the new version, so a document opening concurrently either loads the new tables or is
// reconciled, never left on the old version.
func TestApplyExternalLooksUpAfterWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	live := e.open(t)
	next := e.wf.Clone()
	next.Name = "renamed while opening"
	seen := -1
	stored, err := e.svc.ApplyExternalLookup(ctx, func() workflow.LiveDoc {
		w, err := e.repo.Get(ctx, next.ID)
		if err != nil {
			t.Errorf("lookup: %v", err)
			return nil
		}
		seen = w.LockVersion
		return live
	}, next, "api")
	if err != nil {
		t.Fatal(err)
	}
	if seen != stored.LockVersion {
		t.Fatalf("the document was looked up at lock_version %d, before the write (%d)", seen, stored.LockVersion)
	}
	got := live.read(t)
	if got.Name != next.Name || got.LockVersion != stored.LockVersion {
		t.Fatalf("document not reconciled: name %q lock_version %d", got.Name, got.LockVersion)
	}
}
