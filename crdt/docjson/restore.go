package docjson

import (
	"fmt"
	"reflect"
	"unicode/utf16"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/encoding"
)

// Restore makes live's content what target's is, by ordinary edits on live: run it inside one
// transaction on the goroutine that owns live, so that the edits reach everyone as one update
// and concurrent edits of others merge with them as usual. It changes as little as the kinds
// allow: map keys one by one (nested maps, arrays and texts in place), arrays by the run
// between their common prefix and suffix, texts by one delete and the inserts between their
// common prefix and suffix (formatting included), XML by replacing the children when the XML
// differs. A root of live that target lacks is emptied. A root whose kind differs between the
// two (which Yjs cannot change) is emptied and reported in skipped. target is only read.
func Restore(live, target *crdt.Doc) (skipped []string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("docjson: restore: panic: %v", v)
		}
	}()
	want := Roots(target)
	have := Roots(live)
	for _, name := range sortedRoots(live) {
		if _, ok := want[name]; ok {
			continue
		}
		if k, ok := have[name]; ok {
			if err := clearRoot(live, name, k); err != nil {
				return skipped, err
			}
		}
	}
	for _, name := range sortedRoots(target) {
		tk, ok := want[name]
		if !ok {
			continue
		}
		if lk, ok := have[name]; ok && lk != tk {
			if err := clearRoot(live, name, lk); err != nil {
				return skipped, err
			}
			skipped = append(skipped, name)
			continue
		}
		tv, _ := typed(target, name)
		var lv any
		switch tk {
		case KindMap:
			lv = live.GetMap(name)
		case KindArray:
			lv = live.GetArray(name)
		case KindText:
			lv = live.GetText(name)
		case KindXmlFragment:
			lv = live.GetXmlFragment(name)
		default:
			skipped = append(skipped, name)
			continue
		}
		if err := restoreValue(lv, tv, 0); err != nil {
			return skipped, fmt.Errorf("restore root %q: %w", name, err)
		}
	}
	return skipped, nil
}

func clearRoot(doc *crdt.Doc, name string, kind uint8) error {
	switch kind {
	case KindMap:
		m := doc.GetMap(name)
		for _, k := range m.Keys() {
			m.Delete(k)
		}
	case KindArray:
		if a := doc.GetArray(name); a.Len() > 0 {
			return a.Delete(0, a.Len())
		}
	case KindText:
		if t := doc.GetText(name); t.Len() > 0 {
			return t.Delete(0, t.Len())
		}
	case KindXmlFragment:
		if f := doc.GetXmlFragment(name); f.Len() > 0 {
			return f.Delete(0, f.Len())
		}
	}
	return nil
}

// restoreValue edits the integrated type lv into what tv holds; both have the same kind.
func restoreValue(lv, tv any, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	switch l := lv.(type) {
	case *crdt.Map:
		return restoreMap(l, tv.(*crdt.Map), depth)
	case *crdt.Array:
		return restoreArray(l, tv.(*crdt.Array), depth)
	case *crdt.Text:
		return restoreText(l, tv.(*crdt.Text), depth)
	case *crdt.XmlFragment:
		t := tv.(*crdt.XmlFragment)
		if l.String() == t.String() {
			return nil
		}
		if l.Len() > 0 {
			if err := l.Delete(0, l.Len()); err != nil {
				return err
			}
		}
		kids, err := copyAll(t.ToArray(), depth)
		if err != nil || len(kids) == 0 {
			return err
		}
		return l.Insert(0, kids...)
	}
	return fmt.Errorf("docjson: cannot restore a %T", lv)
}

func restoreMap(l, t *crdt.Map, depth int) error {
	// A key whose entry holds no value (hostile input can make one) does not render; it
	// counts as absent, as in Render.
	for _, k := range l.Keys() {
		if _, ok := t.Get(k); !ok {
			l.Delete(k)
		}
	}
	for _, k := range t.Keys() {
		tv, ok := t.Get(k)
		if !ok {
			continue
		}
		if lv, ok := l.Get(k); ok {
			if same, err := equal(lv, tv, depth); err != nil {
				return err
			} else if same {
				continue
			}
			if inPlace(lv, tv) {
				if err := restoreValue(lv, tv, depth+1); err != nil {
					return err
				}
				continue
			}
		}
		c, err := copyValue(tv, depth+1)
		if err != nil {
			return err
		}
		if err := l.Set(k, c); err != nil {
			return err
		}
	}
	return nil
}

// inPlace reports whether lv can be edited into tv instead of being replaced.
func inPlace(lv, tv any) bool {
	switch lv.(type) {
	case *crdt.Map:
		_, ok := tv.(*crdt.Map)
		return ok
	case *crdt.Array:
		_, ok := tv.(*crdt.Array)
		return ok
	case *crdt.Text:
		_, ok := tv.(*crdt.Text)
		return ok
	}
	return false
}

func restoreArray(l, t *crdt.Array, depth int) error {
	lv, tv := l.ToArray(), t.ToArray()
	p := 0
	for p < len(lv) && p < len(tv) {
		same, err := equal(lv[p], tv[p], depth)
		if err != nil {
			return err
		}
		if !same {
			break
		}
		p++
	}
	s := 0
	for s < len(lv)-p && s < len(tv)-p {
		same, err := equal(lv[len(lv)-1-s], tv[len(tv)-1-s], depth)
		if err != nil {
			return err
		}
		if !same {
			break
		}
		s++
	}
	lm, tm := lv[p:len(lv)-s], tv[p:len(tv)-s]
	if len(lm) == len(tm) {
		// The same number of elements changed: nested types of the same kind are edited in
		// place (cursors and concurrent edits inside them survive), the rest replaced one by one.
		allInPlace := true
		for i := range lm {
			if !inPlace(lm[i], tm[i]) {
				allInPlace = false
				break
			}
		}
		if allInPlace {
			for i := range lm {
				if err := restoreValue(lm[i], tm[i], depth+1); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if len(lm) > 0 {
		if err := l.Delete(p, len(lm)); err != nil {
			return err
		}
	}
	vals, err := copyAll(tm, depth)
	if err != nil || len(vals) == 0 {
		return err
	}
	return l.Insert(p, vals...)
}

// unit is one UTF-16 code unit of text, or one embed, with its formatting (as canonical JSON).
type unit struct {
	code  uint16
	embed any    // non-nil for an embed or an embedded type
	key   string // canonical JSON of the embed
	attrs string
	amap  map[string]any
}

func textUnits(t *crdt.Text, depth int) ([]unit, error) {
	var out []unit
	for _, op := range t.ToDelta() {
		attrs := ""
		if len(op.Attributes) > 0 {
			s, err := canonical(op.Attributes)
			if err != nil {
				return nil, err
			}
			attrs = s
		}
		if str, ok := op.Insert.(string); ok {
			for _, c := range utf16.Encode([]rune(str)) {
				out = append(out, unit{code: c, attrs: attrs, amap: op.Attributes})
			}
			continue
		}
		r, err := value(op.Insert, depth+1)
		if err != nil {
			return nil, err
		}
		key, err := canonical(r)
		if err != nil {
			return nil, err
		}
		out = append(out, unit{embed: op.Insert, key: fmt.Sprintf("%T:%s", op.Insert, key), attrs: attrs, amap: op.Attributes})
	}
	return out, nil
}

func (u unit) same(v unit) bool {
	return u.code == v.code && (u.embed == nil) == (v.embed == nil) && u.key == v.key && u.attrs == v.attrs
}

func restoreText(l, t *crdt.Text, depth int) error {
	a, err := textUnits(l, depth)
	if err != nil {
		return err
	}
	b, err := textUnits(t, depth)
	if err != nil {
		return err
	}
	p := 0
	for p < len(a) && p < len(b) && a[p].same(b[p]) {
		p++
	}
	if p > 0 && a[p-1].embed == nil && utf16.IsSurrogate(rune(a[p-1].code)) && a[p-1].code < 0xdc00 {
		p-- // never between the halves of a surrogate pair
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s].same(b[len(b)-1-s]) {
		s++
	}
	if s > 0 {
		if u := a[len(a)-s]; u.embed == nil && u.code >= 0xdc00 && u.code <= 0xdfff {
			s--
		}
	}
	del := len(a) - p - s
	ins := b[p : len(b)-s]
	if del == 0 && len(ins) == 0 {
		return nil
	}
	var ops []crdt.DeltaOp
	if p > 0 {
		ops = append(ops, crdt.DeltaOp{Retain: p})
	}
	if del > 0 {
		ops = append(ops, crdt.DeltaOp{Delete: del})
	}
	for i := 0; i < len(ins); {
		u := ins[i]
		attrs := u.amap
		if attrs == nil {
			attrs = map[string]any{}
		}
		if u.embed != nil {
			c, err := copyValue(u.embed, depth+1)
			if err != nil {
				return err
			}
			ops = append(ops, crdt.DeltaOp{Insert: c, Attributes: attrs})
			i++
			continue
		}
		j := i
		var codes []uint16
		for j < len(ins) && ins[j].embed == nil && ins[j].attrs == u.attrs {
			codes = append(codes, ins[j].code)
			j++
		}
		ops = append(ops, crdt.DeltaOp{Insert: string(utf16.Decode(codes)), Attributes: attrs})
		i = j
	}
	return l.ApplyDelta(ops)
}

// equal reports whether two stored values render the same (shared types by kind and content,
// texts with their formatting; numbers by value).
func equal(a, b any, depth int) (bool, error) {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		_, an := encoding.Float64(a)
		_, bn := encoding.Float64(b)
		if !an || !bn {
			return false, nil
		}
	}
	if at, ok := a.(*crdt.Text); ok {
		ua, err := textUnits(at, depth)
		if err != nil {
			return false, err
		}
		ub, err := textUnits(b.(*crdt.Text), depth)
		if err != nil {
			return false, err
		}
		if len(ua) != len(ub) {
			return false, nil
		}
		for i := range ua {
			if !ua[i].same(ub[i]) {
				return false, nil
			}
		}
		return true, nil
	}
	ra, err := value(a, depth+1)
	if err != nil {
		return false, err
	}
	rb, err := value(b, depth+1)
	if err != nil {
		return false, err
	}
	ca, err := canonical(ra)
	if err != nil {
		return false, err
	}
	cb, err := canonical(rb)
	if err != nil {
		return false, err
	}
	return ca == cb, nil
}

// canonical is the JSON text of a rendered value with object keys sorted; BigInts are written
// as numbers, undefined is told apart from null.
func canonical(v any) (string, error) {
	o := encoding.NewObject()
	o.Set("v", tagUndefined(encoding.ToPlain(v)))
	b, err := o.MarshalJSON()
	return string(b), err
}

func tagUndefined(v any) any {
	switch x := v.(type) {
	case encoding.Undefined:
		return map[string]any{"$undefined": true}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = tagUndefined(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = tagUndefined(e)
		}
		return a
	}
	return v
}

func copyAll(vals []any, depth int) ([]any, error) {
	out := make([]any, len(vals))
	for i, v := range vals {
		c, err := copyValue(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// copyValue returns v ready to be inserted into another document: shared types as preliminary
// copies of their content, other values as they are.
func copyValue(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, ErrTooDeep
	}
	switch x := v.(type) {
	case *crdt.Map:
		m := crdt.NewMap()
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			c, err := copyValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			if err := m.Set(k, c); err != nil {
				return nil, err
			}
		}
		return m, nil
	case *crdt.Array:
		a := crdt.NewArray()
		vals, err := copyAll(x.ToArray(), depth)
		if err != nil {
			return nil, err
		}
		if len(vals) > 0 {
			if err := a.Push(vals...); err != nil {
				return nil, err
			}
		}
		return a, nil
	case *crdt.Text:
		t := crdt.NewText("")
		return t, copyDelta(x.ToDelta(), func(ops []crdt.DeltaOp) error { return t.ApplyDelta(ops) }, depth)
	case *crdt.XmlText:
		t := crdt.NewXmlText("")
		return t, copyDelta(x.ToDelta(), func(ops []crdt.DeltaOp) error { return t.ApplyDelta(ops) }, depth)
	case *crdt.XmlElement:
		e := crdt.NewXmlElement(x.NodeName())
		for k, a := range x.Attributes() {
			if err := e.SetAttribute(k, a); err != nil {
				return nil, err
			}
		}
		kids, err := copyAll(x.ToArray(), depth)
		if err != nil {
			return nil, err
		}
		if len(kids) > 0 {
			if err := e.Insert(0, kids...); err != nil {
				return nil, err
			}
		}
		return e, nil
	case *crdt.XmlFragment:
		f := crdt.NewXmlFragment()
		kids, err := copyAll(x.ToArray(), depth)
		if err != nil {
			return nil, err
		}
		if len(kids) > 0 {
			if err := f.Insert(0, kids...); err != nil {
				return nil, err
			}
		}
		return f, nil
	case *crdt.XmlHook:
		h := crdt.NewXmlHook(x.HookName())
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			c, err := copyValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			if err := h.Set(k, c); err != nil {
				return nil, err
			}
		}
		return h, nil
	case *crdt.AbstractType:
		return nil, fmt.Errorf("docjson: cannot copy a nested type of unknown kind")
	}
	return v, nil
}

func copyDelta(delta []crdt.Delta, apply func([]crdt.DeltaOp) error, depth int) error {
	if len(delta) == 0 {
		return nil
	}
	ops := make([]crdt.DeltaOp, len(delta))
	for i, d := range delta {
		c, err := copyValue(d.Insert, depth+1)
		if err != nil {
			return err
		}
		attrs := d.Attributes
		if attrs == nil {
			attrs = map[string]any{}
		}
		ops[i] = crdt.DeltaOp{Insert: c, Attributes: attrs}
	}
	return apply(ops)
}
