package crdt

import "github.com/ysync/ysync/crdt/encoding"

// Walks over nested types. A document can nest types as deeply as its updates say (a client can
// send an update of millions of arrays, each inside the previous one), so nothing here recurses:
// each walk keeps its own stack on the heap, where the depth costs memory proportional to what
// was received instead of Go stack, whose overflow is a fatal error that recover cannot catch.
// Every walk visits items in the order the recursive Yjs functions do, so the transactions'
// delete sets, merge lists and changed types come out the same.

// deleteFrame is one type whose children deleteWalk is deleting: first its list, then its map
// entries in key order (as Yjs's ContentType.delete).
type deleteFrame struct {
	t     *AbstractType
	next  *Item    // next list item to visit
	keys  []string // map keys, set once the list is done
	ki    int
	inMap bool
}

// deleteWalk deletes the children of t (nil: nothing), their children and so on, as the
// recursive ContentType.delete of Yjs does.
func deleteWalk(tx *Transaction, t *AbstractType) {
	if t == nil {
		return
	}
	stack := []deleteFrame{{t: t, next: t.start}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		var item *Item
		if !f.inMap {
			if f.next != nil {
				item = f.next
				f.next = item.Right
			} else {
				f.inMap = true
				f.keys = f.t.sortedKeys()
			}
		}
		if item == nil && f.inMap {
			if f.ki < len(f.keys) {
				item = f.t.m[f.keys[f.ki]]
				f.ki++
			} else {
				tx.changed.remove(f.t)
				stack = stack[:len(stack)-1]
				continue
			}
		}
		if item == nil {
			continue
		}
		if !item.Deleted() {
			if child := item.markDeletedIn(tx); child != nil {
				stack = append(stack, deleteFrame{t: child, next: child.start})
			}
		} else if item.ID.Clock < tx.before(item.ID.Client) {
			// Already deleted before: it will be collected, so try merging it afterwards.
			tx.mergeStructs = append(tx.mergeStructs, item)
		}
	}
}

// gcWalk turns every item of t, and of the types nested in it, into GC structs and empties the
// types, as the recursive ContentType.gc of Yjs does.
func gcWalk(s *structStore, t *AbstractType) {
	stack := []*AbstractType{t}
	gcItem := func(item *Item) {
		if ct, ok := item.Content.(*ContentType); ok {
			stack = append(stack, ct.Type)
		} else {
			item.Content.gc(s)
		}
		s.replaceStruct(item, &GC{ID: item.ID, Length: item.Length})
	}
	for len(stack) > 0 {
		t := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for item := t.start; item != nil; item = item.Right {
			gcItem(item)
		}
		t.start = nil
		for _, item := range t.m {
			for ; item != nil; item = item.Left {
				gcItem(item)
			}
		}
		t.m = nil
	}
}

// jsonFrame is one Map or Array whose plain value jsonWalk is building.
type jsonFrame struct {
	vals []any
	keys []string // map keys, aligned with vals; nil for an array
	arr  []any
	obj  map[string]any
	i    int
}

func newJSONFrame(t *AbstractType) jsonFrame {
	if t.kind == KindArray {
		vals := t.listValues()
		return jsonFrame{vals: vals, arr: make([]any, len(vals))}
	}
	f := jsonFrame{keys: make([]string, 0, len(t.m)), vals: make([]any, 0, len(t.m))}
	for k, it := range t.m {
		if it.Deleted() {
			continue
		}
		vals := it.Content.Values()
		if len(vals) == 0 {
			continue
		}
		f.keys = append(f.keys, k)
		f.vals = append(f.vals, vals[it.Length-1])
	}
	f.obj = make(map[string]any, len(f.keys))
	return f
}

func (f *jsonFrame) set(i int, v any) {
	if f.keys != nil {
		f.obj[f.keys[i]] = v
	} else {
		f.arr[i] = v
	}
}

func (f *jsonFrame) result() any {
	if f.keys != nil {
		return f.obj
	}
	return f.arr
}

// jsonFrameType returns the type behind v when its plain value is a map or an array of further
// values (Y.Map, Y.Array, Y.XmlHook), else nil.
func jsonFrameType(v any) *AbstractType {
	y, ok := v.(YType)
	if !ok {
		return nil
	}
	switch t := y.abstract(); t.kind {
	case KindMap, KindArray, KindXmlHook:
		return t
	}
	return nil
}

// jsonWalk converts a Map, Array or XmlHook and everything nested in it to plain Go values, as
// the Yjs types' toJSON do.
func jsonWalk(t *AbstractType) any {
	stack := []jsonFrame{newJSONFrame(t)}
	for {
		f := &stack[len(stack)-1]
		if f.i == len(f.vals) {
			out := f.result()
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return out
			}
			parent := &stack[len(stack)-1]
			parent.set(parent.i-1, out)
			continue
		}
		v := f.vals[f.i]
		f.i++
		if ct := jsonFrameType(v); ct != nil {
			stack = append(stack, newJSONFrame(ct))
			continue
		}
		f.set(f.i-1, leafJSON(v))
	}
}

// leafJSON converts a value that holds no Map or Array for ToJSON.
func leafJSON(v any) any {
	switch x := v.(type) {
	case *Text:
		return x.String()
	case YType:
		return x.abstract().toJSON()
	case *SubDoc:
		return x
	}
	return encoding.ToPlain(v)
}
