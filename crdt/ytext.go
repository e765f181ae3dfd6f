package crdt

import (
	"fmt"
	"strings"
)

// Text is shared rich text (Yjs's Y.Text). Positions and lengths are UTF-16 code units.
//
// Formatting is stored as Yjs does: format items (ContentFormat) mark where an attribute starts
// (non-nil value) and ends (nil value) inside the item list. The algorithms in this file and in
// ytext_format.go follow YText.js closely so that a Go document produces the same items, in the
// same order and with the same origins, as Yjs would for the same operations.
type Text struct{ *AbstractType }

// NewText returns a preliminary text holding initial. It becomes part of a document when inserted
// into one; edits made before that are replayed at that moment, as in Yjs.
func NewText(initial string) *Text {
	t := &Text{newAbstractType(KindText)}
	t.api = t
	if initial != "" {
		_ = t.Insert(0, initial, nil)
	}
	return t
}

// Delta is one run of a text's content as returned by ToDelta (Quill's delta format).
type Delta struct {
	// Insert is a string, an embedded Any value, or a nested shared type (*Map, *XmlElement, ...).
	Insert any
	// Attributes are the formatting attributes of the run; nil when it has none.
	Attributes map[string]any
}

// DeltaOp is one operation for ApplyDelta: exactly one of Insert (non-nil), Retain (> 0) or
// Delete (> 0) is used, checked in that order.
type DeltaOp struct {
	// Insert is a string, an Any value to embed, or a preliminary shared type to embed.
	Insert any
	// Retain skips that many units, applying Attributes to them (a nil attribute value removes it).
	Retain int
	// Delete removes that many units.
	Delete int
	// Attributes are the formatting of an insert or the format changes of a retain.
	Attributes map[string]any
}

// String returns the text content without formatting (embeds and nested types are left out).
func (t *Text) String() string {
	var b strings.Builder
	for n := t.start; n != nil; n = n.Right {
		if !n.Deleted() && n.countable() {
			if s, ok := n.Content.(*ContentString); ok {
				s.appendText(&b)
			}
		}
	}
	return b.String()
}

func (t *Text) toJSON() any { return t.String() }

// ToJSON returns the text without formatting, as Yjs's YText.toJSON.
func (t *Text) ToJSON() string { return t.String() }

// ToDelta returns the content as runs of text, embeds and nested types with their formatting.
// Consecutive string items are merged as long as no visible format item separates them
// (YText.toDelta without snapshots).
func (t *Text) ToDelta() []Delta {
	var ops []Delta
	var cur attrList
	var sb strings.Builder
	pack := func() {
		if sb.Len() > 0 {
			ops = append(ops, Delta{Insert: sb.String(), Attributes: cur.toMap()})
			sb.Reset()
		}
	}
	for n := t.start; n != nil; n = n.Right {
		if n.Deleted() {
			continue
		}
		switch c := n.Content.(type) {
		case *ContentString:
			c.appendText(&sb)
		case *ContentType, *ContentEmbed:
			pack()
			ops = append(ops, Delta{Insert: c.Values()[0], Attributes: cur.toMap()})
		case *ContentFormat:
			pack()
			updateCurrentAttributes(&cur, c)
		}
	}
	pack()
	return ops
}

// textPosition is a cursor between two items of a text (Yjs's ItemTextListPosition). attrs are the
// formatting attributes in effect at the cursor, in the order they were met (a JS Map).
type textPosition struct {
	left, right *Item
	index       int
	attrs       attrList
}

// forward moves the cursor over right. Callers ensure right is not nil.
func (p *textPosition) forward() {
	r := p.right
	if r == nil {
		return
	}
	if !r.Deleted() {
		if f, ok := r.Content.(*ContentFormat); ok {
			updateCurrentAttributes(&p.attrs, f)
		} else {
			// As in Yjs, every non-format item advances the index by its length.
			p.index += r.Length
		}
	}
	p.left = r
	p.right = r.Right
}

// findPosition returns the cursor before unit index.
func (t *AbstractType) findPosition(tx *Transaction, index int, useMarker bool) textPosition {
	if useMarker {
		if m := t.findMarker(index); m != nil {
			pos := textPosition{left: m.p.Left, right: m.p, index: m.index}
			findNextPosition(tx, &pos, index-m.index)
			return pos
		}
	}
	pos := textPosition{right: t.start}
	findNextPosition(tx, &pos, index)
	return pos
}

func findNextPosition(tx *Transaction, pos *textPosition, count int) {
	for pos.right != nil && count > 0 {
		r := pos.right
		if f, ok := r.Content.(*ContentFormat); ok {
			if !r.Deleted() {
				updateCurrentAttributes(&pos.attrs, f)
			}
		} else if !r.Deleted() {
			if count < r.Length {
				// split right
				tx.doc.store.getItemCleanStart(tx, ID{r.ID.Client, r.ID.Clock + count})
			}
			pos.index += r.Length
			count -= r.Length
		}
		pos.left = r
		pos.right = r.Right
	}
}

// run applies edit now, or when the text is integrated if it is still preliminary.
func (t *Text) run(edit func(tx *Transaction) error) error {
	if t.doc == nil {
		return t.addPrelim(edit)
	}
	return t.transact(edit)
}

// Insert inserts s at index. attrs are the formatting of the inserted text; nil continues the
// formatting in effect at index (YText.insert without attributes), while an empty non-nil map
// inserts unformatted text. A nil attribute value means "not set".
func (t *Text) Insert(index int, s string, attrs map[string]any) error {
	if s == "" {
		return nil
	}
	return t.run(func(tx *Transaction) error {
		if index < 0 || index > t.length {
			return fmt.Errorf("%w: insert at %d of %d", ErrIndexOutOfRange, index, t.length)
		}
		pos := t.findPosition(tx, index, attrs == nil)
		var a attrList
		if attrs == nil {
			for _, kv := range pos.attrs {
				a.setObj(kv.key, kv.val)
			}
		} else {
			a = attrsFromMap(attrs)
		}
		t.insertText(tx, &pos, newContentString(s), a)
		return nil
	})
}

// InsertEmbed inserts an embed at index: an Any value (a map describing an image, say) or a
// preliminary shared type (*Map, *Text, *XmlElement, ...). A string is inserted as text, as in
// Yjs. attrs are the embed's formatting (nil: none).
func (t *Text) InsertEmbed(index int, embed any, attrs map[string]any) error {
	c, err := embedContent(embed)
	if err != nil || c == nil {
		return err
	}
	return t.run(func(tx *Transaction) error {
		if index < 0 || index > t.length {
			return fmt.Errorf("%w: insert at %d of %d", ErrIndexOutOfRange, index, t.length)
		}
		pos := t.findPosition(tx, index, attrs == nil)
		t.insertText(tx, &pos, c, attrsFromMap(attrs))
		return nil
	})
}

// embedContent returns the content Yjs's insertText creates for an embed.
func embedContent(embed any) (Content, error) {
	switch x := embed.(type) {
	case string:
		if x == "" {
			return nil, nil
		}
		return newContentString(x), nil
	case YType:
		at := x.abstract()
		if at.doc != nil || at.item != nil {
			return nil, fmt.Errorf("crdt: type is already part of a document")
		}
		return &ContentType{Type: at}, nil
	case *SubDoc:
		return nil, fmt.Errorf("crdt: a sub-document cannot be embedded in text")
	}
	if err := checkAny(embed, 0); err != nil {
		return nil, err
	}
	return &ContentEmbed{Embed: embed}, nil
}

// Delete removes length units starting at index.
func (t *Text) Delete(index, length int) error {
	if length == 0 {
		return nil
	}
	return t.run(func(tx *Transaction) error {
		if index < 0 || length < 0 || index+length > t.length {
			return fmt.Errorf("%w: delete %d at %d of %d", ErrIndexOutOfRange, length, index, t.length)
		}
		pos := t.findPosition(tx, index, true)
		t.deleteText(tx, &pos, length)
		return nil
	})
}

// Format sets the attributes of length units starting at index; a nil value removes the
// attribute. As in Yjs, a range reaching past the end of the text is padded with newlines
// (Quill's trailing newline).
func (t *Text) Format(index, length int, attrs map[string]any) error {
	if length == 0 {
		return nil
	}
	return t.run(func(tx *Transaction) error {
		if index < 0 || length < 0 || index > t.length {
			return fmt.Errorf("%w: format %d at %d of %d", ErrIndexOutOfRange, length, index, t.length)
		}
		pos := t.findPosition(tx, index, false)
		if pos.right == nil {
			return nil
		}
		t.formatText(tx, &pos, length, attrsFromMap(attrs))
		return nil
	})
}

// ApplyDelta applies a Quill delta: inserts (with exactly the given attributes), retains (with
// format changes) and deletes, from the start of the text (YText.applyDelta with sanitize on).
func (t *Text) ApplyDelta(delta []DeltaOp) error {
	for _, op := range delta {
		if op.Insert != nil {
			if _, err := embedContent(op.Insert); err != nil {
				return err
			}
		}
		if op.Retain < 0 || op.Delete < 0 {
			return fmt.Errorf("%w: negative retain or delete in delta", ErrIndexOutOfRange)
		}
	}
	return t.run(func(tx *Transaction) error {
		pos := &textPosition{right: t.start}
		for _, op := range delta {
			switch {
			case op.Insert != nil:
				c, err := embedContent(op.Insert)
				if err != nil {
					return err
				}
				if c != nil {
					t.insertText(tx, pos, c, attrsFromMap(op.Attributes))
				}
			case op.Retain > 0:
				t.formatText(tx, pos, op.Retain, attrsFromMap(op.Attributes))
			case op.Delete > 0:
				t.deleteText(tx, pos, op.Delete)
			}
		}
		return nil
	})
}

// SetAttribute sets an attribute of the text itself (a map entry of the type, as
// YText.setAttribute; not a formatting attribute).
func (t *Text) SetAttribute(name string, value any) error {
	return t.run(func(tx *Transaction) error { return t.mapSetValue(tx, name, value) })
}

// RemoveAttribute removes an attribute of the text itself.
func (t *Text) RemoveAttribute(name string) error {
	return t.run(func(tx *Transaction) error { t.mapDelete(tx, name); return nil })
}

// GetAttribute returns an attribute of the text itself.
func (t *Text) GetAttribute(name string) (any, bool) { return t.mapGet(name) }

// Attributes returns the attributes of the text itself.
func (t *Text) Attributes() map[string]any {
	out := make(map[string]any, len(t.m))
	for _, k := range t.mapKeys() {
		out[k], _ = t.mapGet(k)
	}
	return out
}
