package shareddoc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

// Server-side edits: Go code (the HTTP document API, the workflow service) changes a document
// the way a client does, without pretending to be a session. An edit runs as one transaction on
// the document's goroutine; what it changes is broadcast to every session at once, queued for
// the store like a client's update, and the caller gets the seq once it is stored.

// Errors of server-side edits.
var (
	// ErrTooLarge: the update would take the document past Config.MaxDocBytes; nothing changed.
	ErrTooLarge = errors.New("shareddoc: " + ReasonTooLarge)
	// ErrBacklog: the store is behind (pending bytes over budget); retry later. Nothing changed.
	ErrBacklog = errors.New("shareddoc: storage backlog, try again later")
	// ErrNotStored: the edit was applied and broadcast but could not be stored (storage was
	// cancelled at shutdown).
	ErrNotStored = errors.New("shareddoc: edit applied but not stored")
)

// CloseDeleted: the document was deleted (Registry.Delete); sessions should not come back.
const CloseDeleted CloseReason = 100

// editState is the actor's share of server-side edits (owned by the document goroutine).
type editState struct {
	holds    int         // Hold callers keeping the document loaded without a session
	cur      *editWaiter // the Edit whose transaction is running; observe attaches its updates
	deleteFn func(ctx context.Context) error
	deleted  chan error // capacity 1; Registry.Delete's result, sent by finish
}

// editWaiter collects the store results of the updates one edit produced.
type editWaiter struct {
	n     int // updates still waiting for the store
	seq   int64
	err   error
	reply chan editResult // capacity 1
}

type editResult struct {
	seq int64
	err error
}

// ack records one stored (or lost) update of w and replies when it was the last.
func (w *editWaiter) ack(seq int64, err error) {
	if w == nil {
		return
	}
	w.seq = max(w.seq, seq)
	if err != nil && w.err == nil {
		w.err = err
	}
	w.n--
	if w.n == 0 {
		w.reply <- editResult{seq: w.seq, err: w.err}
	}
}

// attach registers one more update for the running edit, if any.
func (s *editState) attach() *editWaiter {
	if s.cur != nil {
		s.cur.n++
	}
	return s.cur
}

// held reports whether anyone keeps the document loaded: sessions or Hold callers.
func (d *Doc) held() bool { return len(d.peers) > 0 || d.edits.holds > 0 }

// Edit runs fn on the document's goroutine as one transaction, like a client's edit: what it
// changes goes to every session and to the store, and Edit returns, once all of it is stored, a
// seq that covers it (the document's last stored seq if fn changed nothing). fn must not keep the *crdt.Doc. Yjs has no rollback: changes fn made before
// returning an error stay (and are stored); return errors before changing anything. A panic in
// fn is returned as an error.
func (d *Doc) Edit(ctx context.Context, fn func(*crdt.Doc) error) (int64, error) {
	w := &editWaiter{reply: make(chan editResult, 1)}
	if err := d.send(ctx, editCmd{fn: fn, w: w}); err != nil {
		return 0, err
	}
	return w.wait(ctx, d)
}

func (w *editWaiter) wait(ctx context.Context, d *Doc) (int64, error) {
	select {
	case res := <-w.reply:
		return res.seq, res.err
	case <-d.done:
		select {
		case res := <-w.reply:
			return res.seq, res.err
		default:
		}
		return 0, d.closedErr()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

type editCmd struct {
	fn func(*crdt.Doc) error
	w  *editWaiter
}

func (c editCmd) run(d *Doc) {
	if d.stopping() {
		c.w.reply <- editResult{err: ErrClosed}
		return
	}
	var fnErr error
	d.edits.cur = c.w
	c.w.n++ // held until the transaction is over, so no partial reply
	d.ydoc.Transact(func(tx *crdt.Transaction) {
		// Recovered inside the transaction so that it still ends (and what fn changed is
		// cleaned up, broadcast and stored): a panic escaping Transact would leave the
		// document's transaction state behind.
		defer func() {
			if v := recover(); v != nil {
				fnErr = fmt.Errorf("edit %q: panic: %v", d.name, v)
			}
		}()
		fnErr = c.fn(tx.Doc())
	}, ServerOrigin{})
	d.edits.cur = nil
	if fnErr != nil && c.w.err == nil {
		c.w.err = fnErr
	}
	c.w.ack(d.pos.prefix, nil)
}

// ApplyUpdate applies a binary Yjs update (V1, or V2 when v2) sent by a server-side caller
// (the HTTP API) like a client's update: checked first (a malformed update is an error wrapping
// crdt.ErrMalformedUpdate and changes nothing), refused with ErrTooLarge past
// Config.MaxDocBytes and with ErrBacklog while the store is behind, then applied, broadcast and
// stored as sent. It returns the update's seq once stored (the last stored seq for an update
// that brings nothing new).
func (d *Doc) ApplyUpdate(ctx context.Context, update []byte, v2 bool) (int64, error) {
	v1, err := checkUpdate(update, v2)
	if err != nil {
		return 0, err
	}
	w := &editWaiter{reply: make(chan editResult, 1)}
	if err := d.send(ctx, applyCmd{update: v1, w: w}); err != nil {
		return 0, err
	}
	return w.wait(ctx, d)
}

// checkUpdate decodes the whole update into a scratch document (so a malformed one is refused
// before the live document sees it) and returns it in V1.
func checkUpdate(update []byte, v2 bool) (v1 []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic: %v", crdt.ErrMalformedUpdate, v)
		}
	}()
	if len(update) == 0 {
		return nil, fmt.Errorf("%w: empty", crdt.ErrMalformedUpdate)
	}
	v1 = update
	if v2 {
		if v1, err = crdt.ConvertUpdateFormatV2ToV1(update); err != nil {
			return nil, fmt.Errorf("%w: %w", crdt.ErrMalformedUpdate, err)
		}
	}
	if err := crdt.ApplyUpdate(crdt.NewDoc(crdt.DocOptions{}), v1, nil); err != nil {
		return nil, err
	}
	return v1, nil
}

type applyCmd struct {
	update []byte
	w      *editWaiter
}

func (c applyCmd) run(d *Doc) {
	if d.stopping() {
		c.w.reply <- editResult{err: ErrClosed}
		return
	}
	n := int64(len(c.update))
	if d.overPendingBudget(n) && d.bringsNew(c.update) {
		c.w.reply <- editResult{err: ErrBacklog}
		return
	}
	if lim := d.r.cfg.MaxDocBytes; lim > 0 && (!d.budget.measured || d.budget.size+n > lim) {
		if !d.budget.sizeExact || !d.budget.measured {
			d.measure()
		}
		if d.budget.size+n > lim && d.bringsNew(c.update) {
			c.w.reply <- editResult{err: fmt.Errorf("%w: %d bytes plus a %d-byte update is over %d", ErrTooLarge, d.budget.size, n, lim)}
			return
		}
	}
	// loadOrigin: observe leaves the update alone; like a peer's, its own bytes are relayed and
	// stored.
	if err := d.apply(c.update, loadOrigin{}); err != nil {
		c.w.reply <- editResult{err: err}
		return
	}
	if len(c.update) <= len(emptyUpdate) {
		c.w.reply <- editResult{seq: d.pos.prefix}
		return
	}
	frame := syncproto.EncodeUpdate(c.update)
	d.broadcast(frame, nil)
	c.w.n++
	d.enqueue(pendingUpdate{update: c.update, frame: frame, ack: c.w})
}

// Hold loads the document called name (if it is not loaded) and keeps it loaded, without a
// session, until release is called (once). Hooks.OnJoin does not run; Hooks.LoadState does.
func (r *Registry) Hold(ctx context.Context, name string) (doc *Doc, release func(), err error) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, nil, ErrClosed
	}
	d := r.docs[name]
	if d == nil {
		d = newDoc(r, name, r.unloading[name])
		r.docs[name] = d
		r.stats.DocumentsLoaded.Add(1)
		go d.run()
	}
	d.joining++ // as a join: the document does not unload while the hold is on its way
	r.mu.Unlock()

	reply := make(chan error, 1)
	if err := d.send(ctx, holdCmd{reply: reply}); err != nil {
		d.abandonJoin()
		return nil, nil, fmt.Errorf("hold %q: %w", name, err)
	}
	select {
	case err = <-reply:
	case <-d.done:
		err = d.closedErr()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hold %q: %w", name, err)
	}
	released := false
	return d, func() {
		if released {
			return
		}
		released = true
		_ = d.send(context.Background(), releaseCmd{})
	}, nil
}

type holdCmd struct{ reply chan error }

func (c holdCmd) run(d *Doc) {
	d.r.mu.Lock()
	d.joining--
	d.r.mu.Unlock()
	if d.stopping() {
		c.reply <- ErrClosed
		return
	}
	d.edits.holds++
	d.r.wheel.cancel(d)
	d.revive()
	c.reply <- nil
}

type releaseCmd struct{}

func (releaseCmd) run(d *Doc) {
	d.edits.holds--
	if !d.held() {
		d.becameEmpty = true
	}
}

// Edit is Doc.Edit on the document called name, loaded for the edit if it is not (and unloaded
// after the idle timeout if nobody else uses it).
func (r *Registry) Edit(ctx context.Context, name string, fn func(*crdt.Doc) error) (int64, error) {
	d, release, err := r.Hold(ctx, name)
	if err != nil {
		return 0, err
	}
	defer release()
	return d.Edit(ctx, fn)
}

// Delete deletes the document called name: its sessions are closed with CloseDeleted, updates
// not yet stored are dropped, and del (which removes the stored log, checkpoints and anything
// else kept for the document) runs once the document has stopped, before any new session can
// load it again. A document that is not loaded is deleted at once. New joins during the delete
// fail with ErrClosed (sessions reconnect and find the document empty).
func (r *Registry) Delete(ctx context.Context, name string, del func(ctx context.Context) error) error {
	d := r.Get(name)
	if d == nil {
		return del(ctx)
	}
	done := make(chan error, 1)
	if err := d.send(ctx, deleteCmd{del: del, done: done}); err != nil {
		if errors.Is(err, ErrClosed) {
			<-d.done // stopping anyway (shutdown, unload): delete after it
			return del(ctx)
		}
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type deleteCmd struct {
	del  func(ctx context.Context) error
	done chan error
}

func (c deleteCmd) run(d *Doc) {
	if d.stopping() {
		// Already stopping (shutdown): delete once it is gone.
		go func() {
			<-d.done
			c.done <- c.del(d.r.storeCtx)
		}()
		return
	}
	d.setState(stateDraining)
	d.edits.deleteFn = c.del
	d.edits.deleted = c.done
	for _, p := range d.peers {
		d.kick(p, CloseDeleted, nil)
	}
	for _, u := range d.pending {
		u.ack.ack(0, ErrNotStored)
	}
	d.pending = nil
	d.recountPending()
	if d.retryTimer != nil {
		d.retryTimer.Stop()
		d.retryTimer = nil
	}
}

// finishDelete runs in finish instead of the checkpoint when the document is being deleted.
func (d *Doc) finishDelete() {
	err := d.edits.deleteFn(d.r.storeCtx)
	if err != nil {
		d.log.Error("delete failed", "err", err)
	} else {
		d.log.Info("deleted")
	}
	d.edits.deleted <- err
}
