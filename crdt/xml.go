package crdt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/ysync/ysync/crdt/encoding"
)

// XmlFragment is a shared list of XML nodes (Yjs's Y.XmlFragment).
type XmlFragment struct{ *AbstractType }

// XmlElement is an XML element with attributes and children (Yjs's Y.XmlElement). Attributes are
// the map entries of the type.
type XmlElement struct{ XmlFragment }

// XmlText is text inside an XML tree (Yjs's Y.XmlText): a Text whose String renders formatting
// attributes as nested tags.
type XmlText struct{ Text }

// XmlHook is a map-like custom node in an XML tree (Yjs's Y.XmlHook).
type XmlHook struct{ Map }

// xmlPrelim is what a preliminary XmlFragment or XmlElement holds until it is integrated: Yjs
// keeps children in _prelimContent and attributes in _prelimAttrs, and inserts them at once on
// integration (children first, then attributes in the order they were first set).
type xmlPrelim struct {
	content []any
	attrs   attrList
}

// NewXmlFragment returns a preliminary fragment.
func NewXmlFragment() *XmlFragment {
	f := &XmlFragment{newAbstractType(KindXmlFragment)}
	f.api = f
	return f
}

// NewXmlElement returns a preliminary element called nodeName.
func NewXmlElement(nodeName string) *XmlElement {
	t := newAbstractType(KindXmlElement)
	t.nodeName = nodeName
	e := &XmlElement{XmlFragment{t}}
	t.api = e
	return e
}

// NewXmlText returns a preliminary XML text holding initial.
func NewXmlText(initial string) *XmlText {
	x := &XmlText{Text{newAbstractType(KindXmlText)}}
	x.api = x
	if initial != "" {
		_ = x.Insert(0, initial, nil)
	}
	return x
}

// NewXmlHook returns a preliminary hook called hookName.
func NewXmlHook(hookName string) *XmlHook {
	t := newAbstractType(KindXmlHook)
	t.nodeName = hookName
	h := &XmlHook{Map{t}}
	t.api = h
	return h
}

// HookName returns the hook's name.
func (h *XmlHook) HookName() string { return h.nodeName }

// ToJSON returns the hook's entries as plain Go values (a hook is a YMap in Yjs).
func (h *XmlHook) ToJSON() map[string]any { return mapJSON(h.AbstractType) }

// prelimState returns the preliminary state of an XML type that is not integrated yet, arranging
// for it to be inserted on integration.
func (t *AbstractType) prelimState() *xmlPrelim {
	if t.xmlPrelim == nil {
		p := &xmlPrelim{}
		t.xmlPrelim = p
		prev := t.prelim
		t.prelim = func(tx *Transaction) {
			if prev != nil {
				prev(tx)
			}
			t.xmlPrelim = nil
			if len(p.content) > 0 {
				if err := t.listInsert(tx, 0, p.content); err != nil {
					tx.fail(err)
				}
			}
			for _, kv := range p.attrs {
				if err := t.mapSetValue(tx, kv.key, kv.val); err != nil {
					tx.fail(err)
				}
			}
		}
	}
	return t.xmlPrelim
}

func checkValues(values []any) error {
	for _, v := range values {
		if _, err := contentFor(v); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of children (for a preliminary fragment, the number given so far).
func (f *XmlFragment) Len() int {
	if f.doc == nil && f.xmlPrelim != nil {
		return len(f.xmlPrelim.content)
	}
	return f.length
}

// Insert inserts nodes (*XmlElement, *XmlText, *XmlHook created with the New functions; any other
// value Yjs accepts is stored as is) at index.
func (f *XmlFragment) Insert(index int, nodes ...any) error {
	if err := checkValues(nodes); err != nil {
		return err
	}
	if f.doc == nil {
		p := f.prelimState()
		if index < 0 || index > len(p.content) {
			return fmt.Errorf("%w: insert at %d of %d", ErrIndexOutOfRange, index, len(p.content))
		}
		p.content = slices.Insert(p.content, index, nodes...)
		return nil
	}
	return f.transact(func(tx *Transaction) error { return f.listInsert(tx, index, nodes) })
}

// InsertAfter inserts nodes after the child ref (nil: at the start).
func (f *XmlFragment) InsertAfter(ref YType, nodes ...any) error {
	if err := checkValues(nodes); err != nil {
		return err
	}
	if f.doc == nil {
		p := f.prelimState()
		at := 0
		if ref != nil {
			at = slices.IndexFunc(p.content, func(v any) bool {
				y, ok := v.(YType)
				return ok && y.abstract() == ref.abstract()
			}) + 1
			if at == 0 {
				return fmt.Errorf("crdt: reference node not found")
			}
		}
		p.content = slices.Insert(p.content, at, nodes...)
		return nil
	}
	return f.transact(func(tx *Transaction) error {
		var item *Item
		if ref != nil {
			item = ref.abstract().item
			if item == nil || item.Parent != f.AbstractType {
				return fmt.Errorf("crdt: reference node is not a child of this node")
			}
		}
		return f.insertAfter(tx, item, nodes)
	})
}

// Push appends nodes.
func (f *XmlFragment) Push(nodes ...any) error { return f.Insert(f.Len(), nodes...) }

// Delete removes length children starting at index.
func (f *XmlFragment) Delete(index, length int) error {
	if f.doc == nil {
		p := f.prelimState()
		if index < 0 || length < 0 || index+length > len(p.content) {
			return fmt.Errorf("%w: delete %d at %d of %d", ErrIndexOutOfRange, length, index, len(p.content))
		}
		p.content = slices.Delete(p.content, index, index+length)
		return nil
	}
	return f.transact(func(tx *Transaction) error { return f.listDelete(tx, index, length) })
}

// Get returns the child at index.
func (f *XmlFragment) Get(index int) (any, bool) { return f.listGet(index) }

// ToArray returns the children.
func (f *XmlFragment) ToArray() []any { return f.listValues() }

// String renders the children as XML, as Yjs's toString.
func (f *XmlFragment) String() string { return jsString(f) }

// childParts lists the children to render, in order.
func (f *XmlFragment) childParts(parts []jsPart) []jsPart {
	for n := f.start; n != nil; n = n.Right {
		if n.Deleted() || !n.countable() {
			continue
		}
		for _, v := range n.Content.Values() {
			parts = append(parts, jsPart{val: v, isVal: true})
		}
	}
	return parts
}

// ToJSON returns String(), as Yjs's YXmlFragment.toJSON.
func (f *XmlFragment) ToJSON() string { return f.String() }

// NodeName returns the element's name.
func (e *XmlElement) NodeName() string { return e.nodeName }

// SetAttribute sets an attribute (a string usually; any value Yjs accepts is stored).
func (e *XmlElement) SetAttribute(name string, value any) error {
	if _, err := contentFor(value); err != nil {
		return err
	}
	if e.doc == nil {
		e.prelimState().attrs.set(name, value)
		return nil
	}
	return e.transact(func(tx *Transaction) error { return e.mapSetValue(tx, name, value) })
}

// RemoveAttribute removes an attribute.
func (e *XmlElement) RemoveAttribute(name string) error {
	if e.doc == nil {
		e.prelimState().attrs.del(name)
		return nil
	}
	return e.transact(func(tx *Transaction) error { e.mapDelete(tx, name); return nil })
}

// GetAttribute returns an attribute.
func (e *XmlElement) GetAttribute(name string) (any, bool) { return e.mapGet(name) }

// HasAttribute reports whether the attribute is set.
func (e *XmlElement) HasAttribute(name string) bool {
	_, ok := e.mapGet(name)
	return ok
}

// Attributes returns all attributes.
func (e *XmlElement) Attributes() map[string]any {
	out := make(map[string]any, len(e.m))
	for _, k := range e.mapKeys() {
		out[k], _ = e.mapGet(k)
	}
	return out
}

// String renders the element as Yjs does: lower-cased name, attributes sorted by name.
func (e *XmlElement) String() string { return jsString(e) }

// parts lists what renders the element: its tag with attributes, its children, its end tag.
func (e *XmlElement) parts() []jsPart {
	keys := e.mapKeys()
	slices.SortFunc(keys, compareUTF16)
	name := strings.ToLower(e.nodeName)
	parts := make([]jsPart, 0, 3*len(keys)+3)
	parts = append(parts, jsPart{lit: "<" + name})
	for _, k := range keys {
		v, _ := e.mapGet(k)
		parts = append(parts, jsPart{lit: " " + k + `="`}, jsPart{val: v, isVal: true}, jsPart{lit: `"`})
	}
	parts = append(parts, jsPart{lit: ">"})
	parts = e.childParts(parts)
	return append(parts, jsPart{lit: "</" + name + ">"})
}

// ToJSON returns String(), as Yjs's YXmlElement.toJSON.
func (e *XmlElement) ToJSON() string { return e.String() }

// String renders the text with its formatting attributes as nested tags, as YXmlText.toString:
// each attribute is a tag whose XML attributes are the properties of the attribute's value.
func (x *XmlText) String() string { return jsString(x) }

// parts lists what renders the text: per delta its opening tags, its insert and closing tags.
func (x *XmlText) parts() []jsPart {
	var parts []jsPart
	type tag struct {
		name  string
		attrs []attrKV
	}
	for _, d := range x.ToDelta() {
		tags := make([]tag, 0, len(d.Attributes))
		for name, val := range d.Attributes {
			tg := tag{name: name}
			if o, ok := asObject(val); ok {
				o.each(func(k string, v any) bool {
					tg.attrs = append(tg.attrs, attrKV{k, v})
					return true
				})
			} else if s, ok := val.(string); ok {
				// for..in over a string enumerates its UTF-16 indices
				for i, u := range utf16.Encode([]rune(s)) {
					tg.attrs = append(tg.attrs, attrKV{strconv.Itoa(i), string(utf16.Decode([]uint16{u}))})
				}
			}
			slices.SortFunc(tg.attrs, func(a, b attrKV) int { return compareUTF16(a.key, b.key) })
			tags = append(tags, tg)
		}
		slices.SortFunc(tags, func(a, b tag) int { return compareUTF16(a.name, b.name) })
		for _, tg := range tags {
			parts = append(parts, jsPart{lit: "<" + tg.name})
			for _, a := range tg.attrs {
				parts = append(parts, jsPart{lit: " " + a.key + `="`}, jsPart{val: a.val, isVal: true}, jsPart{lit: `"`})
			}
			parts = append(parts, jsPart{lit: ">"})
		}
		parts = append(parts, jsPart{val: d.Insert, isVal: true})
		for i := len(tags) - 1; i >= 0; i-- {
			parts = append(parts, jsPart{lit: "</" + tags[i].name + ">"})
		}
	}
	return parts
}

// ToJSON returns String(), as Yjs's YXmlText.toJSON.
func (x *XmlText) ToJSON() string { return x.String() }

// compareUTF16 orders strings by UTF-16 code units, as JS's < and Array.prototype.sort do.
func compareUTF16(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	a, b = a[i:], b[i:]
	if a == "" || b == "" {
		return len(a) - len(b)
	}
	ua := utf16.Encode([]rune(a))
	ub := utf16.Encode([]rune(b))
	return slices.Compare(ua, ub)
}

// jsPart is a piece of a rendering: a literal, or a value still to be rendered.
type jsPart struct {
	lit   string
	val   any
	isVal bool
}

// jsString converts a value to a string the way JS's String(v) does, including the nested types'
// toString (types without one render as "[object Object]"). Nested elements, texts and arrays
// are expanded on a stack of parts still to write, not by recursion: a client decides how deeply
// they nest.
func jsString(v any) string {
	var b strings.Builder
	stack := []jsPart{{val: v, isVal: true}}
	var parts []jsPart
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !p.isVal {
			b.WriteString(p.lit)
			continue
		}
		parts = parts[:0]
		switch x := p.val.(type) {
		case *XmlElement:
			parts = x.parts()
		case *XmlText:
			parts = x.parts()
		case *XmlFragment:
			parts = x.childParts(parts)
		case []any:
			for i, e := range x {
				if i > 0 {
					parts = append(parts, jsPart{lit: ","})
				}
				switch e.(type) {
				case nil, encoding.Undefined:
				default:
					parts = append(parts, jsPart{val: e, isVal: true})
				}
			}
		default:
			b.WriteString(jsScalarString(x))
			continue
		}
		for i := len(parts) - 1; i >= 0; i-- {
			stack = append(stack, parts[i])
		}
	}
	return b.String()
}

// jsScalarString is jsString for the values that hold no others.
func jsScalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case encoding.Undefined:
		return "undefined"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case *Text:
		return x.String()
	case []byte:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = strconv.Itoa(int(e))
		}
		return strings.Join(parts, ",")
	}
	if f, ok := encoding.Float64(v); ok {
		return encoding.FormatNumber(f)
	}
	return "[object Object]"
}
