package workflow_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/workflow"
)

// framePeer counts the frames a document sends it.
type framePeer struct {
	mu     sync.Mutex
	frames int
}

func (p *framePeer) Send([]byte) bool { p.mu.Lock(); p.frames++; p.mu.Unlock(); return true }

func (p *framePeer) Close(shareddoc.CloseReason, error) {}

func (p *framePeer) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.frames }

// The service drives a real shareddoc document through SharedDoc; the document is filled by
// the LoadState hook.
func TestSharedDocAdapter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t)
	mem := store.NewMemory()
	reg := shareddoc.NewRegistry(shareddoc.Config{Store: mem, IdleTimeout: time.Hour,
		Hooks: shareddoc.Hooks{LoadState: e.svc.LoadState}})
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })

	name := workflow.DocName(e.wf.ID)
	peer := &framePeer{}
	doc, _, err := reg.JoinOrCreate(ctx, name, shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: "s1", User: "u"}, Peer: peer})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Leave(name, "s1")
	if workflow.SharedDoc(nil) != nil {
		t.Fatal("SharedDoc(nil) should be nil")
	}
	live := workflow.SharedDoc(doc)

	var got *workflow.Workflow
	if err := live.Read(ctx, func(d *crdt.Doc) (err error) { got, err = workflow.ReadDoc(d); return err }); err != nil {
		t.Fatal(err)
	}
	got.ProjectID = e.wf.ProjectID
	mustEqual(t, got, e.wf)

	before := peer.count()
	if res, err := e.svc.Save(ctx, live, e.wf.ID, "u"); err != nil || res.LockVersion != 0 {
		t.Fatalf("Save = %+v, %v", res, err)
	}
	if n := peer.count(); n != before {
		t.Fatalf("a save without edits sent %d frames", n-before)
	}

	if err := live.Update(ctx, func(d *crdt.Doc) error {
		return d.GetMap("workflow").Set("name", "edited in the actor")
	}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Save(ctx, live, e.wf.ID, "u")
	if err != nil || res.LockVersion != 1 || res.Workflow.Name != "edited in the actor" {
		t.Fatalf("Save = %+v, %v", res, err)
	}
	if res, err := e.svc.Reset(ctx, live, e.wf.ID, "u"); err != nil || res.LockVersion != 1 {
		t.Fatalf("Reset = %+v, %v", res, err)
	}
	if err := live.Read(ctx, func(d *crdt.Doc) error {
		if v, _ := d.GetMap("workflow").Get("lock_version"); v != 1 && v != float64(1) {
			t.Errorf("document lock_version = %#v", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
