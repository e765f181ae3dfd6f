package crdt

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ysync/ysync/crdt/encoding"
)

// Content is what an Item carries. Each kind mirrors a Yjs content class.
type Content interface {
	// Len is the number of clock units (UTF-16 code units for strings).
	Len() int
	// Countable reports whether the content counts toward its type's length.
	Countable() bool
	// Values returns the user-visible values (one per unit for lists; strings per character).
	Values() []any
	copyContent() Content
	// Splice cuts the content at offset: the receiver keeps [0, offset), the result holds the rest.
	Splice(offset int) Content
	mergeWith(right Content) bool
	integrate(tx *Transaction, item *Item)
	delete(tx *Transaction)
	gc(s *structStore)
	write(enc encoding.UpdateEncoder, offset int)
	ref() uint8
}

// ContentDeleted stands for deleted content whose values were dropped.
type ContentDeleted struct{ N int }

func (c *ContentDeleted) Len() int               { return c.N }
func (c *ContentDeleted) Countable() bool        { return false }
func (c *ContentDeleted) Values() []any          { return nil }
func (c *ContentDeleted) copyContent() Content   { return &ContentDeleted{c.N} }
func (c *ContentDeleted) ref() uint8             { return refDeleted }
func (c *ContentDeleted) delete(tx *Transaction) {}
func (c *ContentDeleted) gc(s *structStore)      {}
func (c *ContentDeleted) Splice(offset int) Content {
	r := &ContentDeleted{c.N - offset}
	c.N = offset
	return r
}
func (c *ContentDeleted) mergeWith(right Content) bool {
	r, ok := right.(*ContentDeleted)
	if ok {
		c.N += r.N
	}
	return ok
}
func (c *ContentDeleted) integrate(tx *Transaction, item *Item) {
	tx.deleteSet.add(item.ID.Client, item.ID.Clock, c.N)
	item.markDeleted()
}
func (c *ContentDeleted) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteLen(uint64(c.N - offset))
}

// ContentJSON is the legacy JSON content of old Yjs versions (values as JSON text on the wire).
type ContentJSON struct{ Arr []any }

func (c *ContentJSON) Len() int                              { return len(c.Arr) }
func (c *ContentJSON) Countable() bool                       { return true }
func (c *ContentJSON) Values() []any                         { return c.Arr }
func (c *ContentJSON) copyContent() Content                  { return &ContentJSON{append([]any(nil), c.Arr...)} }
func (c *ContentJSON) ref() uint8                            { return refJSON }
func (c *ContentJSON) delete(tx *Transaction)                {}
func (c *ContentJSON) gc(s *structStore)                     {}
func (c *ContentJSON) integrate(tx *Transaction, item *Item) {}
func (c *ContentJSON) Splice(offset int) Content {
	r := &ContentJSON{c.Arr[offset:]} // shares the array: see ContentAny.Splice
	c.Arr = c.Arr[:offset:offset]
	return r
}
func (c *ContentJSON) mergeWith(right Content) bool {
	r, ok := right.(*ContentJSON)
	if ok {
		c.Arr = append(c.Arr, r.Arr...)
	}
	return ok
}
func (c *ContentJSON) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteLen(uint64(len(c.Arr) - offset))
	for _, v := range c.Arr[offset:] {
		if _, undef := v.(encoding.Undefined); undef {
			enc.WriteString("undefined")
			continue
		}
		s, err := encoding.StringifyJSON(v)
		if err != nil {
			s = "null"
		}
		enc.WriteString(s)
	}
}

// ContentBinary is one Uint8Array value.
type ContentBinary struct{ Data []byte }

func (c *ContentBinary) Len() int                              { return 1 }
func (c *ContentBinary) Countable() bool                       { return true }
func (c *ContentBinary) Values() []any                         { return []any{c.Data} }
func (c *ContentBinary) copyContent() Content                  { return &ContentBinary{c.Data} }
func (c *ContentBinary) ref() uint8                            { return refBinary }
func (c *ContentBinary) delete(tx *Transaction)                {}
func (c *ContentBinary) gc(s *structStore)                     {}
func (c *ContentBinary) integrate(tx *Transaction, item *Item) {}
func (c *ContentBinary) Splice(offset int) Content             { panic("crdt: ContentBinary cannot be split") }
func (c *ContentBinary) mergeWith(right Content) bool          { return false }
func (c *ContentBinary) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteBuf(c.Data)
}

// ContentString is text; its length is counted in UTF-16 code units.
type ContentString struct {
	Str string
	n   int // UTF-16 length of Str
}

func newContentString(s string) *ContentString {
	return &ContentString{Str: s, n: encoding.UTF16Len(s)}
}

func (c *ContentString) Len() int                              { return c.n }
func (c *ContentString) Countable() bool                       { return true }
func (c *ContentString) copyContent() Content                  { return &ContentString{c.Str, c.n} }
func (c *ContentString) ref() uint8                            { return refString }
func (c *ContentString) delete(tx *Transaction)                {}
func (c *ContentString) gc(s *structStore)                     {}
func (c *ContentString) integrate(tx *Transaction, item *Item) {}

// Values returns one string per UTF-16 unit, as Yjs's getContent does (a surrogate pair yields
// two halves, each replaced by U+FFFD).
func (c *ContentString) Values() []any {
	out := make([]any, 0, c.n)
	for _, r := range c.Str {
		if r >= 0x10000 {
			out = append(out, "\uFFFD", "\uFFFD")
		} else {
			out = append(out, string(r))
		}
	}
	return out
}

func (c *ContentString) Splice(offset int) Content {
	if len(c.Str) == c.n { // ASCII
		r := &ContentString{Str: c.Str[offset:], n: c.n - offset}
		c.Str, c.n = c.Str[:offset], offset
		return r
	}
	left, right := encoding.UTF16Split(c.Str, offset)
	r := &ContentString{Str: right, n: c.n - offset}
	c.Str, c.n = left, offset
	return r
}

func (c *ContentString) mergeWith(right Content) bool {
	r, ok := right.(*ContentString)
	if ok {
		c.Str += r.Str
		c.n += r.n
	}
	return ok
}

func (c *ContentString) write(enc encoding.UpdateEncoder, offset int) {
	switch {
	case offset == 0:
		enc.WriteString(c.Str)
	case len(c.Str) == c.n:
		enc.WriteString(c.Str[offset:])
	default:
		enc.WriteString(encoding.UTF16Slice(c.Str, offset, c.n))
	}
}

// ContentEmbed is one embedded value in a text (an image, a mention: any JSON value).
type ContentEmbed struct{ Embed any }

func (c *ContentEmbed) Len() int                              { return 1 }
func (c *ContentEmbed) Countable() bool                       { return true }
func (c *ContentEmbed) Values() []any                         { return []any{c.Embed} }
func (c *ContentEmbed) copyContent() Content                  { return &ContentEmbed{c.Embed} }
func (c *ContentEmbed) ref() uint8                            { return refEmbed }
func (c *ContentEmbed) delete(tx *Transaction)                {}
func (c *ContentEmbed) gc(s *structStore)                     {}
func (c *ContentEmbed) integrate(tx *Transaction, item *Item) {}
func (c *ContentEmbed) Splice(offset int) Content             { panic("crdt: ContentEmbed cannot be split") }
func (c *ContentEmbed) mergeWith(right Content) bool          { return false }
func (c *ContentEmbed) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteJSON(c.Embed)
}

// ContentFormat marks the start (value non-null) or end (value null) of a text attribute.
type ContentFormat struct {
	Key   string
	Value any
}

func (c *ContentFormat) Len() int                     { return 1 }
func (c *ContentFormat) Countable() bool              { return false }
func (c *ContentFormat) Values() []any                { return nil }
func (c *ContentFormat) copyContent() Content         { return &ContentFormat{c.Key, c.Value} }
func (c *ContentFormat) ref() uint8                   { return refFormat }
func (c *ContentFormat) delete(tx *Transaction)       {}
func (c *ContentFormat) gc(s *structStore)            {}
func (c *ContentFormat) Splice(offset int) Content    { panic("crdt: ContentFormat cannot be split") }
func (c *ContentFormat) mergeWith(right Content) bool { return false }
func (c *ContentFormat) integrate(tx *Transaction, item *Item) {
	// Search markers are not used in formatted text (as in Yjs).
	p := item.Parent
	p.markers = nil
	p.hasFormatting = true
}
func (c *ContentFormat) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteKey(c.Key)
	enc.WriteJSON(c.Value)
}

// ContentType holds a nested shared type.
type ContentType struct{ Type *AbstractType }

func (c *ContentType) Len() int                     { return 1 }
func (c *ContentType) Countable() bool              { return true }
func (c *ContentType) Values() []any                { return []any{c.Type.API()} }
func (c *ContentType) copyContent() Content         { return &ContentType{c.Type.copyType()} }
func (c *ContentType) ref() uint8                   { return refType }
func (c *ContentType) Splice(offset int) Content    { panic("crdt: ContentType cannot be split") }
func (c *ContentType) mergeWith(right Content) bool { return false }
func (c *ContentType) integrate(tx *Transaction, item *Item) {
	c.Type.integrate(tx.doc, item)
}

// delete deletes every child of the type (walk.go).
func (c *ContentType) delete(tx *Transaction) { deleteWalk(tx, c.Type) }

// gc turns every item of the type into a GC struct (walk.go).
func (c *ContentType) gc(s *structStore) { gcWalk(s, c.Type) }

func (c *ContentType) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteTypeRef(c.Type.kind)
	switch c.Type.kind {
	case KindXmlElement, KindXmlHook:
		enc.WriteKey(c.Type.nodeName)
	}
}

// ContentAny holds a run of Any values (array elements or a map value).
type ContentAny struct{ Arr []any }

func (c *ContentAny) Len() int                              { return len(c.Arr) }
func (c *ContentAny) Countable() bool                       { return true }
func (c *ContentAny) Values() []any                         { return c.Arr }
func (c *ContentAny) copyContent() Content                  { return &ContentAny{append([]any(nil), c.Arr...)} }
func (c *ContentAny) ref() uint8                            { return refAny }
func (c *ContentAny) delete(tx *Transaction)                {}
func (c *ContentAny) gc(s *structStore)                     {}
func (c *ContentAny) integrate(tx *Transaction, item *Item) {}

// Splice shares the backing array between the two halves instead of copying the right one: a
// delete set can split one long run at every element, and copying the rest at each cut made that
// quadratic (a 1 MB update of cuts through a 1M-element run copied terabytes). The left half's
// capacity ends at the cut, so appending to it (mergeWith) reallocates instead of overwriting the
// right half; the right half owns everything after the cut.
func (c *ContentAny) Splice(offset int) Content {
	r := &ContentAny{c.Arr[offset:]}
	c.Arr = c.Arr[:offset:offset]
	return r
}
func (c *ContentAny) mergeWith(right Content) bool {
	r, ok := right.(*ContentAny)
	if ok {
		c.Arr = append(c.Arr, r.Arr...)
	}
	return ok
}
func (c *ContentAny) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteLen(uint64(len(c.Arr) - offset))
	for _, v := range c.Arr[offset:] {
		enc.WriteAny(v)
	}
}

// SubDoc describes a sub-document embedded in a document. The server carries sub-documents
// through intact; it does not load them.
type SubDoc struct {
	GUID     string
	GC       bool // false when the sub-document was created with gc disabled
	AutoLoad bool
	Meta     any
	HasMeta  bool
}

// Opts returns the sub-document options as Yjs writes them: gc (only when false), autoLoad (only
// when true) and meta (only when set).
func (s *SubDoc) Opts() *encoding.Object {
	opts := encoding.NewObject()
	if !s.GC {
		opts.Set("gc", false)
	}
	if s.AutoLoad {
		opts.Set("autoLoad", true)
	}
	if s.HasMeta {
		opts.Set("meta", s.Meta)
	}
	return opts
}

// MarshalJSON renders the sub-document as {"guid": …, "opts": {…}}.
func (s SubDoc) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"guid": s.GUID, "opts": encoding.ToPlain(s.Opts())})
}

func (s SubDoc) String() string {
	b, _ := s.MarshalJSON()
	return string(b)
}

// ContentDoc embeds a sub-document.
type ContentDoc struct{ Doc *SubDoc }

func (c *ContentDoc) Len() int                              { return 1 }
func (c *ContentDoc) Countable() bool                       { return true }
func (c *ContentDoc) Values() []any                         { return []any{c.Doc} }
func (c *ContentDoc) copyContent() Content                  { d := *c.Doc; return &ContentDoc{&d} }
func (c *ContentDoc) ref() uint8                            { return refDoc }
func (c *ContentDoc) delete(tx *Transaction)                {}
func (c *ContentDoc) gc(s *structStore)                     {}
func (c *ContentDoc) integrate(tx *Transaction, item *Item) {}
func (c *ContentDoc) Splice(offset int) Content             { panic("crdt: ContentDoc cannot be split") }
func (c *ContentDoc) mergeWith(right Content) bool          { return false }
func (c *ContentDoc) write(enc encoding.UpdateEncoder, offset int) {
	enc.WriteString(c.Doc.GUID)
	enc.WriteAny(c.Doc.Opts())
}

// readContent reads the content of an item whose info byte is info. A nil Content with the
// decoder's error set means the input was malformed.
func readContent(dec encoding.UpdateDecoder, info uint8) Content {
	switch info & 0x1f {
	case refDeleted:
		return &ContentDeleted{N: int(dec.ReadLen())}
	case refJSON:
		// In V2 the JSON strings come from the string column, not the rest decoder, so the count
		// cannot be checked against the remaining bytes; every element needs a non-empty string
		// from a finite column, so a bogus count fails as soon as the column runs dry.
		n := dec.ReadLen()
		arr := make([]any, 0, min(n, 1024))
		for i := uint64(0); i < n && dec.Err() == nil; i++ {
			s := dec.ReadString()
			if s == "undefined" {
				arr = append(arr, encoding.Undefined{})
				continue
			}
			v, err := encoding.ParseJSON(s)
			if err != nil {
				dec.RestDecoder().Fail(fmt.Errorf("content JSON: %w", err))
				return nil
			}
			arr = append(arr, v)
		}
		return &ContentJSON{Arr: arr}
	case refBinary:
		return &ContentBinary{Data: append([]byte(nil), dec.ReadBuf()...)}
	case refString:
		return newContentString(strings.Clone(dec.ReadString()))
	case refEmbed:
		return &ContentEmbed{Embed: dec.ReadJSON()}
	case refFormat:
		key := dec.ReadKey()
		return &ContentFormat{Key: key, Value: dec.ReadJSON()}
	case refType:
		ref := dec.ReadTypeRef()
		t := newAbstractType(ref)
		switch ref {
		case KindArray, KindMap, KindText, KindXmlFragment, KindXmlText:
		case KindXmlElement, KindXmlHook:
			t.nodeName = dec.ReadKey()
		default:
			dec.RestDecoder().Failf("unknown type ref %d", ref)
			return nil
		}
		return &ContentType{Type: t}
	case refAny:
		n := dec.ReadLen()
		if !fits(dec, n) {
			return nil
		}
		arr := make([]any, 0, n)
		for i := uint64(0); i < n && dec.Err() == nil; i++ {
			arr = append(arr, dec.ReadAny())
		}
		return &ContentAny{Arr: arr}
	case refDoc:
		guid := dec.ReadString()
		opts := dec.ReadAny()
		sd := &SubDoc{GUID: guid, GC: true}
		if o, ok := opts.(*encoding.Object); ok {
			if v, ok := o.Get("gc"); ok {
				if b, ok := v.(bool); ok && !b {
					sd.GC = false
				}
			}
			if v, ok := o.Get("autoLoad"); ok {
				if b, ok := v.(bool); ok && b {
					sd.AutoLoad = true
				}
			}
			if v, ok := o.Get("meta"); ok {
				if _, undef := v.(encoding.Undefined); !undef {
					sd.Meta, sd.HasMeta = v, true
				}
			}
		}
		return &ContentDoc{Doc: sd}
	default:
		dec.RestDecoder().Failf("unknown content ref %d", info&0x1f)
		return nil
	}
}

// fits reports whether n elements could possibly be in the rest of the input (each takes at
// least one byte), so a hostile count cannot make us allocate.
func fits(dec encoding.UpdateDecoder, n uint64) bool {
	if dec.Err() != nil {
		return false
	}
	if n > uint64(dec.RestDecoder().Remaining())+1 {
		dec.RestDecoder().Failf("count %d exceeds input", n)
		return false
	}
	return true
}
