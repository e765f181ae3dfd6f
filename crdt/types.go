package crdt

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

// Kinds of shared types (Yjs's type refs on the wire).
const (
	KindArray       uint8 = 0
	KindMap         uint8 = 1
	KindText        uint8 = 2
	KindXmlElement  uint8 = 3
	KindXmlFragment uint8 = 4
	KindXmlHook     uint8 = 5
	KindXmlText     uint8 = 6
	// kindUnknown is a root type that arrived in an update but was never asked for by kind.
	kindUnknown uint8 = 255
)

// ErrIndexOutOfRange is returned when a position is beyond a type's length.
var ErrIndexOutOfRange = errors.New("crdt: index out of range")

// AbstractType is the state shared by every Yjs type: its list of items, its map entries and its
// place in the document. Concrete types (Map, Array, Text, Xml*) wrap it.
type AbstractType struct {
	doc      *Doc
	item     *Item // the item holding this type; nil for root types
	start    *Item
	m        map[string]*Item
	length   int
	kind     uint8
	nodeName string // XmlElement node name, XmlHook hook name
	rootName string // key in the document for root types
	markers  *searchMarkers
	// hasFormatting is set once a format item was integrated into this text.
	hasFormatting bool
	// prelim holds content given to a type before it was integrated into a document.
	prelim func(tx *Transaction)
	// xmlPrelim holds the children and attributes given to a preliminary XML type (xml.go).
	xmlPrelim *xmlPrelim
	api       any
}

func newAbstractType(kind uint8) *AbstractType {
	t := &AbstractType{kind: kind}
	switch kind {
	case KindArray, KindText, KindXmlFragment, KindXmlElement, KindXmlText:
		t.markers = &searchMarkers{}
	}
	return t
}

// Kind returns the type's kind (KindMap, KindText, ...).
func (t *AbstractType) Kind() uint8 { return t.kind }

// Doc returns the document the type is integrated into, or nil for a preliminary type.
func (t *AbstractType) Doc() *Doc { return t.doc }

// Len returns the number of countable units in the type's list (0 for maps).
func (t *AbstractType) Len() int { return t.length }

// Item returns the item that holds this type, or nil for a root type.
func (t *AbstractType) Item() *Item { return t.item }

func (t *AbstractType) mapSet(key string, it *Item) {
	if t.m == nil {
		t.m = make(map[string]*Item)
	}
	t.m[key] = it
}

func (t *AbstractType) sortedKeys() []string {
	keys := make([]string, 0, len(t.m))
	for k := range t.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// integrate attaches a preliminary type to the document through item.
func (t *AbstractType) integrate(doc *Doc, item *Item) {
	t.doc = doc
	t.item = item
	if t.kind == kindUnknown {
		return
	}
	if t.prelim != nil && doc.tx != nil {
		// Preliminary content is inserted right after the type itself, in the same transaction,
		// so its clocks follow the type's item as in Yjs.
		fill := t.prelim
		t.prelim = nil
		fill(doc.tx)
	}
}

// copyType returns an empty type of the same kind (as Yjs's _copy).
func (t *AbstractType) copyType() *AbstractType {
	c := newAbstractType(t.kind)
	c.nodeName = t.nodeName
	return c
}

// API returns the typed wrapper (*Map, *Array, *Text, *XmlFragment, *XmlElement, *XmlText,
// *XmlHook) for this type.
func (t *AbstractType) API() any {
	if t.api != nil {
		return t.api
	}
	switch t.kind {
	case KindArray:
		t.api = &Array{t}
	case KindMap:
		t.api = &Map{t}
	case KindText:
		t.api = &Text{t}
	case KindXmlFragment:
		t.api = &XmlFragment{t}
	case KindXmlElement:
		t.api = &XmlElement{XmlFragment{t}}
	case KindXmlText:
		t.api = &XmlText{Text{t}}
	case KindXmlHook:
		t.api = &XmlHook{Map{t}}
	default:
		return t
	}
	return t.api
}

// YType is implemented by every shared type.
type YType interface {
	abstract() *AbstractType
}

func (t *AbstractType) abstract() *AbstractType { return t }

// --- search markers ------------------------------------------------------------------------------

// maxSearchMarkers bounds the cached positions per type, as in Yjs.
const maxSearchMarkers = 80

type searchMarker struct {
	p         *Item
	index     int
	timestamp uint64
}

// searchMarkers caches (item, index) pairs of a list type so that positional lookups start near
// their target instead of at the list's head. Timestamps are per type: no global state.
type searchMarkers struct {
	list  []*searchMarker
	clock uint64
}

func (sm *searchMarkers) tick() uint64 { sm.clock++; return sm.clock }

func (sm *searchMarkers) overwrite(m *searchMarker, p *Item, index int) {
	m.p.setMarker(false)
	m.p = p
	p.setMarker(true)
	m.index = index
	m.timestamp = sm.tick()
}

func (sm *searchMarkers) mark(p *Item, index int) *searchMarker {
	if len(sm.list) >= maxSearchMarkers {
		oldest := sm.list[0]
		for _, m := range sm.list[1:] {
			if m.timestamp < oldest.timestamp {
				oldest = m
			}
		}
		sm.overwrite(oldest, p, index)
		return oldest
	}
	p.setMarker(true)
	m := &searchMarker{p: p, index: index, timestamp: sm.tick()}
	sm.list = append(sm.list, m)
	return m
}

// replaceItem repoints markers at right to left after the two were merged.
func (sm *searchMarkers) replaceItem(right, left *Item, adjust bool, leftLen int) {
	for _, m := range sm.list {
		if m.p == right {
			m.p = left
			if adjust {
				m.index -= leftLen
			}
		}
	}
}

// findMarker returns a marker at or near index, creating or moving one.
func (t *AbstractType) findMarker(index int) *searchMarker {
	sm := t.markers
	if t.start == nil || index == 0 || sm == nil {
		return nil
	}
	var marker *searchMarker
	for _, m := range sm.list {
		if marker == nil || abs(index-m.index) < abs(index-marker.index) {
			marker = m
		}
	}
	p := t.start
	pindex := 0
	if marker != nil {
		p = marker.p
		pindex = marker.index
		marker.timestamp = sm.tick()
	}
	for p.Right != nil && pindex < index {
		if !p.Deleted() && p.countable() {
			if index < pindex+p.Length {
				break
			}
			pindex += p.Length
		}
		p = p.Right
	}
	for p.Left != nil && pindex > index {
		p = p.Left
		if !p.Deleted() && p.countable() {
			pindex -= p.Length
		}
	}
	// Make sure p cannot be merged with its left neighbour, which would invalidate the marker.
	for p.Left != nil && p.Left.ID.Client == p.ID.Client && p.Left.ID.Clock+p.Left.Length == p.ID.Clock {
		p = p.Left
		if !p.Deleted() && p.countable() {
			pindex -= p.Length
		}
	}
	if marker != nil && abs(marker.index-pindex) < t.length/maxSearchMarkers {
		sm.overwrite(marker, p, pindex)
		return marker
	}
	return sm.mark(p, pindex)
}

// updateMarkerChanges shifts markers after an insertion (n > 0) or deletion (n < 0) at index.
func (sm *searchMarkers) updateMarkerChanges(index, n int) {
	for i := len(sm.list) - 1; i >= 0; i-- {
		m := sm.list[i]
		if n > 0 {
			p := m.p
			p.setMarker(false)
			// Move the marker to the previous undeleted countable item so positions stay exact.
			for p != nil && (p.Deleted() || !p.countable()) {
				p = p.Left
				if p != nil && !p.Deleted() && p.countable() {
					m.index -= p.Length
				}
			}
			if p == nil || p.marker() {
				sm.list = slices.Delete(sm.list, i, i+1)
				continue
			}
			m.p = p
			p.setMarker(true)
		}
		if index < m.index || (n > 0 && index == m.index) {
			m.index = max(index, m.index+n)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// --- list operations ------------------------------------------------------------------------------

// listGet returns the value at index.
func (t *AbstractType) listGet(index int) (any, bool) {
	if index < 0 {
		return nil, false
	}
	n := t.start
	if m := t.findMarker(index); m != nil {
		n = m.p
		index -= m.index
	}
	for ; n != nil; n = n.Right {
		if !n.Deleted() && n.countable() {
			if index < n.Length {
				return n.Content.Values()[index], true
			}
			index -= n.Length
		}
	}
	return nil, false
}

// listValues returns all values of the list.
func (t *AbstractType) listValues() []any {
	out := make([]any, 0, t.length)
	for n := t.start; n != nil; n = n.Right {
		if !n.Deleted() && n.countable() {
			out = append(out, n.Content.Values()...)
		}
	}
	return out
}

// contentFor turns a Go value into item content for list insertion or a map value.
func contentFor(v any) (Content, error) {
	switch x := v.(type) {
	case []byte:
		return &ContentBinary{Data: slices.Clone(x)}, nil
	case YType:
		t := x.abstract()
		if t.doc != nil || t.item != nil {
			return nil, fmt.Errorf("crdt: type is already part of a document")
		}
		return &ContentType{Type: t}, nil
	case *SubDoc:
		d := *x
		return &ContentDoc{Doc: &d}, nil
	}
	if err := checkAny(v, 0); err != nil {
		return nil, err
	}
	return &ContentAny{Arr: []any{v}}, nil
}

// checkAny verifies that v can be encoded as an Any value.
func checkAny(v any, depth int) error {
	if depth > 1000 {
		return errors.New("crdt: value nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, string, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		encoding.Undefined, []byte:
		return nil
	case []any:
		for _, e := range x {
			if err := checkAny(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		for _, e := range x {
			if err := checkAny(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case *encoding.Object:
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			if err := checkAny(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("crdt: unsupported value of type %T", v)
	}
}

// insertAfter inserts values after ref (nil: at the start), packing runs of plain values into one
// ContentAny item as Yjs does.
func (t *AbstractType) insertAfter(tx *Transaction, ref *Item, values []any) error {
	left := ref
	doc := tx.doc
	var right *Item
	if left != nil {
		right = left.Right
	} else {
		right = t.start
	}
	var run []any
	place := func(c Content) {
		client := doc.clientID
		it := newItem(ID{client, doc.store.getState(client)}, left, idOf(left), left != nil, right, idOfStart(right), right != nil, t, "", false, c)
		it.integrate(tx, 0)
		left = it
	}
	flush := func() {
		if len(run) > 0 {
			place(&ContentAny{Arr: run})
			run = nil
		}
	}
	for _, v := range values {
		c, err := contentFor(v)
		if err != nil {
			return err
		}
		if a, ok := c.(*ContentAny); ok {
			run = append(run, a.Arr...)
			continue
		}
		flush()
		place(c)
	}
	flush()
	return nil
}

func idOf(it *Item) ID {
	if it == nil {
		return ID{}
	}
	return it.lastID()
}

func idOfStart(it *Item) ID {
	if it == nil {
		return ID{}
	}
	return it.ID
}

// listInsert inserts values at index.
func (t *AbstractType) listInsert(tx *Transaction, index int, values []any) error {
	if index < 0 || index > t.length {
		return fmt.Errorf("%w: insert at %d of %d", ErrIndexOutOfRange, index, t.length)
	}
	for _, v := range values {
		if _, err := contentFor(v); err != nil {
			return err
		}
	}
	if index == 0 {
		if t.markers != nil {
			t.markers.updateMarkerChanges(index, len(values))
		}
		return t.insertAfter(tx, nil, values)
	}
	start := index
	n := t.start
	if m := t.findMarker(index); m != nil {
		n = m.p
		index -= m.index
		if index == 0 {
			n = n.prev()
			if n != nil && n.countable() && !n.Deleted() {
				index += n.Length
			}
		}
	}
	for ; n != nil; n = n.Right {
		if !n.Deleted() && n.countable() {
			if index <= n.Length {
				if index < n.Length {
					tx.doc.store.getItemCleanStart(tx, ID{n.ID.Client, n.ID.Clock + index})
				}
				break
			}
			index -= n.Length
		}
	}
	if t.markers != nil {
		t.markers.updateMarkerChanges(start, len(values))
	}
	return t.insertAfter(tx, n, values)
}

// listDelete deletes length units starting at index.
func (t *AbstractType) listDelete(tx *Transaction, index, length int) error {
	if length == 0 {
		return nil
	}
	if index < 0 || length < 0 || index+length > t.length {
		return fmt.Errorf("%w: delete %d at %d of %d", ErrIndexOutOfRange, length, index, t.length)
	}
	start, startLen := index, length
	n := t.start
	if m := t.findMarker(index); m != nil {
		n = m.p
		index -= m.index
	}
	store := tx.doc.store
	for ; n != nil && index > 0; n = n.Right {
		if !n.Deleted() && n.countable() {
			if index < n.Length {
				store.getItemCleanStart(tx, ID{n.ID.Client, n.ID.Clock + index})
			}
			index -= n.Length
		}
	}
	for length > 0 && n != nil {
		if !n.Deleted() {
			if length < n.Length {
				store.getItemCleanStart(tx, ID{n.ID.Client, n.ID.Clock + length})
			}
			n.delete(tx)
			length -= n.Length
		}
		n = n.Right
	}
	if t.markers != nil {
		t.markers.updateMarkerChanges(start, -startLen+length)
	}
	return nil
}

// --- map operations -------------------------------------------------------------------------------

func (t *AbstractType) mapGet(key string) (any, bool) {
	it := t.m[key]
	if it == nil || it.Deleted() {
		return nil, false
	}
	vals := it.Content.Values()
	if len(vals) == 0 {
		return nil, false
	}
	return vals[it.Length-1], true
}

func (t *AbstractType) mapSetValue(tx *Transaction, key string, v any) error {
	c, err := contentFor(v)
	if err != nil {
		return err
	}
	left := t.m[key]
	doc := tx.doc
	client := doc.clientID
	it := newItem(ID{client, doc.store.getState(client)}, left, idOf(left), left != nil, nil, ID{}, false, t, key, true, c)
	it.integrate(tx, 0)
	return nil
}

func (t *AbstractType) mapDelete(tx *Transaction, key string) {
	if it := t.m[key]; it != nil {
		it.delete(tx)
	}
}

// mapKeys returns the keys with a live value, sorted.
func (t *AbstractType) mapKeys() []string {
	keys := make([]string, 0, len(t.m))
	for k, it := range t.m {
		if !it.Deleted() {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// transact runs f in the document's current transaction, or a new one. Preliminary types (not
// yet in a document) run f against their preliminary state instead.
func (t *AbstractType) transact(f func(tx *Transaction) error) error {
	if t.doc == nil {
		return errors.New("crdt: type is not part of a document yet")
	}
	var err error
	t.doc.Transact(func(tx *Transaction) { err = f(tx) }, nil)
	return err
}
