package crdt

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// DocOptions configures a Doc. The zero value is a server-side document: random client id,
// garbage collection on.
type DocOptions struct {
	// ClientID is the id this document's own edits are made under. Zero means a random 32-bit id.
	ClientID uint64
	// GUID names the document. Empty means a random one.
	GUID string
	// DisableGC keeps deleted content (as ContentDeleted) instead of collecting it. Zero value
	// means deleted content is garbage-collected, as a server wants.
	DisableGC bool
	// FormattingCleanup makes remote transactions that touch formatted text run Yjs's formatting
	// cleanup, which can produce edits of this document's own. Zero value means off: a server
	// relays formatting exactly as clients wrote it and never generates formatting changes.
	FormattingCleanup bool
}

// Doc is a Yjs document. It is not safe for concurrent use.
type Doc struct {
	clientID          uint64
	guid              string
	gc                bool
	formattingCleanup bool
	store             *structStore
	share             map[string]*AbstractType
	tx                *Transaction
	cleanups          []*Transaction
	observers         []updateObserver
	nextObserver      int
}

type updateObserver struct {
	id   int
	v2   bool
	want func(origin any) bool // nil: every transaction
	fn   func(update []byte, origin any, tx *Transaction)
}

// NewDoc returns an empty document.
func NewDoc(opts DocOptions) *Doc {
	d := &Doc{
		clientID:          opts.ClientID,
		guid:              opts.GUID,
		gc:                !opts.DisableGC,
		formattingCleanup: opts.FormattingCleanup,
		store:             newStructStore(),
		share:             make(map[string]*AbstractType),
	}
	if d.clientID == 0 {
		d.clientID = randomClientID()
	}
	if d.guid == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		d.guid = hex.EncodeToString(b[:])
	}
	return d
}

func randomClientID() uint64 {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		if id := uint64(binary.LittleEndian.Uint32(b[:])); id != 0 {
			return id
		}
	}
}

// ClientID returns the id local edits are made under.
func (d *Doc) ClientID() uint64 { return d.clientID }

// GUID returns the document's guid.
func (d *Doc) GUID() string { return d.guid }

// GC reports whether deleted content is garbage-collected.
func (d *Doc) GC() bool { return d.gc }

// getRoot returns the root type called name, creating one of unknown kind if needed.
func (d *Doc) getRoot(name string) *AbstractType {
	t := d.share[name]
	if t == nil {
		t = &AbstractType{kind: kindUnknown, doc: d, rootName: name}
		d.share[name] = t
	}
	return t
}

// root returns the root type called name as kind, converting a root of unknown kind. It panics
// when the root exists with a different kind: that is a programming error, as in Yjs.
func (d *Doc) root(name string, kind uint8) *AbstractType {
	t := d.getRoot(name)
	if t.kind == kindUnknown {
		t.kind = kind
		switch kind {
		case KindArray, KindText, KindXmlFragment:
			t.markers = &searchMarkers{}
		}
		if kind != KindMap {
			// Recompute the length: items of an unknown root were not counted.
			t.length = 0
			for n := t.start; n != nil; n = n.Right {
				if !n.Deleted() && n.countable() {
					t.length += n.Length
				}
			}
		}
		return t
	}
	if t.kind != kind {
		panic(fmt.Sprintf("crdt: root type %q already defined with a different kind (%d, asked %d)", name, t.kind, kind))
	}
	return t
}

// GetMap returns the root Map called name.
func (d *Doc) GetMap(name string) *Map { return d.root(name, KindMap).API().(*Map) }

// GetArray returns the root Array called name.
func (d *Doc) GetArray(name string) *Array { return d.root(name, KindArray).API().(*Array) }

// GetText returns the root Text called name.
func (d *Doc) GetText(name string) *Text { return d.root(name, KindText).API().(*Text) }

// GetXmlFragment returns the root XmlFragment called name.
func (d *Doc) GetXmlFragment(name string) *XmlFragment {
	return d.root(name, KindXmlFragment).API().(*XmlFragment)
}

// RootNames returns the names of the root types the document knows of.
func (d *Doc) RootNames() []string {
	names := make([]string, 0, len(d.share))
	for n := range d.share {
		names = append(names, n)
	}
	return names
}

// Root returns the root type called name (any kind), or nil.
func (d *Doc) Root(name string) *AbstractType { return d.share[name] }

// ToJSON returns every root type of known kind as plain Go values (maps, slices, strings...).
func (d *Doc) ToJSON() map[string]any {
	out := make(map[string]any, len(d.share))
	for name, t := range d.share {
		if t.kind == kindUnknown {
			continue
		}
		out[name] = t.toJSON()
	}
	return out
}

// ObserveUpdate registers fn to receive the V1 update of every transaction that changed the
// document. It returns a function that removes the observer.
func (d *Doc) ObserveUpdate(fn func(update []byte, origin any, tx *Transaction)) (unobserve func()) {
	return d.observe(fn, false, nil)
}

// ObserveUpdateIf is ObserveUpdate for the transactions whose origin want accepts. The update is
// encoded only when some observer wants it: a server that relays its peers' own bytes need not
// re-encode every update it applies.
func (d *Doc) ObserveUpdateIf(want func(origin any) bool, fn func(update []byte, origin any, tx *Transaction)) (unobserve func()) {
	return d.observe(fn, false, want)
}

// ObserveUpdateV2 is ObserveUpdate with updates in the V2 format.
func (d *Doc) ObserveUpdateV2(fn func(update []byte, origin any, tx *Transaction)) (unobserve func()) {
	return d.observe(fn, true, nil)
}

func (d *Doc) observe(fn func([]byte, any, *Transaction), v2 bool, want func(any) bool) func() {
	d.nextObserver++
	id := d.nextObserver
	d.observers = append(d.observers, updateObserver{id: id, v2: v2, want: want, fn: fn})
	return func() {
		for i, o := range d.observers {
			if o.id == id {
				d.observers = append(d.observers[:i:i], d.observers[i+1:]...)
				return
			}
		}
	}
}
