package crdt

import (
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/ysync/ysync/crdt/encoding"
)

// --- attribute lists -----------------------------------------------------------------------------

// attrKV is one attribute. A nil value is JS null.
type attrKV struct {
	key string
	val any
}

// attrList is a small ordered attribute collection. Yjs keeps formatting attributes in JS Maps
// (iteration in insertion order) and plain objects (integer-like keys first, then insertion
// order); the order decides in which order format items are created, so it is kept exactly.
// Texts rarely carry more than a few attributes, so a slice with linear lookups is fastest, and a
// nil list costs nothing on the plain-text path.
type attrList []attrKV

func (l attrList) index(key string) int {
	for i := range l {
		if l[i].key == key {
			return i
		}
	}
	return -1
}

// get returns the value under key, or encoding.Undefined{} when there is none.
func (l attrList) get(key string) any {
	if i := l.index(key); i >= 0 {
		return l[i].val
	}
	return encoding.Undefined{}
}

// getOrNull is JS's `m.get(key) ?? null`.
func (l attrList) getOrNull(key string) any {
	if i := l.index(key); i >= 0 {
		if _, u := l[i].val.(encoding.Undefined); !u {
			return l[i].val
		}
	}
	return nil
}

func (l attrList) has(key string) bool { return l.index(key) >= 0 }

// set is Map.set: an existing key keeps its position.
func (l *attrList) set(key string, val any) {
	if i := l.index(key); i >= 0 {
		(*l)[i].val = val
		return
	}
	*l = append(*l, attrKV{key, val})
}

// setObj is assignment to a property of a JS object: new integer-like keys go before the other
// keys, in ascending order.
func (l *attrList) setObj(key string, val any) {
	if i := l.index(key); i >= 0 {
		(*l)[i].val = val
		return
	}
	n, isIdx := arrayIndex(key)
	if !isIdx {
		*l = append(*l, attrKV{key, val})
		return
	}
	at := len(*l)
	for i, kv := range *l {
		m, ok := arrayIndex(kv.key)
		if !ok || m > n {
			at = i
			break
		}
	}
	*l = slices.Insert(*l, at, attrKV{key, val})
}

func (l *attrList) del(key string) {
	if i := l.index(key); i >= 0 {
		*l = slices.Delete(*l, i, i+1)
	}
}

func (l attrList) clone() attrList {
	if len(l) == 0 {
		return nil
	}
	return slices.Clone(l)
}

// toMap returns the attributes as a map, nil when there are none.
func (l attrList) toMap() map[string]any {
	if len(l) == 0 {
		return nil
	}
	m := make(map[string]any, len(l))
	for _, kv := range l {
		m[kv.key] = kv.val
	}
	return m
}

// arrayIndex reports whether key is a canonical array index ("0", "17"; below 2^32-1), which JS
// objects order before other keys.
func arrayIndex(key string) (uint64, bool) {
	if key == "" || len(key) > 10 || (len(key) > 1 && key[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(key, 10, 64)
	if err != nil || n >= math.MaxUint32 {
		return 0, false
	}
	return n, true
}

// attrsFromMap turns caller attributes into a JS-object-like list. Go maps have no order, so keys
// are taken in JS property order of a sorted object: integer-like keys ascending, then the others
// sorted.
func attrsFromMap(m map[string]any) attrList {
	if len(m) == 0 {
		return nil
	}
	l := make(attrList, 0, len(m))
	for k, v := range m {
		if _, undef := v.(encoding.Undefined); !undef { // undefined: as if absent
			l = append(l, attrKV{k, v})
		}
	}
	slices.SortFunc(l, func(a, b attrKV) int {
		an, aok := arrayIndex(a.key)
		bn, bok := arrayIndex(b.key)
		switch {
		case aok && bok:
			if an < bn {
				return -1
			}
			return 1
		case aok:
			return -1
		case bok:
			return 1
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	return l
}

func updateCurrentAttributes(attrs *attrList, f *ContentFormat) {
	if f.Value == nil {
		attrs.del(f.Key)
	} else {
		attrs.set(f.Key, f.Value)
	}
}

// --- JS equality ---------------------------------------------------------------------------------

// strictEqual is JS's ===: primitives by value (numbers numerically), objects by identity.
func strictEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case encoding.Undefined:
		_, ok := b.(encoding.Undefined)
		return ok
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && x != nil && y != nil && sameMap(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && len(x) > 0 && len(x) == len(y) && &x[0] == &y[0]
	case []byte:
		y, ok := b.([]byte)
		return ok && len(x) > 0 && len(x) == len(y) && &x[0] == &y[0]
	case *encoding.Object:
		y, ok := b.(*encoding.Object)
		return ok && x == y
	}
	if fa, ok := encoding.Float64(a); ok {
		fb, ok := encoding.Float64(b)
		return ok && fa == fb
	}
	return false
}

// sameMap reports whether two maps are the same map object (maps are references in Go, as
// objects are in JS).
func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// jsObject is a view of an object-like Any value (its own enumerable properties).
type jsObject interface {
	size() int
	each(f func(key string, val any) bool) bool
	prop(key string) (any, bool)
}

type mapObj map[string]any

func (m mapObj) size() int { return len(m) }
func (m mapObj) each(f func(string, any) bool) bool {
	for k, v := range m {
		if !f(k, v) {
			return false
		}
	}
	return true
}
func (m mapObj) prop(key string) (any, bool) { v, ok := m[key]; return v, ok }

type orderedObj struct{ o *encoding.Object }

func (o orderedObj) size() int { return len(o.o.Keys()) }
func (o orderedObj) each(f func(string, any) bool) bool {
	for _, k := range o.o.Keys() {
		v, _ := o.o.Get(k)
		if !f(k, v) {
			return false
		}
	}
	return true
}
func (o orderedObj) prop(key string) (any, bool) { return o.o.Get(key) }

type sliceObj []any

func (s sliceObj) size() int { return len(s) }
func (s sliceObj) each(f func(string, any) bool) bool {
	for i, v := range s {
		if !f(strconv.Itoa(i), v) {
			return false
		}
	}
	return true
}
func (s sliceObj) prop(key string) (any, bool) {
	if n, ok := arrayIndex(key); ok && n < uint64(len(s)) {
		return s[n], true
	}
	return nil, false
}

type bytesObj []byte

func (s bytesObj) size() int { return len(s) }
func (s bytesObj) each(f func(string, any) bool) bool {
	for i, v := range s {
		if !f(strconv.Itoa(i), float64(v)) {
			return false
		}
	}
	return true
}
func (s bytesObj) prop(key string) (any, bool) {
	if n, ok := arrayIndex(key); ok && n < uint64(len(s)) {
		return float64(s[n]), true
	}
	return nil, false
}

func asObject(v any) (jsObject, bool) {
	switch x := v.(type) {
	case map[string]any:
		return mapObj(x), x != nil
	case *encoding.Object:
		return orderedObj{x}, x != nil
	case []any:
		return sliceObj(x), true
	case []byte:
		return bytesObj(x), true
	}
	return nil, false
}

// equalAttrs is Yjs's attribute equality: a === b, or both are objects whose own properties are
// pairwise === (lib0's object.equalFlat). Nested objects therefore compare by identity, exactly
// as in Yjs.
func equalAttrs(a, b any) bool {
	if strictEqual(a, b) {
		return true
	}
	oa, ok := asObject(a)
	if !ok {
		return false
	}
	ob, ok := asObject(b)
	if !ok || oa.size() != ob.size() {
		return false
	}
	return oa.each(func(key string, val any) bool {
		bv, has := ob.prop(key)
		if _, undef := val.(encoding.Undefined); undef && !has {
			return false
		}
		if !has {
			bv = encoding.Undefined{}
		}
		return strictEqual(bv, val)
	})
}

// --- formatting algorithms (YText.js) ------------------------------------------------------------

// newTextItem creates and integrates an item with content c between pos.left and pos.right.
func (t *AbstractType) newTextItem(tx *Transaction, pos *textPosition, c Content) *Item {
	doc := tx.doc
	client := doc.clientID
	left, right := pos.left, pos.right
	it := newItem(ID{client, doc.store.getState(client)}, left, idOf(left), left != nil,
		right, idOfStart(right), right != nil, t, "", false, c)
	it.integrate(tx, 0)
	return it
}

// insertNegatedAttributes ends, after inserted content, the attributes that insertAttributes
// started before it.
func (t *AbstractType) insertNegatedAttributes(tx *Transaction, pos *textPosition, negated attrList) {
	// Check whether the attributes really need to be removed.
	for pos.right != nil {
		r := pos.right
		if !r.Deleted() {
			f, ok := r.Content.(*ContentFormat)
			if !ok || !equalAttrs(negated.get(f.Key), f.Value) {
				break
			}
			negated.del(f.Key)
		}
		pos.forward()
	}
	for _, kv := range negated {
		pos.right = t.newTextItem(tx, pos, &ContentFormat{Key: kv.key, Value: kv.val})
		pos.forward()
	}
}

// minimizeAttributeChanges moves right over deleted items and format items that already set what
// attrs asks for.
func minimizeAttributeChanges(pos *textPosition, attrs attrList) {
	for pos.right != nil {
		r := pos.right
		if !r.Deleted() {
			f, ok := r.Content.(*ContentFormat)
			if !ok || !equalAttrs(attrs.getOrNull(f.Key), f.Value) {
				break
			}
		}
		pos.forward()
	}
}

// insertAttributes starts the attributes of attrs that differ from the current ones and returns
// the values to restore after the content (nil for attributes that were not set).
func (t *AbstractType) insertAttributes(tx *Transaction, pos *textPosition, attrs attrList) attrList {
	var negated attrList
	for _, kv := range attrs {
		cur := pos.attrs.getOrNull(kv.key)
		if !equalAttrs(cur, kv.val) {
			negated.set(kv.key, cur)
			pos.right = t.newTextItem(tx, pos, &ContentFormat{Key: kv.key, Value: kv.val})
			pos.forward()
		}
	}
	return negated
}

// insertText inserts content c at pos with exactly the attributes attrs (Yjs's insertText).
func (t *AbstractType) insertText(tx *Transaction, pos *textPosition, c Content, attrs attrList) {
	for _, kv := range pos.attrs {
		if !attrs.has(kv.key) {
			attrs.setObj(kv.key, nil)
		}
	}
	minimizeAttributeChanges(pos, attrs)
	negated := t.insertAttributes(tx, pos, attrs)
	if t.markers != nil {
		t.markers.updateMarkerChanges(pos.index, c.Len())
	}
	index := pos.index
	pos.right = t.newTextItem(tx, pos, c)
	pos.index = index
	pos.forward()
	t.insertNegatedAttributes(tx, pos, negated)
}

// formatText applies attrs to length units after pos (Yjs's formatText).
func (t *AbstractType) formatText(tx *Transaction, pos *textPosition, length int, attrs attrList) {
	minimizeAttributeChanges(pos, attrs)
	negated := t.insertAttributes(tx, pos, attrs)
	// Iterate until the first non-format item or the end; delete the formats that attrs
	// overrides. Also look at the formats after the range so no redundant negations are added.
loop:
	for pos.right != nil && (length > 0 || (len(negated) > 0 && (pos.right.Deleted() || isFormat(pos.right)))) {
		r := pos.right
		if !r.Deleted() {
			switch c := r.Content.(type) {
			case *ContentFormat:
				if i := attrs.index(c.Key); i >= 0 {
					if equalAttrs(attrs[i].val, c.Value) {
						negated.del(c.Key)
					} else {
						if length == 0 {
							// no need to further extend negated
							break loop
						}
						negated.set(c.Key, c.Value)
					}
					r.delete(tx)
				} else {
					pos.attrs.set(c.Key, c.Value)
				}
			default:
				if length < r.Length {
					tx.doc.store.getItemCleanStart(tx, ID{r.ID.Client, r.ID.Clock + length})
				}
				length -= r.Length
			}
		}
		pos.forward()
	}
	// Quill assumes that a document ends with a newline; one is inserted only when a format
	// reaches past the end of the text.
	if length > 0 {
		nl := make([]byte, length)
		for i := range nl {
			nl[i] = '\n'
		}
		pos.right = t.newTextItem(tx, pos, newContentString(string(nl)))
		pos.forward()
	}
	t.insertNegatedAttributes(tx, pos, negated)
}

func isFormat(it *Item) bool {
	_, ok := it.Content.(*ContentFormat)
	return ok
}

// deleteText deletes length units after pos and cleans up the format items left in the gap.
func (t *AbstractType) deleteText(tx *Transaction, pos *textPosition, length int) {
	startLength := length
	startAttrs := pos.attrs.clone()
	start := pos.right
	for length > 0 && pos.right != nil {
		r := pos.right
		if !r.Deleted() {
			switch r.Content.(type) {
			case *ContentString, *ContentEmbed, *ContentType:
				if length < r.Length {
					tx.doc.store.getItemCleanStart(tx, ID{r.ID.Client, r.ID.Clock + length})
				}
				length -= r.Length
				r.delete(tx)
			}
		}
		pos.forward()
	}
	if start != nil {
		cleanupFormattingGap(tx, start, pos.right, startAttrs, &pos.attrs)
	}
	if t.markers != nil {
		t.markers.updateMarkerChanges(pos.index, -startLength+length)
	}
}

// cleanupFormattingGap deletes the format items between start and the next live countable item
// that are overwritten or redundant, and returns how many it deleted. curr is where the caller's
// cursor is; currAttrs (the attributes at curr) is corrected for deleted formats before it.
func cleanupFormattingGap(tx *Transaction, start, curr *Item, startAttrs attrList, currAttrs *attrList) int {
	end := start
	var endFormats map[string]*ContentFormat
	for end != nil && (!end.countable() || end.Deleted()) {
		if !end.Deleted() {
			if cf, ok := end.Content.(*ContentFormat); ok {
				if endFormats == nil {
					endFormats = make(map[string]*ContentFormat)
				}
				endFormats[cf.Key] = cf
			}
		}
		end = end.Right
	}
	cleanups := 0
	reachedCurr := false
	for start != end {
		if curr == start {
			reachedCurr = true
		}
		if !start.Deleted() {
			if cf, ok := start.Content.(*ContentFormat); ok {
				startVal := startAttrs.getOrNull(cf.Key)
				if endFormats[cf.Key] != cf || strictEqual(startVal, cf.Value) {
					// Either this format is overwritten or it is not necessary because the
					// attribute already existed.
					start.delete(tx)
					cleanups++
					if !reachedCurr && strictEqual(currAttrs.getOrNull(cf.Key), cf.Value) && !strictEqual(startVal, cf.Value) {
						if startVal == nil {
							currAttrs.del(cf.Key)
						} else {
							currAttrs.set(cf.Key, startVal)
						}
					}
				}
				if !reachedCurr && !start.Deleted() {
					updateCurrentAttributes(currAttrs, cf)
				}
			}
		}
		start = start.Right
	}
	return cleanups
}

// cleanupContextlessFormattingGap deletes duplicate format items (same key) in the gap of
// non-content items around item, keeping the last one of each key.
func cleanupContextlessFormattingGap(tx *Transaction, item *Item) {
	// iterate until item.right is null or content
	for item != nil && item.Right != nil && (item.Right.Deleted() || !item.Right.countable()) {
		item = item.Right
	}
	var seen []string
	// iterate back until a content item is found
	for item != nil && (item.Deleted() || !item.countable()) {
		if !item.Deleted() {
			if cf, ok := item.Content.(*ContentFormat); ok {
				if slices.Contains(seen, cf.Key) {
					item.delete(tx)
				} else {
					seen = append(seen, cf.Key)
				}
			}
		}
		item = item.Left
	}
}

// cleanupYTextFormatting removes every unnecessary format item of t and returns how many it
// removed (Yjs's cleanupYTextFormatting).
func cleanupYTextFormatting(t *AbstractType) int {
	res := 0
	t.doc.Transact(func(tx *Transaction) {
		start := t.start
		var startAttrs, curAttrs attrList
		for end := t.start; end != nil; end = end.Right {
			if end.Deleted() {
				continue
			}
			if cf, ok := end.Content.(*ContentFormat); ok {
				updateCurrentAttributes(&curAttrs, cf)
				continue
			}
			res += cleanupFormattingGap(tx, start, end, startAttrs, &curAttrs)
			startAttrs = curAttrs.clone()
			start = end
		}
	}, nil)
	return res
}

// CleanupFormatting removes redundant format items from the text (Yjs's experimental
// cleanupYTextFormatting) and returns how many it removed.
func (t *Text) CleanupFormatting() int {
	if t.doc == nil {
		return 0
	}
	return cleanupYTextFormatting(t.AbstractType)
}

// needsFormattingCleanup reports whether a finished transaction calls for Yjs's formatting cleanup:
// it was remote and changed a (live) text that contains formatting. This is where YText's
// _callObserver sets transaction._needFormattingCleanup.
func needsFormattingCleanup(tx *Transaction) bool {
	if tx.needFormattingCleanup {
		return true
	}
	if tx.Local {
		return false
	}
	for _, t := range tx.changed.list {
		if (t.kind == KindText || t.kind == KindXmlText) && t.hasFormatting && (t.item == nil || !t.item.Deleted()) {
			tx.needFormattingCleanup = true
			return true
		}
	}
	return false
}

// cleanupTextAfterTransaction is Yjs's cleanupYTextAfterTransaction: after a remote transaction
// it removes format items made redundant by concurrent formatting, in a new local transaction.
func cleanupTextAfterTransaction(tx *Transaction) {
	doc := tx.doc
	store := doc.store
	var full []*AbstractType
	addFull := func(t *AbstractType) {
		if t != nil && !slices.Contains(full, t) {
			full = append(full, t)
		}
	}
	// Was a format item inserted?
	for _, client := range sortedClientsDesc(tx.afterState) {
		after := tx.afterState[client]
		before := tx.beforeState[client]
		if after == before {
			continue
		}
		structs := store.clients[client]
		for i := max(findIndexSS(structs, before), 0); i >= 0 && i < len(structs); i++ {
			it, ok := structs[i].(*Item)
			if !ok || it.Deleted() || it.ID.Clock+it.Length <= before {
				continue
			}
			if _, ok := it.Content.(*ContentFormat); ok {
				addFull(it.Parent)
			}
		}
	}
	doc.Transact(func(t *Transaction) {
		for _, client := range sortedClientsDesc(tx.deleteSet.clients) {
			for _, d := range tx.deleteSet.clients[client] {
				store.iterateStructs(tx, client, d.Clock, d.Len, func(st abstractStruct) {
					item, ok := st.(*Item)
					if !ok || item.Parent == nil || !item.Parent.hasFormatting || slices.Contains(full, item.Parent) {
						return
					}
					if _, ok := item.Content.(*ContentFormat); ok {
						addFull(item.Parent)
					} else {
						// No formatting attribute was inserted or deleted: a contextless cleanup
						// suffices.
						cleanupContextlessFormattingGap(t, item)
					}
				})
			}
		}
		// A format item was inserted or deleted: clean the whole type.
		for _, yt := range full {
			cleanupYTextFormatting(yt)
		}
	}, nil)
}
