package docjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
	"github.com/ysync/ysync/crdt/internal/oracle"
)

func render(t *testing.T, doc *crdt.Doc, delta bool) map[string]any {
	t.Helper()
	b, err := docjson.Render(doc, docjson.Options{Delta: delta})
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, b)
}

// sameContent compares two renderings, an empty root equal to a missing one.
func sameContent(a, b map[string]any) bool {
	for k, v := range a {
		if w, ok := b[k]; ok {
			if !reflect.DeepEqual(v, w) {
				return false
			}
		} else if !isEmpty(v) {
			return false
		}
	}
	for k, w := range b {
		if _, ok := a[k]; !ok && !isEmpty(w) {
			return false
		}
	}
	return true
}

// restoreInto restores target into live in one transaction and returns the update it made.
func restoreInto(t *testing.T, live, target *crdt.Doc) []byte {
	t.Helper()
	var upd []byte
	unobserve := live.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { upd = append(upd[:0:0], u...) })
	defer unobserve()
	var err error
	live.Transact(func(*crdt.Transaction) { _, err = docjson.Restore(live, target) }, "restore")
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return upd
}

// TestRestoreMatchesVersion: for pairs of fuzzed documents made by yjs, restoring one into the
// other makes the content (JSON and deltas, formatting included) equal the restored one's, and
// the edit, applied by the reference yjs to the same starting state, gives yjs the same content.
func TestRestoreMatchesVersion(t *testing.T) {
	o := startOracle(t)
	seeds := 80
	if testing.Short() {
		seeds = 20
	}
	for seed := 1; seed <= seeds; seed++ {
		gen := func(seed int) scenario {
			var sc scenario
			if err := o.Call(map[string]any{"cmd": "gen", "session": "r", "seed": seed, "docs": 2, "steps": 20 + seed%31}, &sc); err != nil {
				t.Fatalf("gen %d: %v", seed, err)
			}
			return sc
		}
		version, current := gen(seed), gen(seed+10_000)
		target, err := docjson.Load(oracle.UnB64(version.Merged.V1), false)
		if err != nil {
			t.Fatal(err)
		}
		live := crdt.NewDoc(crdt.DocOptions{ClientID: 424242})
		if err := crdt.ApplyUpdate(live, oracle.UnB64(current.Merged.V1), nil); err != nil {
			t.Fatal(err)
		}
		upd := restoreInto(t, live, target)
		want := render(t, target, false)
		if got := render(t, live, false); !sameContent(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Fatalf("seed %d: after restore\n got  %s\n want %s", seed, gj, wj)
		}
		// Runs are compared merged: where format items sit (and so where toDelta splits runs
		// with equal attributes) is not content.
		if got, want := mergeRuns(render(t, live, true)), mergeRuns(render(t, target, true)); !sameContent(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Fatalf("seed %d: deltas after restore\n got  %s\n want %s", seed, gj, wj)
		}
		if upd == nil {
			continue
		}
		var ref snapshot
		if err := o.Call(map[string]any{"cmd": "load", "updates": []string{current.Merged.V1, oracle.B64(upd)}}, &ref); err != nil {
			t.Fatalf("seed %d: yjs load: %v", seed, err)
		}
		wantJSON, _ := Plain(ref.JSON, false)
		if got := render(t, live, false); !sameContent(got, wantJSON.(map[string]any)) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(wantJSON)
			t.Fatalf("seed %d: yjs applying the restore edit gets\n %s\n the Go document has\n %s", seed, wj, gj)
		}
	}
}

// Restoring edits as little as the kinds allow: a text keeps its common prefix and suffix, a
// map its unchanged keys, an array its unchanged runs; concurrent edits merge.
func TestRestoreMinimalAndConcurrent(t *testing.T) {
	mk := func(text string, keys map[string]any, arr []any) *crdt.Doc {
		d := crdt.NewDoc(crdt.DocOptions{ClientID: 1})
		d.Transact(func(*crdt.Transaction) {
			_ = d.GetText("t").Insert(0, text, nil)
			for k, v := range keys {
				_ = d.GetMap("m").Set(k, v)
			}
			_ = d.GetArray("a").Push(arr...)
		}, nil)
		return d
	}
	version := mk("hello world 😀", map[string]any{"a": 1.0, "b": "x"}, []any{1.0, 2.0, 3.0, 4.0})
	state, _ := crdt.EncodeStateAsUpdate(version, nil)
	target, _ := docjson.Load(state, false)

	// Two replicas start equal to the version, then diverge.
	alice := crdt.NewDoc(crdt.DocOptions{ClientID: 2})
	bob := crdt.NewDoc(crdt.DocOptions{ClientID: 3})
	for _, d := range []*crdt.Doc{alice, bob} {
		if err := crdt.ApplyUpdate(d, state, nil); err != nil {
			t.Fatal(err)
		}
	}
	alice.Transact(func(*crdt.Transaction) {
		_ = alice.GetText("t").Insert(6, "brave ", nil)
		_ = alice.GetMap("m").Set("b", "y")
		_ = alice.GetMap("m").Set("c", true)
		_ = alice.GetArray("a").Delete(1, 1)
	}, nil)
	sync := func(from, to *crdt.Doc) {
		u, _ := crdt.EncodeStateAsUpdate(from, crdt.EncodeStateVector(to))
		if err := crdt.ApplyUpdate(to, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	sync(alice, bob)
	// Alice restores while Bob types at the end.
	upd := restoreInto(t, alice, target)
	bob.Transact(func(*crdt.Transaction) { _ = bob.GetText("t").Insert(bob.GetText("t").Len(), "!", nil) }, nil)
	if len(upd) > 120 {
		t.Errorf("restore update is %d bytes; a minimal one is a few deletes and sets", len(upd))
	}
	if bytes.Contains(upd, []byte("hello")) {
		t.Error("restore re-inserted the unchanged text")
	}
	sync(alice, bob)
	sync(bob, alice)
	for name, d := range map[string]*crdt.Doc{"alice": alice, "bob": bob} {
		got := render(t, d, false)
		want := map[string]any{"t": "hello world 😀!", "m": map[string]any{"a": 1.0, "b": "x"}, "a": []any{1.0, 2.0, 3.0, 4.0}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestRestoreClearsAndKinds(t *testing.T) {
	live := crdt.NewDoc(crdt.DocOptions{})
	live.Transact(func(*crdt.Transaction) {
		_ = live.GetText("gone").Insert(0, "x", nil)
		_ = live.GetMap("clash").Set("k", 1)
	}, nil)
	target := crdt.NewDoc(crdt.DocOptions{})
	target.Transact(func(*crdt.Transaction) {
		_ = target.GetText("clash").Insert(0, "t", nil)
		_ = target.GetArray("new").Push("v")
	}, nil)
	var skipped []string
	var err error
	live.Transact(func(*crdt.Transaction) { skipped, err = docjson.Restore(live, target) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(skipped) != "[clash]" {
		t.Errorf("skipped %v, want [clash]", skipped)
	}
	got := render(t, live, false)
	want := map[string]any{"gone": "", "clash": map[string]any{}, "new": []any{"v"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after restore %v, want %v", got, want)
	}
}

// mergeRuns joins adjacent string inserts with equal attributes in every delta of m.
func mergeRuns(m map[string]any) map[string]any {
	for k, v := range m {
		ops, ok := v.([]any)
		if !ok {
			continue
		}
		var out []any
		for _, op := range ops {
			o, _ := op.(map[string]any)
			s, isStr := o["insert"].(string)
			if n := len(out); n > 0 && isStr {
				prev := out[n-1].(map[string]any)
				if ps, ok := prev["insert"].(string); ok && reflect.DeepEqual(prev["attributes"], o["attributes"]) {
					merged := map[string]any{"insert": ps + s}
					if a, ok := o["attributes"]; ok {
						merged["attributes"] = a
					}
					out[n-1] = merged
					continue
				}
			}
			out = append(out, op)
		}
		if out == nil {
			out = []any{}
		}
		m[k] = out
	}
	return m
}
