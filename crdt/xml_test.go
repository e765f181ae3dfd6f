package crdt

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
)

// TestXmlMatchesYjs mirrors the XML scenario of scripts/text-expectations.mjs.
func TestXmlMatchesYjs(t *testing.T) {
	e := loadTextExpectations(t)
	want := e.XML["document"]
	str := func(k string) string {
		var s string
		if err := json.Unmarshal(want[k], &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	doc := NewDoc(DocOptions{ClientID: 1})
	frag := doc.GetXmlFragment("xml")
	p := NewXmlElement("P")
	must(p.SetAttribute("id", "x"))
	must(p.SetAttribute("class", "a"))
	must(p.SetAttribute("class", "b"))
	tx := NewXmlText("hello world")
	must(p.Insert(0, tx))
	b := NewXmlElement("b")
	must(b.Insert(0, NewXmlText("bold")))
	must(p.Push(b))
	q := NewXmlElement("q")
	must(q.Insert(0, NewXmlText("gone"), NewXmlText("kept")))
	must(q.Delete(0, 1))
	if q.Len() != 1 {
		t.Fatalf("prelim len %d", q.Len())
	}
	must(frag.Insert(0, p, q))
	must(tx.Format(0, 5, map[string]any{"strong": true}))
	must(tx.Format(3, 5, map[string]any{"a": map[string]any{"href": "https://x", "title": "T"}}))
	hook := NewXmlHook("mention")
	must(hook.Set("user", "u1"))
	must(frag.Push(hook))
	must(frag.Insert(1, NewXmlText("tail")))
	must(p.RemoveAttribute("id"))
	must(p.SetAttribute("data-n", "1"))

	if got := frag.String(); got != str("string") {
		t.Errorf("string:\n got %s\nwant %s", got, str("string"))
	}
	if got := frag.ToJSON(); got != str("json") {
		t.Errorf("json: %s", got)
	}
	el, ok := frag.Get(0)
	if !ok {
		t.Fatal("no child 0")
	}
	if got := el.(*XmlElement).String(); got != str("element") {
		t.Errorf("element: %s", got)
	}
	if got := tx.String(); got != str("text") {
		t.Errorf("text:\n got %s\nwant %s", got, str("text"))
	}
	if got, w := deltaJSON(t, tx.ToDelta()), rawJSON(t, want["textDelta"]); !reflect.DeepEqual(got, w) {
		t.Errorf("delta: %v", got)
	}
	if got, w := plainJSON(t, hook.ToJSON()), rawJSON(t, want["hook"]); !reflect.DeepEqual(got, w) {
		t.Errorf("hook: %v", got)
	}
	if got := hex.EncodeToString(stateOf(t, doc)); got != str("update") {
		t.Errorf("update:\n got %s\nwant %s", got, str("update"))
	}
	if got := doc.ToJSON()["xml"]; got != str("json") {
		t.Errorf("doc json: %v", got)
	}

	// Decode Yjs's bytes and render again.
	u, _ := hex.DecodeString(str("update"))
	d2 := NewDoc(DocOptions{ClientID: 2})
	mustApply(t, d2, u)
	f2 := d2.GetXmlFragment("xml")
	if got := f2.String(); got != str("string") {
		t.Errorf("decoded string: %s", got)
	}
	h, _ := f2.Get(3)
	if hk, ok := h.(*XmlHook); !ok || hk.HookName() != "mention" {
		t.Errorf("hook: %#v", h)
	}
	e2, _ := f2.Get(0)
	if attrs := e2.(*XmlElement).Attributes(); !reflect.DeepEqual(attrs, map[string]any{"class": "b", "data-n": "1"}) {
		t.Errorf("attrs %v", attrs)
	}
}

func TestXmlRendering(t *testing.T) {
	doc := NewDoc(DocOptions{ClientID: 1})
	frag := doc.GetXmlFragment("f")
	el := NewXmlElement("DIV")
	_ = el.SetAttribute("z", 1.5)
	_ = el.SetAttribute("a", true)
	_ = el.SetAttribute("m", []any{1, nil, "x"})
	_ = el.SetAttribute("o", map[string]any{"k": 1})
	txt := NewXmlText("ab")
	_ = el.Insert(0, txt)
	if err := frag.Insert(0, el); err != nil {
		t.Fatal(err)
	}
	_ = txt.Format(0, 1, map[string]any{"i": true, "span": "xy"})
	want := `<div a="true" m="1,,x" o="[object Object]" z="1.5"><i><span 0="x" 1="y">a</span></i>b</div>`
	if got := frag.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if err := frag.Delete(0, 2); err == nil {
		t.Fatal("delete past end accepted")
	}
	if err := frag.Delete(0, 1); err != nil || frag.String() != "" || frag.Len() != 0 {
		t.Fatalf("delete: %v %q", err, frag.String())
	}
}
