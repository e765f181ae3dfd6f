package workflow_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/workflow"
)

// normalized returns a normalized copy of the sample, as the repository would store it.
func normalized() *workflow.Workflow {
	w := sample()
	w.Normalize()
	return w
}

// readBack reads doc, taking the fields the document does not hold from want.
func readBack(t *testing.T, doc *crdt.Doc, want *workflow.Workflow) *workflow.Workflow {
	t.Helper()
	got, err := workflow.ReadDoc(doc)
	if err != nil {
		t.Fatalf("ReadDoc: %v", err)
	}
	got.ProjectID = want.ProjectID
	return got
}

// viaUpdate copies doc into a fresh document through an encoded update, as a client sees it.
func viaUpdate(t *testing.T, doc *crdt.Doc) *crdt.Doc {
	t.Helper()
	u, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := crdt.NewDoc(crdt.DocOptions{})
	if err := crdt.ApplyUpdate(d, u, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// countUpdates counts the updates fn makes doc emit, and their total size.
func countUpdates(doc *crdt.Doc, fn func()) (n, size int) {
	stop := doc.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { n++; size += len(u) })
	defer stop()
	fn()
	return n, size
}

func state(t *testing.T, doc *crdt.Doc) []byte {
	t.Helper()
	u, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDocRoundTrip(t *testing.T) {
	t.Parallel()
	w := normalized()
	deleted := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	w.DeletedAt = &deleted
	w.LockVersion = 7
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.BuildDoc(doc, w); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, doc, w), w)
	// Through the wire: numbers come back as float64, positions as objects.
	remote := viaUpdate(t, doc)
	mustEqual(t, readBack(t, remote, w), w)

	// The layout clients rely on.
	j := remote.GetArray("jobs")
	first, _ := j.Get(0)
	body, _ := first.(*crdt.Map).Get("body")
	if txt, ok := body.(*crdt.Text); !ok || txt.String() != w.Jobs[0].Body {
		t.Fatalf("jobs[0].body = %#v, want a Y.Text with the body", body)
	}
	if v, _ := remote.GetMap("workflow").Get("deleted_at"); v != "2024-05-06T07:08:09.123456Z" {
		t.Fatalf("deleted_at = %#v", v)
	}
	if v, _ := remote.GetMap("workflow").Get("lock_version"); v != float64(7) {
		t.Fatalf("lock_version = %#v", v)
	}

	// Reading again and reconciling with what was read changes nothing.
	again := readBack(t, remote, w)
	n, _ := countUpdates(remote, func() {
		if err := workflow.ReconcileDoc(remote, again); err != nil {
			t.Fatal(err)
		}
		if err := workflow.WriteErrors(remote, again, nil); err != nil {
			t.Fatal(err)
		}
		if err := workflow.RefreshMeta(remote, again); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Fatalf("reconcile/refresh with the document's own content emitted %d updates", n)
	}

	// An empty workflow round-trips too.
	empty := &workflow.Workflow{ID: workflow.NewID(), Name: "e", EnableJobLogs: false}
	d2 := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.BuildDoc(d2, empty); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, viaUpdate(t, d2), empty), empty)
}

func TestReconcileMinimal(t *testing.T) {
	t.Parallel()
	w := normalized()
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.BuildDoc(doc, w); err != nil {
		t.Fatal(err)
	}
	texts := func() map[string]*crdt.Text {
		out := map[string]*crdt.Text{}
		for _, v := range doc.GetArray("jobs").ToArray() {
			m := v.(*crdt.Map)
			id, _ := m.Get("id")
			b, _ := m.Get("body")
			out[id.(string)] = b.(*crdt.Text)
		}
		return out
	}
	before := texts()
	full := len(state(t, doc))

	// One field of one job: one small update.
	next := w.Clone()
	next.Jobs[1].Name = "renamed"
	n, size := countUpdates(doc, func() {
		if err := workflow.ReconcileDoc(doc, next); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1 || size > 60 {
		t.Fatalf("renaming one job: %d updates, %d bytes (full state %d)", n, size, full)
	}
	mustEqual(t, readBack(t, doc, next), next)

	// Body edit in the middle, next to an emoji: the same Y.Text, a small diff.
	next = next.Clone()
	next.Jobs[0].Body = "fn(state => state) // héllo 😁 world"
	n, size = countUpdates(doc, func() {
		if err := workflow.ReconcileDoc(doc, next); err != nil {
			t.Fatal(err)
		}
	})
	if n != 1 || size > 80 {
		t.Fatalf("body edit: %d updates, %d bytes", n, size)
	}
	after := texts()
	if after[w.Jobs[0].ID] != before[w.Jobs[0].ID] || after[w.Jobs[0].ID].String() != next.Jobs[0].Body {
		t.Fatalf("body: same text %v, content %q", after[w.Jobs[0].ID] == before[w.Jobs[0].ID], after[w.Jobs[0].ID].String())
	}

	// Remove a job with its edges, add one, move a node, change a trigger.
	next = next.Clone()
	gone := next.Jobs[2].ID
	next.Jobs = next.Jobs[:2]
	next.Edges = next.Edges[:3]
	added := workflow.Job{ID: workflow.NewID(), Name: "added", Body: "new()", Adaptor: workflow.DefaultAdaptor}
	next.Jobs = append(next.Jobs, added)
	next.Positions[next.Jobs[0].ID] = workflow.Position{X: 1, Y: 2}
	next.Triggers[0].Enabled = false
	if err := workflow.ReconcileDoc(doc, next); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, doc, next), next)
	after = texts()
	if after[w.Jobs[1].ID] != before[w.Jobs[1].ID] {
		t.Fatal("an untouched job's body was replaced")
	}
	if _, ok := after[gone]; ok {
		t.Fatal("removed job still in the document")
	}
	mustEqual(t, readBack(t, viaUpdate(t, doc), next), next)
}

func TestEditTextSurrogates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ from, to string }{
		{"a😀b", "a😁b"},
		{"😀", "😁"},
		{"x😀", "x"},
		{"", "héllo"},
		{"héllo", ""},
		{"abcabc", "abc"},
		{"same", "same"},
		{"𝄞𝄞", "𝄞"},
	} {
		w := normalized()
		w.Jobs[0].Body = tc.from
		doc := crdt.NewDoc(crdt.DocOptions{})
		if err := workflow.BuildDoc(doc, w); err != nil {
			t.Fatal(err)
		}
		next := w.Clone()
		next.Jobs[0].Body = tc.to
		if err := workflow.ReconcileDoc(doc, next); err != nil {
			t.Fatal(err)
		}
		got := readBack(t, viaUpdate(t, doc), w)
		if got.Jobs[0].Body != tc.to {
			t.Errorf("%q → %q: got %q", tc.from, tc.to, got.Jobs[0].Body)
		}
	}
}

func TestResetDoc(t *testing.T) {
	t.Parallel()
	w := normalized()
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.BuildDoc(doc, w); err != nil {
		t.Fatal(err)
	}
	// Local edits: rename, a stray job, an error, a position.
	doc.Transact(func(*crdt.Transaction) {
		doc.GetMap("workflow").Set("name", "edited")
		m := crdt.NewMap()
		m.Set("id", workflow.NewID())
		m.Set("name", "stray")
		doc.GetArray("jobs").Push(m)
		doc.GetMap("errors").Set("name", []any{"x"})
		doc.GetMap("positions").Set("zzz", map[string]any{"x": 1, "y": 1})
	}, nil)
	if err := workflow.ResetDoc(doc, w); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, doc, w), w)
	if doc.GetMap("errors").Size() != 0 {
		t.Fatal("errors not cleared")
	}
}

func TestRefreshMeta(t *testing.T) {
	t.Parallel()
	w := normalized()
	w.LockVersion = 3
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.RefreshMeta(doc, w); err != nil { // empty document: built
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, doc, w), w)

	// Unsaved edit in the document; tables renamed the workflow at the same version.
	first, _ := doc.GetArray("jobs").Get(0)
	first.(*crdt.Map).Set("name", "unsaved edit")
	tables := w.Clone()
	tables.Name = "renamed elsewhere"
	if err := workflow.RefreshMeta(doc, tables); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, doc, w)
	if got.Name != "renamed elsewhere" || got.Jobs[0].Name != "unsaved edit" {
		t.Fatalf("same version: name %q, job %q; want the name refreshed and the edit kept", got.Name, got.Jobs[0].Name)
	}

	// Tables moved on: the document is rebuilt.
	tables = tables.Clone()
	tables.LockVersion = 4
	tables.Jobs[1].Body = "saved elsewhere"
	if err := workflow.RefreshMeta(doc, tables); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, readBack(t, doc, tables), tables)
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	w := normalized()
	doc := crdt.NewDoc(crdt.DocOptions{})
	if err := workflow.BuildDoc(doc, w); err != nil {
		t.Fatal(err)
	}
	errs := workflow.ValidationErrors{"name": {"can't be blank"}, "jobs[1].name": {"has already been taken"},
		"edges[0].condition_type": {"is invalid"}}
	if err := workflow.WriteErrors(doc, w, errs); err != nil {
		t.Fatal(err)
	}
	got := viaUpdate(t, doc).GetMap("errors").ToJSON()
	jobs, _ := got["jobs"].(map[string]any)
	job, _ := jobs[w.Jobs[1].ID].(map[string]any)
	edges, _ := got["edges"].(map[string]any)
	edge, _ := edges[w.Edges[0].ID].(map[string]any)
	if names, _ := job["name"].([]any); len(names) != 1 || names[0] != "has already been taken" || edge["condition_type"] == nil || got["name"] == nil {
		t.Fatalf("errors = %#v", got)
	}
	// Writing the same again emits nothing; nil clears.
	if n, _ := countUpdates(doc, func() { workflow.WriteErrors(doc, w, errs) }); n != 0 {
		t.Fatalf("rewriting the same errors emitted %d updates", n)
	}
	if err := workflow.WriteErrors(doc, w, nil); err != nil {
		t.Fatal(err)
	}
	if doc.GetMap("errors").Size() != 0 {
		t.Fatal("errors not cleared")
	}
}

func TestReadDocWrongShape(t *testing.T) {
	t.Parallel()
	cases := map[string]func(doc *crdt.Doc){
		"no workflow id": func(doc *crdt.Doc) { doc.GetMap("workflow").Delete("id") },
		"jobs is a map": func(doc *crdt.Doc) {
			doc.GetMap("jobs").Set("x", 1)
		},
		"job is not a map": func(doc *crdt.Doc) { doc.GetArray("jobs").Push("job?") },
		"name is a number": func(doc *crdt.Doc) {
			j, _ := doc.GetArray("jobs").Get(0)
			j.(*crdt.Map).Set("name", 12)
		},
		"lock_version is text": func(doc *crdt.Doc) { doc.GetMap("workflow").Set("lock_version", "3") },
		"bad deleted_at":       func(doc *crdt.Doc) { doc.GetMap("workflow").Set("deleted_at", "yesterday") },
		"bad position":         func(doc *crdt.Doc) { doc.GetMap("positions").Set("n", "here") },
		"enabled is a string": func(doc *crdt.Doc) {
			tr, _ := doc.GetArray("triggers").Get(0)
			tr.(*crdt.Map).Set("enabled", "yes")
		},
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := crdt.NewDoc(crdt.DocOptions{})
			if name != "jobs is a map" {
				if err := workflow.BuildDoc(src, normalized()); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := workflow.BuildDoc(src, normalized()); err != nil {
					t.Fatal(err)
				}
				src = crdt.NewDoc(crdt.DocOptions{})
				if err := crdt.ApplyUpdate(src, onlyWorkflowMap(t), nil); err != nil {
					t.Fatal(err)
				}
			}
			corrupt(src)
			doc := viaUpdate(t, src)
			before := state(t, doc)
			if _, err := workflow.ReadDoc(doc); !errors.Is(err, workflow.ErrDeserialization) {
				t.Fatalf("ReadDoc = %v, want ErrDeserialization", err)
			}
			if !bytes.Equal(before, state(t, doc)) {
				t.Fatal("ReadDoc changed the document")
			}
		})
	}
}

// onlyWorkflowMap returns an update holding a valid "workflow" root map and nothing else.
func onlyWorkflowMap(t *testing.T) []byte {
	d := crdt.NewDoc(crdt.DocOptions{})
	m := d.GetMap("workflow")
	m.Set("id", workflow.NewID())
	m.Set("name", "w")
	m.Set("lock_version", 0)
	m.Set("enable_job_logs", true)
	if _, err := workflow.ReadDoc(d); err != nil {
		t.Fatalf("the base document should read: %v", err)
	}
	return state(t, d)
}
