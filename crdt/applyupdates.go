package crdt

import "fmt"

// SkippedUpdate is an update ApplyUpdates left out, with the reason.
type SkippedUpdate struct {
	Index int // position in the updates given
	Err   error
}

// ApplyUpdates applies V1 updates to doc in order within one transaction, as Yjs does when
// applyUpdate runs inside doc.transact. The document ends up as if they were applied one by one
// with ApplyUpdate, but the struct store is merged and garbage-collected once at the end instead
// of after every update, and update observers see one update. That makes replaying a long log
// (a document loaded from storage) cost about as much as applying its merged state.
//
// Each update is read just before it is integrated. A malformed one is left out without changing
// doc — the others still apply — and reported in skipped. err is a failure of the integration
// itself; doc may then hold part of that update, as with ApplyUpdate.
func ApplyUpdates(doc *Doc, updates [][]byte, origin any) (skipped []SkippedUpdate, err error) {
	doc.transact(func(tx *Transaction) {
		tx.Local = false
		for i, u := range updates {
			refs, ds, rerr := readUpdate(u, false)
			if rerr != nil {
				skipped = append(skipped, SkippedUpdate{Index: i, Err: rerr})
				continue
			}
			doc.applyRefs(tx, refs, ds)
			if tx.err != nil {
				err = fmt.Errorf("update %d: %w", i, tx.err)
				return
			}
		}
	}, origin, false)
	return skipped, err
}
