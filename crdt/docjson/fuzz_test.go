package docjson_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
)

// FuzzRender: bytes from the network either fail to load with an error, or load and render as
// valid JSON (or ErrTooDeep), and restoring them into an empty document renders the same. Never
// a panic.
func FuzzRender(f *testing.F) {
	d := crdt.NewDoc(crdt.DocOptions{ClientID: 1})
	d.Transact(func(*crdt.Transaction) {
		_ = d.GetText("t").Insert(0, "a😀b", map[string]any{"bold": true})
		_ = d.GetMap("m").Set("k", []any{1.0, "x", nil})
		_ = d.GetArray("a").Push(crdt.NewMap(), crdt.NewText("n"))
		x := crdt.NewXmlElement("p")
		_ = d.GetXmlFragment("x").Push(x)
	}, nil)
	u, _ := crdt.EncodeStateAsUpdate(d, nil)
	f.Add(u, false)
	u2, _ := crdt.EncodeStateAsUpdateV2(d, nil)
	f.Add(u2, true)
	f.Add([]byte{0, 0}, false)
	f.Add([]byte{1, 1, 5, 0, 0}, false)
	f.Fuzz(func(t *testing.T, update []byte, v2 bool) {
		doc, err := docjson.Load(update, v2)
		if err != nil {
			return
		}
		out, err := docjson.Render(doc, docjson.Options{})
		if errors.Is(err, docjson.ErrTooDeep) {
			return
		}
		if err != nil {
			t.Skipf("render: %v", err) // e.g. a nested type of unknown kind: reported, not a crash
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		if _, err := docjson.Render(doc, docjson.Options{Delta: true}); err != nil && !errors.Is(err, docjson.ErrTooDeep) {
			t.Skipf("delta: %v", err)
		}
		live := crdt.NewDoc(crdt.DocOptions{ClientID: 9})
		var rerr error
		live.Transact(func(*crdt.Transaction) { _, rerr = docjson.Restore(live, doc) }, nil)
		if rerr != nil {
			return
		}
		again, err := docjson.Render(live, docjson.Options{})
		if err == nil && string(again) != string(out) {
			t.Fatalf("restored into an empty document:\n %s\nwant\n %s", again, out)
		}
	})
}
