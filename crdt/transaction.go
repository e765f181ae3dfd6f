package crdt

import (
	"cmp"
	"slices"

	"github.com/ysync/ysync/crdt/encoding"
)

// Transaction groups changes; observers see one update per transaction.
type Transaction struct {
	doc *Doc
	// Origin is what the transaction was started with (a session, say).
	Origin any
	// Local is false for transactions that applied a remote update.
	Local bool

	deleteSet *DeleteSet
	// beforeState holds the clock each client had when this transaction first added a struct
	// of it; afterState (set at cleanup) the clocks of those clients afterwards. Clients the
	// transaction did not touch are in neither: their state is unchanged. (Yjs copies the
	// whole state vector per transaction, which costs O(clients) on every keystroke.)
	beforeState  map[uint64]int
	afterState   map[uint64]int
	changed      typeSet
	mergeStructs []*Item
	err          error

	needFormattingCleanup bool

	// scratch sets reused by Item.integrate
	conflicting  map[*Item]struct{}
	beforeOrigin map[*Item]struct{}
}

// typeSet is a small insertion-ordered set of types: transactions usually change one or two.
type typeSet struct {
	list []*AbstractType
	m    map[*AbstractType]struct{} // once the list is long
}

func (s *typeSet) add(t *AbstractType) {
	if s.m != nil {
		if _, ok := s.m[t]; ok {
			return
		}
		s.m[t] = struct{}{}
	} else {
		for _, x := range s.list {
			if x == t {
				return
			}
		}
		if len(s.list) >= 16 {
			s.m = make(map[*AbstractType]struct{}, 32)
			for _, x := range s.list {
				s.m[x] = struct{}{}
			}
			s.m[t] = struct{}{}
		}
	}
	s.list = append(s.list, t)
}

func (s *typeSet) remove(t *AbstractType) {
	if s.m != nil {
		if _, ok := s.m[t]; !ok {
			return
		}
		delete(s.m, t)
	}
	for i, x := range s.list {
		if x == t {
			s.list = append(s.list[:i], s.list[i+1:]...)
			return
		}
	}
}

func newTransaction(d *Doc, origin any, local bool) *Transaction {
	return &Transaction{
		doc:       d,
		Origin:    origin,
		Local:     local,
		deleteSet: &DeleteSet{}, // map allocated on first delete: most transactions delete nothing
	}
}

// Doc returns the transaction's document.
func (tx *Transaction) Doc() *Doc { return tx.doc }

func (tx *Transaction) fail(err error) {
	if tx.err == nil {
		tx.err = err
	}
}

func (tx *Transaction) conflictSet() map[*Item]struct{} {
	if tx.conflicting == nil {
		tx.conflicting = make(map[*Item]struct{})
	}
	return tx.conflicting
}

func (tx *Transaction) beforeOriginSet() map[*Item]struct{} {
	if tx.beforeOrigin == nil {
		tx.beforeOrigin = make(map[*Item]struct{})
	}
	return tx.beforeOrigin
}

// before returns client's clock at the start of the transaction.
func (tx *Transaction) before(client uint64) int {
	if c, ok := tx.beforeState[client]; ok {
		return c
	}
	return tx.doc.store.getState(client)
}

// touch records client's clock before the transaction adds its first struct of that client.
func (tx *Transaction) touch(client uint64) {
	if _, ok := tx.beforeState[client]; ok {
		return
	}
	if tx.beforeState == nil {
		tx.beforeState = make(map[uint64]int, 1)
	}
	tx.beforeState[client] = tx.doc.store.getState(client)
}

func (tx *Transaction) addChangedType(t *AbstractType, key string, hasKey bool) {
	item := t.item
	if item == nil || (item.ID.Clock < tx.before(item.ID.Client) && !item.Deleted()) {
		tx.changed.add(t)
	}
}

// ChangedTypes returns the types whose content this transaction changed.
func (tx *Transaction) ChangedTypes() []*AbstractType {
	return append([]*AbstractType(nil), tx.changed.list...)
}

// Transact runs fn in a transaction: every change fn makes reaches update observers as one update.
// Nested calls join the outer transaction.
func (d *Doc) Transact(fn func(tx *Transaction), origin any) {
	d.transact(fn, origin, true)
}

func (d *Doc) transact(fn func(tx *Transaction), origin any, local bool) {
	if d.tx != nil {
		fn(d.tx)
		return
	}
	tx := newTransaction(d, origin, local)
	d.tx = tx
	d.cleanups = append(d.cleanups, tx)
	outermost := len(d.cleanups) == 1
	func() {
		defer func() { d.tx = nil }()
		fn(tx)
	}()
	if !outermost {
		// Started while an earlier transaction was being cleaned up: that loop handles it.
		return
	}
	defer func() { d.cleanups = d.cleanups[:0] }()
	for i := 0; i < len(d.cleanups); i++ {
		d.cleanupTransaction(d.cleanups[i])
	}
}

func (d *Doc) cleanupTransaction(tx *Transaction) {
	store := d.store
	ds := tx.deleteSet
	ds.sortAndMerge()
	tx.afterState = make(map[uint64]int, len(tx.beforeState))
	for client := range tx.beforeState {
		tx.afterState[client] = store.getState(client)
	}
	if !tx.Local {
		// Remote changes move content under the search markers' cached indexes: drop them, as
		// Yjs's AbstractType._callObserver does.
		for _, t := range tx.changed.list {
			if t.markers != nil {
				t.markers.list = t.markers.list[:0]
			}
		}
	}
	if d.formattingCleanup && needsFormattingCleanup(tx) {
		cleanupTextAfterTransaction(tx)
	}
	if d.gc {
		tryGcDeleteSet(ds, store)
	}
	tryMergeDeleteSet(ds, store)
	// Merge the structs this transaction added.
	for client, clock := range tx.afterState {
		before := tx.beforeState[client]
		if before == clock {
			continue
		}
		first := max(findIndexSS(store.clients[client], before), 1)
		mergeInRegions(store, client, [][2]int{{first, len(store.clients[client]) - 1}})
	}
	for i := len(tx.mergeStructs) - 1; i >= 0; i-- {
		id := tx.mergeStructs[i].ID
		structs := store.clients[id.Client]
		pos := findIndexSS(structs, id.Clock)
		if pos < 0 {
			continue
		}
		if pos+1 < len(structs) {
			if tryToMergeWithLefts(store, id.Client, pos+1) > 1 {
				continue
			}
		}
		if pos > 0 {
			tryToMergeWithLefts(store, id.Client, pos)
		}
	}
	if after, touched := tx.afterState[d.clientID]; touched && !tx.Local && after != tx.beforeState[d.clientID] {
		// Another client uses our id: pick a new one, as Yjs does.
		d.clientID = randomClientID()
	}
	if len(d.observers) > 0 && tx.hasChanges() {
		var v1, v2 []byte
		for _, o := range append([]updateObserver(nil), d.observers...) {
			if o.want != nil && !o.want(tx.Origin) {
				continue
			}
			if o.v2 {
				if v2 == nil {
					enc := encoding.NewUpdateEncoderV2()
					tx.writeUpdate(enc)
					v2 = enc.Bytes()
				}
				o.fn(v2, tx.Origin, tx)
			} else {
				if v1 == nil {
					enc := encoding.NewUpdateEncoderV1()
					tx.writeUpdate(enc)
					v1 = enc.Bytes()
				}
				o.fn(v1, tx.Origin, tx)
			}
		}
	}
}

func (tx *Transaction) hasChanges() bool {
	if !tx.deleteSet.empty() {
		return true
	}
	for client, clock := range tx.afterState {
		if tx.beforeState[client] != clock {
			return true
		}
	}
	return false
}

// writeUpdate writes the structs added and the ranges deleted by the transaction (Yjs's
// writeUpdateMessageFromTransaction): clients whose clock moved, highest first.
func (tx *Transaction) writeUpdate(enc encoding.UpdateEncoder) {
	store := tx.doc.store
	var clients []uint64
	for client, after := range tx.afterState {
		if after > tx.beforeState[client] {
			clients = append(clients, client)
		}
	}
	slices.SortFunc(clients, func(a, b uint64) int { return cmp.Compare(b, a) })
	enc.RestEncoder().WriteVarUint(uint64(len(clients)))
	for _, client := range clients {
		writeStructs(enc, store.clients[client], client, tx.beforeState[client])
	}
	tx.deleteSet.write(enc)
}

// tryToMergeWithLefts merges structs[pos] into its left neighbours where possible and returns
// how many structs were merged away.
func tryToMergeWithLefts(store *structStore, client uint64, pos int) int {
	structs := store.clients[client]
	i := pos
	for ; i > 0 && mergeStructs(structs[i-1], structs[i]); i-- {
	}
	n := pos - i
	if n > 0 {
		structs = append(structs[:pos+1-n], structs[pos+1:]...)
		store.clients[client] = structs
	}
	return n
}

// mergeStructs appends right to its left neighbour left where both are parts of one struct
// (as Yjs's tryToMergeWithLefts does for one pair) and reports whether it did.
func mergeStructs(left, right abstractStruct) bool {
	if left.deleted() != right.deleted() {
		return false
	}
	switch l := left.(type) {
	case *GC:
		if r, ok := right.(*GC); ok {
			return l.mergeWith(r)
		}
	case *Item:
		if r, ok := right.(*Item); ok && l.mergeWith(r) {
			if r.hasParentSub() && r.Parent != nil && r.Parent.m[r.parentSub] == r {
				r.Parent.m[r.parentSub] = l
			}
			return true
		}
	}
	return false
}

// mergeInRegions is mergeRegions; a test (not a parallel one) puts the reference
// (tryToMergeWithLefts from the right) in its place to compare.
var mergeInRegions = mergeRegions

// mergeRegions does what calling tryToMergeWithLefts on every index of the client's structs in
// regions (inclusive index ranges of the list as it is on entry, in ascending order, overlaps
// allowed) from the right does, in one pass from the left: each struct there is merged into its
// left neighbour where possible, and a struct that took one in is merged into its own left
// neighbours where possible. Whether two neighbours merge depends only on the two (a struct that
// took in its right neighbour still ends where that one ended, with its origins), so the order
// of the merges does not change the result; but one pass moves the tail of the list once,
// where merging from the right moved it at every merge (quadratic for a long log replayed in
// one transaction).
func mergeRegions(store *structStore, client uint64, regions [][2]int) {
	structs := store.clients[client]
	if len(regions) == 0 {
		return
	}
	start := max(regions[0][0], 1)
	if start >= len(structs) {
		return
	}
	w, k := start, 0 // structs[:w] is the merged list so far; regions[k] the current region
	for r := start; r < len(structs); r++ {
		for k < len(regions) && regions[k][1] < r {
			k++
		}
		if k == len(regions) && w == r {
			w = len(structs) // past the last region with nothing merged: the rest is in place
			break
		}
		s := structs[r]
		if k < len(regions) && regions[k][0] <= r && w > 0 && mergeStructs(structs[w-1], s) {
			for w > 1 && mergeStructs(structs[w-2], structs[w-1]) {
				w--
			}
			continue
		}
		structs[w] = s
		w++
	}
	if w < len(structs) {
		clear(structs[w:])
		structs = structs[:w]
	}
	store.clients[client] = structs
}

func tryGcDeleteSet(ds *DeleteSet, store *structStore) {
	for client, dels := range ds.clients {
		for di := len(dels) - 1; di >= 0; di-- {
			d := dels[di]
			end := d.Clock + d.Len
			structs := store.clients[client]
			for si := findIndexSS(structs, d.Clock); si >= 0 && si < len(structs); si++ {
				st := structs[si]
				if st.id().Clock >= end {
					break
				}
				if it, ok := st.(*Item); ok && it.Deleted() && !it.keep() {
					it.gc(store, false)
				}
				structs = store.clients[client]
			}
		}
	}
}

// tryMergeDeleteSet merges the structs in and just after the deleted ranges with their left
// neighbours where possible (Yjs's tryMergeDeleteSet), in one pass per client.
func tryMergeDeleteSet(ds *DeleteSet, store *structStore) {
	var regions [][2]int
	for client, dels := range ds.clients {
		structs := store.clients[client]
		if len(structs) == 0 {
			continue
		}
		regions = regions[:0]
		for _, d := range dels {
			hi := min(len(structs)-1, 1+findIndexSS(structs, d.Clock+d.Len-1))
			if hi <= 0 || structs[hi].id().Clock < d.Clock {
				continue
			}
			// The structs from the first one starting at or after the range's start up to hi
			// (Yjs walks down from hi while they start at or after it).
			lo := max(findIndexSS(structs, d.Clock), 0)
			if structs[lo].id().Clock < d.Clock {
				lo++
			}
			regions = append(regions, [2]int{max(lo, 1), hi})
		}
		if !slices.IsSortedFunc(regions, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) }) {
			slices.SortFunc(regions, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
		}
		mergeInRegions(store, client, regions)
	}
}
