// Package docjson renders Yjs documents as JSON, the way the reference yjs's toJSON does, and
// restores one document's content into another with ordinary, minimal edits (restore.go).
//
// Rendering: every root type by its kind (Map → object, Array → array, Text → string, XML →
// its XML string), values as JSON.stringify writes them (undefined left out of objects and null
// in arrays, NaN and ±Infinity as null, a Uint8Array as an object with index keys, BigInts as
// plain integers). A root that arrived in an update without anyone asking for it by kind is
// rendered by the kind its content shows (Kind). Walks are bounded by MaxDepth, so a hostile
// document cannot exhaust the stack.
//
// The package is pure: it reads and edits a crdt.Doc on the caller's goroutine, which must be
// the one that owns the document.
package docjson

import (
	"errors"
	"fmt"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/encoding"
)

// MaxDepth bounds how deeply shared types may nest inside one another for Render and Restore.
const MaxDepth = 256

// ErrTooDeep is returned for a document whose shared types nest deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("docjson: shared types nested deeper than %d", MaxDepth)

// Options change how Render writes a document.
type Options struct {
	// Delta renders Text roots as Quill deltas ([{"insert": ..., "attributes": {...}}, ...])
	// instead of plain strings. Other roots are unchanged.
	Delta bool
}

// Kinds a root can be rendered as; they are crdt's kind numbers.
const (
	KindMap         = crdt.KindMap
	KindArray       = crdt.KindArray
	KindText        = crdt.KindText
	KindXmlFragment = crdt.KindXmlFragment
	// KindNone is an untyped root without content: nothing to render.
	KindNone uint8 = 255
)

// Kind returns the kind of doc's root called name: its own when it was asked for by kind, or,
// for a root that only arrived in updates, the kind its content shows: map entries make a Map;
// in a list, strings, formats or embeds make a Text, XML elements or XML text an XmlFragment,
// anything else an Array. A root without content, or no root at all, is KindNone.
func Kind(doc *crdt.Doc, name string) uint8 {
	t := doc.Root(name)
	if t == nil {
		return KindNone
	}
	switch k := t.Kind(); k {
	case crdt.KindMap, crdt.KindArray, crdt.KindText, crdt.KindXmlFragment:
		return k
	case crdt.KindXmlElement, crdt.KindXmlText, crdt.KindXmlHook:
		return k // never roots in practice; rendered by the XML rules
	}
	if len(t.MapKeys()) > 0 {
		return KindMap
	}
	kind := KindNone
	t.EachItem(func(it *crdt.Item) bool {
		if it.Deleted() {
			return true
		}
		switch c := it.Content.(type) {
		case *crdt.ContentString, *crdt.ContentFormat, *crdt.ContentEmbed:
			kind = KindText
			return false
		case *crdt.ContentType:
			switch c.Type.Kind() {
			case crdt.KindXmlElement, crdt.KindXmlText, crdt.KindXmlHook:
				kind = KindXmlFragment
				return false
			}
			kind = KindArray
		case *crdt.ContentDeleted:
		default:
			kind = KindArray
		}
		return true
	})
	return kind
}

// typed fixes the kind of an untyped root (as Y.Doc.getMap and friends do) and returns its API
// value, or nil for KindNone.
func typed(doc *crdt.Doc, name string) (any, uint8) {
	k := Kind(doc, name)
	switch k {
	case KindMap:
		return doc.GetMap(name), k
	case KindArray:
		return doc.GetArray(name), k
	case KindText:
		return doc.GetText(name), k
	case KindXmlFragment:
		return doc.GetXmlFragment(name), k
	case KindNone:
		return nil, k
	}
	return doc.Root(name).API(), k
}

// Roots returns every root of doc with content, with its kind (Kind). Untyped roots get their
// inferred kind fixed in doc, as asking yjs for them by kind would.
func Roots(doc *crdt.Doc) map[string]uint8 {
	out := map[string]uint8{}
	for _, name := range doc.RootNames() {
		if _, k := typed(doc, name); k != KindNone {
			out[name] = k
		}
	}
	return out
}

// Value returns doc as plain values ready for encoding.Object's JSON: one entry per root with
// content. Untyped roots get their inferred kind fixed in doc.
func Value(doc *crdt.Doc, opts Options) (*encoding.Object, error) {
	out := encoding.NewObject()
	for _, name := range sortedRoots(doc) {
		v, k := typed(doc, name)
		if k == KindNone {
			continue
		}
		var r any
		var err error
		if t, ok := v.(*crdt.Text); ok && opts.Delta {
			r, err = delta(t, 0)
		} else {
			r, err = value(v, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("render root %q: %w", name, err)
		}
		out.Set(name, r)
	}
	return out, nil
}

// Render returns the JSON text of doc (see Value).
func Render(doc *crdt.Doc, opts Options) ([]byte, error) {
	v, err := Value(doc, opts)
	if err != nil {
		return nil, err
	}
	return v.MarshalJSON()
}

// RenderUpdate renders the document an update (V1, or V2 when v2) describes, decoding it into a
// document of its own; the caller's documents are not touched.
func RenderUpdate(update []byte, v2 bool, opts Options) ([]byte, error) {
	doc, err := Load(update, v2)
	if err != nil {
		return nil, err
	}
	return Render(doc, opts)
}

// Load decodes an update into a new document (garbage collection on, as the server keeps
// documents).
func Load(update []byte, v2 bool) (doc *crdt.Doc, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic: %v", crdt.ErrMalformedUpdate, v)
		}
	}()
	doc = crdt.NewDoc(crdt.DocOptions{})
	if v2 {
		err = crdt.ApplyUpdateV2(doc, update, nil)
	} else {
		err = crdt.ApplyUpdate(doc, update, nil)
	}
	if err != nil {
		return nil, err
	}
	return doc, nil
}

func sortedRoots(doc *crdt.Doc) []string {
	names := doc.RootNames()
	// Deterministic output; JSON objects are unordered anyway.
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && names[j] < names[j-1]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	return names
}

// value renders one stored value: shared types by kind, everything else as it is (Any values
// are already what JSON.stringify takes).
func value(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	switch x := v.(type) {
	case *crdt.Map:
		return entries(x.AbstractType, depth)
	case *crdt.XmlHook:
		return entries(x.AbstractType, depth)
	case *crdt.Array:
		vals := x.ToArray()
		out := make([]any, len(vals))
		for i, e := range vals {
			r, err := value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case *crdt.Text:
		return x.String(), nil
	case *crdt.XmlText:
		return x.String(), nil
	case *crdt.XmlElement:
		return x.String(), nil
	case *crdt.XmlFragment:
		return x.String(), nil
	case *crdt.SubDoc:
		// yjs would write the sub-document's (unloaded, so empty) content; its guid says more.
		return map[string]any{"guid": x.GUID}, nil
	case *crdt.AbstractType:
		return nil, errors.New("docjson: nested type of unknown kind")
	}
	return v, nil
}

func entries(t *crdt.AbstractType, depth int) (map[string]any, error) {
	m := t.API()
	get := func(k string) (any, bool) {
		switch x := m.(type) {
		case *crdt.Map:
			return x.Get(k)
		case *crdt.XmlHook:
			return x.Get(k)
		}
		return nil, false
	}
	out := map[string]any{}
	for _, k := range t.MapKeys() {
		v, ok := get(k)
		if !ok {
			continue
		}
		r, err := value(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[k] = r
	}
	return out, nil
}

// delta renders a text as a Quill delta.
func delta(t *crdt.Text, depth int) ([]any, error) {
	ops := t.ToDelta()
	out := make([]any, 0, len(ops))
	for _, op := range ops {
		ins, err := value(op.Insert, depth+1)
		if err != nil {
			return nil, err
		}
		o := encoding.NewObject() // keys in Quill's order
		o.Set("insert", ins)
		if len(op.Attributes) > 0 {
			o.Set("attributes", op.Attributes)
		}
		out = append(out, o)
	}
	return out, nil
}
