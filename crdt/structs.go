package crdt

import (
	"github.com/ysync/ysync/crdt/encoding"
)

// abstractStruct is a GC, an Item or (only inside update utilities) a Skip.
type abstractStruct interface {
	id() ID
	length() int
	deleted() bool
	// write encodes the struct starting offset units into it.
	write(enc encoding.UpdateEncoder, offset int)
}

// Struct refs of the wire format (the low five bits of an item's info byte).
const (
	refGC      = 0
	refDeleted = 1
	refJSON    = 2
	refBinary  = 3
	refString  = 4
	refEmbed   = 5
	refFormat  = 6
	refType    = 7
	refAny     = 8
	refDoc     = 9
	refSkip    = 10
)

// GC is a range of garbage-collected content: only its id range is kept.
type GC struct {
	ID     ID
	Length int
}

func (g *GC) id() ID        { return g.ID }
func (g *GC) length() int   { return g.Length }
func (g *GC) deleted() bool { return true }

func (g *GC) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteInfo(refGC)
	enc.WriteLen(uint64(g.Length - offset))
}

func (g *GC) mergeWith(right *GC) bool {
	g.Length += right.Length
	return true
}

// Skip stands for a range the update does not contain (only in merged or diffed updates).
type Skip struct {
	ID     ID
	Length int
}

func (s *Skip) id() ID        { return s.ID }
func (s *Skip) length() int   { return s.Length }
func (s *Skip) deleted() bool { return true }

func (s *Skip) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteInfo(refSkip)
	// Skip lengths are written to the rest encoder, as in Yjs.
	enc.RestEncoder().WriteVarUint(uint64(s.Length - offset))
}

// Item info bits. The first four are Yjs's; the others record which optional fields are set.
const (
	infoKeep           = 1 << 0
	infoCountable      = 1 << 1
	infoDeleted        = 1 << 2
	infoMarker         = 1 << 3
	infoHasOrigin      = 1 << 4
	infoHasRightOrigin = 1 << 5
	infoHasParentSub   = 1 << 6
)

// Item is a unit of inserted content in a type's list or under a map key.
type Item struct {
	ID     ID
	Length int
	Left   *Item
	Right  *Item
	// origin is the id of the item to the left at insertion time, rightOrigin the one to the right.
	origin      ID
	rightOrigin ID
	// Parent is the type this item belongs to; nil while an item read from an update is not yet
	// resolved (see ref) and for items that will become GC.
	Parent    *AbstractType
	parentSub string
	Content   Content
	info      uint8
	// ref holds the parent as written on the wire until getMissing resolves it.
	ref *parentRef
}

type parentRef struct {
	key   string // root type name when isKey
	id    ID
	isKey bool
}

func (it *Item) id() ID        { return it.ID }
func (it *Item) length() int   { return it.Length }
func (it *Item) deleted() bool { return it.info&infoDeleted != 0 }

// Deleted reports whether the item's content was deleted.
func (it *Item) Deleted() bool   { return it.info&infoDeleted != 0 }
func (it *Item) countable() bool { return it.info&infoCountable != 0 }
func (it *Item) keep() bool      { return it.info&infoKeep != 0 }
func (it *Item) marker() bool    { return it.info&infoMarker != 0 }

func (it *Item) setKeep(v bool) {
	if v {
		it.info |= infoKeep
	} else {
		it.info &^= infoKeep
	}
}

func (it *Item) setMarker(v bool) {
	if v {
		it.info |= infoMarker
	} else {
		it.info &^= infoMarker
	}
}

func (it *Item) markDeleted() { it.info |= infoDeleted }

// Origin returns the left origin, if any.
func (it *Item) Origin() (ID, bool) { return it.origin, it.info&infoHasOrigin != 0 }

// RightOrigin returns the right origin, if any.
func (it *Item) RightOrigin() (ID, bool) { return it.rightOrigin, it.info&infoHasRightOrigin != 0 }

// ParentSub returns the map key this item is stored under, if it belongs to a map.
func (it *Item) ParentSub() (string, bool) { return it.parentSub, it.info&infoHasParentSub != 0 }

func (it *Item) hasOrigin() bool      { return it.info&infoHasOrigin != 0 }
func (it *Item) hasRightOrigin() bool { return it.info&infoHasRightOrigin != 0 }
func (it *Item) hasParentSub() bool   { return it.info&infoHasParentSub != 0 }

func (it *Item) setOrigin(id ID, ok bool) {
	it.origin = id
	if ok {
		it.info |= infoHasOrigin
	} else {
		it.info &^= infoHasOrigin
	}
}

func (it *Item) setRightOrigin(id ID, ok bool) {
	it.rightOrigin = id
	if ok {
		it.info |= infoHasRightOrigin
	} else {
		it.info &^= infoHasRightOrigin
	}
}

func (it *Item) setParentSub(key string, ok bool) {
	it.parentSub = key
	if ok {
		it.info |= infoHasParentSub
	} else {
		it.info &^= infoHasParentSub
	}
}

// newItem builds an item; countable is taken from the content.
func newItem(id ID, left *Item, origin ID, hasOrigin bool, right *Item, rightOrigin ID, hasRightOrigin bool,
	parent *AbstractType, parentSub string, hasParentSub bool, content Content) *Item {
	it := &Item{ID: id, Left: left, Right: right, origin: origin, rightOrigin: rightOrigin, Parent: parent,
		parentSub: parentSub, Content: content, Length: content.Len()}
	if hasOrigin {
		it.info |= infoHasOrigin
	}
	if hasRightOrigin {
		it.info |= infoHasRightOrigin
	}
	if hasParentSub {
		it.info |= infoHasParentSub
	}
	if content.Countable() {
		it.info |= infoCountable
	}
	return it
}

// lastID is the id of the item's last unit.
func (it *Item) lastID() ID { return ID{it.ID.Client, it.ID.Clock + it.Length - 1} }

// next returns the next non-deleted item to the right.
func (it *Item) next() *Item {
	n := it.Right
	for n != nil && n.Deleted() {
		n = n.Right
	}
	return n
}

// prev returns the next non-deleted item to the left.
func (it *Item) prev() *Item {
	n := it.Left
	for n != nil && n.Deleted() {
		n = n.Left
	}
	return n
}

// splitItem splits leftItem at diff: leftItem keeps [0, diff), the returned item holds the rest.
// The caller inserts the new item into the struct store.
func splitItem(tx *Transaction, left *Item, diff int) *Item {
	client, clock := left.ID.Client, left.ID.Clock
	right := &Item{
		ID:          ID{client, clock + diff},
		Left:        left,
		origin:      ID{client, clock + diff - 1},
		Right:       left.Right,
		rightOrigin: left.rightOrigin,
		Parent:      left.Parent,
		parentSub:   left.parentSub,
		Content:     left.Content.Splice(diff),
		info:        left.info&(infoHasRightOrigin|infoHasParentSub|infoCountable|infoDeleted|infoKeep) | infoHasOrigin,
		ref:         left.ref,
	}
	right.Length = left.Length - diff
	left.Right = right
	if right.Right != nil {
		right.Right.Left = right
	}
	if tx != nil {
		tx.mergeStructs = append(tx.mergeStructs, right)
	}
	if right.hasParentSub() && right.Right == nil && right.Parent != nil {
		right.Parent.m[right.parentSub] = right
	}
	left.Length = diff
	return right
}

// getMissing resolves origins and parent against the store. It returns the client whose structs
// are needed first, or ok=false when nothing is missing. Items whose neighbours turned out to be
// garbage collected lose their parent and will be integrated as GC.
func (it *Item) getMissing(tx *Transaction, s *structStore) (missing uint64, isMissing bool) {
	if it.hasOrigin() && it.origin.Client != it.ID.Client && it.origin.Clock >= s.getState(it.origin.Client) {
		return it.origin.Client, true
	}
	if it.hasRightOrigin() && it.rightOrigin.Client != it.ID.Client && it.rightOrigin.Clock >= s.getState(it.rightOrigin.Client) {
		return it.rightOrigin.Client, true
	}
	if r := it.ref; r != nil && !r.isKey && it.ID.Client != r.id.Client && r.id.Clock >= s.getState(r.id.Client) {
		return r.id.Client, true
	}
	leftGC, rightGC := false, false
	if it.hasOrigin() {
		switch l := s.getItemCleanEnd(tx, it.origin).(type) {
		case *Item:
			it.Left = l
			it.origin = l.lastID()
		case nil:
			// The origin is in a range this client has not got although its state says otherwise:
			// only a corrupt update gets here; treat the item as collected.
			leftGC = true
		default:
			leftGC = true
		}
	}
	if it.hasRightOrigin() {
		switch r := s.getItemCleanStart(tx, it.rightOrigin).(type) {
		case *Item:
			it.Right = r
			it.rightOrigin = r.ID
		default:
			rightGC = true
		}
	}
	if leftGC || rightGC {
		it.Parent = nil
		it.ref = nil
		return 0, false
	}
	if it.ref == nil {
		// Parent info is copied from a neighbour.
		if it.Left != nil {
			it.Parent = it.Left.Parent
			it.setParentSub(it.Left.parentSub, it.Left.hasParentSub())
		} else if it.Right != nil {
			it.Parent = it.Right.Parent
			it.setParentSub(it.Right.parentSub, it.Right.hasParentSub())
		}
		return 0, false
	}
	r := it.ref
	it.ref = nil
	if r.isKey {
		it.Parent = tx.doc.getRoot(r.key)
		return 0, false
	}
	switch p := s.find(r.id).(type) {
	case *Item:
		if ct, ok := p.Content.(*ContentType); ok {
			it.Parent = ct.Type
		} else {
			// A parent that is not a type: a corrupt or hostile update. Collect the item rather
			// than attach it to something that cannot hold children.
			it.Parent = nil
		}
	default:
		it.Parent = nil
	}
	return 0, false
}

// integrate places the item into its parent using the YATA rules and adds it to the store.
// offset > 0 integrates only the part of the item after offset (the rest is already known).
func (it *Item) integrate(tx *Transaction, offset int) {
	store := tx.doc.store
	if offset > 0 {
		it.ID.Clock += offset
		l, _ := store.getItemCleanEnd(tx, ID{it.ID.Client, it.ID.Clock - 1}).(*Item)
		it.Left = l
		if l != nil {
			it.setOrigin(l.lastID(), true)
		} else {
			it.setOrigin(ID{it.ID.Client, it.ID.Clock - 1}, true)
			it.Parent = nil
		}
		it.Content = it.Content.Splice(offset)
		it.Length -= offset
	}
	parent := it.Parent
	if parent == nil {
		// Integrate a GC struct instead.
		(&GC{ID: it.ID, Length: it.Length}).integrate(tx, 0)
		return
	}
	if (it.Left == nil && (it.Right == nil || it.Right.Left != nil)) || (it.Left != nil && it.Left.Right != it.Right) {
		left := it.Left
		var o *Item
		if left != nil {
			o = left.Right
		} else if it.hasParentSub() {
			o = parent.m[it.parentSub]
			for o != nil && o.Left != nil {
				o = o.Left
			}
		} else {
			o = parent.start
		}
		conflicting := tx.conflictSet()
		beforeOrigin := tx.beforeOriginSet()
		// Let c in conflicting, b in beforeOrigin:
		// ***{origin}bbbb{this}{c,b}{c,b}{o}***
		// conflicting is a subset of beforeOrigin.
		for o != nil && o != it.Right {
			beforeOrigin[o] = struct{}{}
			conflicting[o] = struct{}{}
			if sameOptID(it.origin, it.hasOrigin(), o.origin, o.hasOrigin()) {
				// case 1
				if o.ID.Client < it.ID.Client {
					left = o
					clear(conflicting)
				} else if sameOptID(it.rightOrigin, it.hasRightOrigin(), o.rightOrigin, o.hasRightOrigin()) {
					// Same integration points: the id decides, and this goes to the left of o.
					break
				}
			} else if oo, ok := itemAt(store, o.origin, o.hasOrigin()); ok {
				if _, in := beforeOrigin[oo]; in {
					// case 2
					if _, in := conflicting[oo]; !in {
						left = o
						clear(conflicting)
					}
				} else {
					break
				}
			} else {
				break
			}
			o = o.Right
		}
		clear(conflicting)
		clear(beforeOrigin)
		it.Left = left
	}
	// Reconnect left/right and update the parent's start or map entry.
	if it.Left != nil {
		it.Right = it.Left.Right
		it.Left.Right = it
	} else {
		var r *Item
		if it.hasParentSub() {
			r = parent.m[it.parentSub]
			for r != nil && r.Left != nil {
				r = r.Left
			}
		} else {
			r = parent.start
			parent.start = it
		}
		it.Right = r
	}
	if it.Right != nil {
		it.Right.Left = it
	} else if it.hasParentSub() {
		// This is now the current value of the key; the previous value is deleted.
		parent.mapSet(it.parentSub, it)
		if it.Left != nil {
			it.Left.delete(tx)
		}
	}
	if !it.hasParentSub() && it.countable() && !it.Deleted() {
		parent.length += it.Length
	}
	tx.touch(it.ID.Client)
	if err := store.addStruct(it); err != nil {
		tx.fail(err)
	}
	it.Content.integrate(tx, it)
	tx.addChangedType(parent, it.parentSub, it.hasParentSub())
	if (parent.item != nil && parent.item.Deleted()) || (it.hasParentSub() && it.Right != nil) {
		// Delete if the parent is deleted or this is not the current value of its key.
		it.delete(tx)
	}
}

// itemAt returns the item containing id (no splitting).
func itemAt(s *structStore, id ID, ok bool) (*Item, bool) {
	if !ok {
		return nil, false
	}
	it, isItem := s.find(id).(*Item)
	return it, isItem
}

func sameOptID(a ID, aok bool, b ID, bok bool) bool {
	if aok != bok {
		return false
	}
	return !aok || a == b
}

func (g *GC) integrate(tx *Transaction, offset int) {
	if offset > 0 {
		g.ID.Clock += offset
		g.Length -= offset
	}
	tx.touch(g.ID.Client)
	if err := tx.doc.store.addStruct(g); err != nil {
		tx.fail(err)
	}
}

// mergeWith appends right to it when both are adjacent parts of one insertion.
func (it *Item) mergeWith(right *Item) bool {
	if !right.hasOrigin() || right.origin != it.lastID() || it.Right != right ||
		!sameOptID(it.rightOrigin, it.hasRightOrigin(), right.rightOrigin, right.hasRightOrigin()) ||
		it.ID.Client != right.ID.Client || it.ID.Clock+it.Length != right.ID.Clock ||
		it.Deleted() != right.Deleted() || !it.Content.mergeWith(right.Content) {
		return false
	}
	if p := it.Parent; p != nil && p.markers != nil {
		p.markers.replaceItem(right, it, !it.Deleted() && it.countable(), it.Length)
	}
	if right.keep() {
		it.setKeep(true)
	}
	it.Right = right.Right
	if it.Right != nil {
		it.Right.Left = it
	}
	it.Length += right.Length
	return true
}

// delete marks the item deleted and records it in the transaction's delete set; the content of a
// nested type is deleted with it (walk.go, without recursion).
func (it *Item) delete(tx *Transaction) {
	if it.Deleted() {
		return
	}
	deleteWalk(tx, it.markDeletedIn(tx))
}

// markDeletedIn deletes the item itself and returns the type it holds, if any, whose children
// must be deleted too.
func (it *Item) markDeletedIn(tx *Transaction) *AbstractType {
	parent := it.Parent
	if it.countable() && !it.hasParentSub() {
		parent.length -= it.Length
	}
	it.markDeleted()
	tx.deleteSet.add(it.ID.Client, it.ID.Clock, it.Length)
	tx.addChangedType(parent, it.parentSub, it.hasParentSub())
	if ct, ok := it.Content.(*ContentType); ok {
		return ct.Type
	}
	it.Content.delete(tx)
	return nil
}

// gc drops the content of a deleted item; with parentGCd the whole item becomes a GC struct.
// A nested type's items all become GC structs (walk.go, without recursion).
func (it *Item) gc(s *structStore, parentGCd bool) {
	if ct, ok := it.Content.(*ContentType); ok {
		gcWalk(s, ct.Type)
	} else {
		it.Content.gc(s)
	}
	if parentGCd {
		s.replaceStruct(it, &GC{ID: it.ID, Length: it.Length})
	} else {
		it.Content = &ContentDeleted{N: it.Length}
	}
}

func (it *Item) write(enc encoding.UpdateEncoder, offset int) {
	origin, hasOrigin := it.origin, it.hasOrigin()
	if offset > 0 {
		origin, hasOrigin = ID{it.ID.Client, it.ID.Clock + offset - 1}, true
	}
	info := it.Content.ref() & 0x1f
	if hasOrigin {
		info |= 0x80
	}
	if it.hasRightOrigin() {
		info |= 0x40
	}
	if it.hasParentSub() {
		info |= 0x20
	}
	enc.WriteInfo(info)
	if hasOrigin {
		enc.WriteLeftID(origin.Client, uint64(origin.Clock))
	}
	if it.hasRightOrigin() {
		enc.WriteRightID(it.rightOrigin.Client, uint64(it.rightOrigin.Clock))
	}
	if !hasOrigin && !it.hasRightOrigin() {
		switch {
		case it.Parent != nil && it.Parent.item == nil:
			enc.WriteParentInfo(true)
			enc.WriteString(it.Parent.rootName)
		case it.Parent != nil:
			enc.WriteParentInfo(false)
			enc.WriteLeftID(it.Parent.item.ID.Client, uint64(it.Parent.item.ID.Clock))
		case it.ref != nil && it.ref.isKey:
			enc.WriteParentInfo(true)
			enc.WriteString(it.ref.key)
		case it.ref != nil:
			enc.WriteParentInfo(false)
			enc.WriteLeftID(it.ref.id.Client, uint64(it.ref.id.Clock))
		default:
			// Unreachable for integrated items: every item without origins has a parent.
			enc.WriteParentInfo(true)
			enc.WriteString("")
		}
		if it.hasParentSub() {
			enc.WriteString(it.parentSub)
		}
	}
	it.Content.write(enc, offset)
}
