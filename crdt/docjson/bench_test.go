package docjson_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
)

// benchDoc is a mid-sized document: 20 000 characters of text edited in 2 000 places with some
// bold runs, a 1 000-key map and a 1 000-element array.
func benchDoc(b *testing.B) []byte {
	d := crdt.NewDoc(crdt.DocOptions{ClientID: 1})
	txt := d.GetText("t")
	for i := range 2000 {
		var attrs map[string]any
		if i%10 == 0 {
			attrs = map[string]any{"bold": true}
		}
		_ = txt.Insert((i*7)%(txt.Len()+1), strings.Repeat("x", 10), attrs)
	}
	m, a := d.GetMap("m"), d.GetArray("a")
	for i := range 1000 {
		_ = m.Set(fmt.Sprint("k", i), float64(i))
		_ = a.Push(fmt.Sprint("v", i))
	}
	u, err := crdt.EncodeStateAsUpdate(d, nil)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func BenchmarkRenderUpdate(b *testing.B) {
	u := benchDoc(b)
	b.SetBytes(int64(len(u)))
	for b.Loop() {
		if _, err := docjson.RenderUpdate(u, false, docjson.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderDelta(b *testing.B) {
	u := benchDoc(b)
	doc, _ := docjson.Load(u, false)
	for b.Loop() {
		if _, err := docjson.Render(doc, docjson.Options{Delta: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestoreSmallChange restores a version that differs from the live document by a few
// characters of text and one map key: the cost is the comparison, the edit is tiny.
func BenchmarkRestoreSmallChange(b *testing.B) {
	u := benchDoc(b)
	target, _ := docjson.Load(u, false)
	var size int
	for b.Loop() {
		b.StopTimer()
		live, _ := docjson.Load(u, false)
		live.Transact(func(*crdt.Transaction) {
			_ = live.GetText("t").Insert(5000, "changed", nil)
			_ = live.GetMap("m").Set("k7", "changed")
		}, nil)
		var upd []byte
		live.ObserveUpdate(func(x []byte, _ any, _ *crdt.Transaction) { upd = x })
		b.StartTimer()
		live.Transact(func(*crdt.Transaction) { _, _ = docjson.Restore(live, target) }, nil)
		size = len(upd)
	}
	b.ReportMetric(float64(size), "update-bytes")
}
