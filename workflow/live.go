package workflow

import (
	"context"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/shareddoc"
)

// SharedDoc adapts a loaded shareddoc document to LiveDoc; nil gives nil (no open document).
// Both methods run fn on the document's goroutine through shareddoc.Doc.Edit, inside one
// transaction with shareddoc.ServerOrigin: what fn changes is broadcast and stored like any
// edit (Update returns once it is stored), and a fn that changes nothing sends nothing.
func SharedDoc(d *shareddoc.Doc) LiveDoc {
	if d == nil {
		return nil
	}
	return sharedDoc{d}
}

type sharedDoc struct{ d *shareddoc.Doc }

func (s sharedDoc) Read(ctx context.Context, fn func(*crdt.Doc) error) error {
	return s.Update(ctx, fn)
}

// Update runs fn as a server-side edit (shareddoc.Doc.Edit): broadcast at once, and returned
// once what it changed is stored.
func (s sharedDoc) Update(ctx context.Context, fn func(*crdt.Doc) error) error {
	_, err := s.d.Edit(ctx, fn)
	return err
}
