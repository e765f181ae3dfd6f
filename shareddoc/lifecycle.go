package shareddoc

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/awareness"
)

// docState is where a document is in its life. The actor goroutine owns it and changes it only
// through setState, which knows the allowed transitions:
//
//	loading ──▶ live ◀──▶ unloading
//	   │         │  ╲        │
//	   │         │   ╲       ▼
//	   │         ▼    ╲──▶ draining
//	   └──────▶ closed ◀─────┘
//
// (live and unloading may also go straight to closed, and loading does when its load fails.)
type docState uint8

const (
	// stateLoading: the goroutine waits for a predecessor's final flush, then loads; no command
	// is served yet.
	stateLoading docState = iota
	// stateLive: serving sessions and server-side callers.
	stateLive
	// stateUnloading: nobody is attached and the idle countdown ended (or was skipped), but
	// updates still wait for the store; once stored the document unloads. A join or a hold
	// makes it live again.
	stateUnloading
	// stateDraining: stopping for good (shutdown, delete): sessions were closed, joins are
	// refused, and what is pending is stored (or dropped, for a delete) before the final flush.
	stateDraining
	// stateClosed: the final flush (checkpoint, StoreState hook, delete function) runs or ran;
	// the loop ends and nothing else is served.
	stateClosed
)

func (s docState) String() string {
	switch s {
	case stateLoading:
		return "loading"
	case stateLive:
		return "live"
	case stateUnloading:
		return "unloading"
	case stateDraining:
		return "draining"
	case stateClosed:
		return "closed"
	}
	return fmt.Sprintf("docState(%d)", uint8(s))
}

// canBecome reports whether a document in state s may move to state to.
func (s docState) canBecome(to docState) bool {
	switch s {
	case stateLoading:
		return to == stateLive || to == stateClosed
	case stateLive:
		return to == stateUnloading || to == stateDraining || to == stateClosed
	case stateUnloading:
		return to == stateLive || to == stateDraining || to == stateClosed
	case stateDraining:
		return to == stateClosed
	}
	return false
}

// setState moves the document to state to. A transition the diagram does not allow is a bug in
// this package: it is logged and refused rather than taking the process down, and setState
// reports false.
func (d *Doc) setState(to docState) bool {
	if d.state == to {
		return true
	}
	if !d.state.canBecome(to) {
		d.log.Error("invalid document state transition; ignored", "from", d.state.String(), "to", to.String())
		return false
	}
	d.state = to
	return true
}

// stopping reports whether the document refuses new work: it is draining or closed.
func (d *Doc) stopping() bool { return d.state == stateDraining || d.state == stateClosed }

// waitPredecessor waits, within the load deadline, for an instance of the same name that is
// still doing its final flush: its checkpoint must be in the store before this one loads. A
// predecessor stuck on a store that does not answer fails the load (sessions close with
// CloseInternal and reconnect) instead of keeping the joins waiting forever.
func (d *Doc) waitPredecessor(ctx context.Context) error {
	if d.prev == nil {
		return nil
	}
	select {
	case <-d.prev.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("load document %q: previous instance still flushing: %w", d.name, ctx.Err())
	}
}

// bigLoadBytes is the stored size from which load collects the store's garbage before decoding.
const bigLoadBytes = 16 << 20

// load reads the stored state into a fresh crdt.Doc, then runs Hooks.LoadState, both within
// ctx (the load deadline).
func (d *Doc) load(ctx context.Context) error {
	d.ydoc = crdt.NewDoc(crdt.DocOptions{})
	d.aw = awareness.New()
	var (
		checkpoint []byte
		updates    [][]byte
		seq        int64
	)
	err := bounded(ctx, func(ctx context.Context) (err error) {
		checkpoint, updates, seq, err = d.r.cfg.Store.Load(ctx, d.name)
		return err
	})
	if err != nil {
		return fmt.Errorf("load document %q: %w", d.name, err)
	}
	d.loadedAt(seq)
	d.logLen, d.logBytes = len(updates), 0
	for _, u := range updates {
		d.logBytes += int64(len(u))
	}
	stored := d.logBytes + int64(len(checkpoint))
	rows := updates
	if checkpoint != nil {
		rows = append(make([][]byte, 0, 1+len(updates)), checkpoint)
		rows = append(rows, updates...)
	}
	checkpoint, updates = nil, nil
	if stored >= bigLoadBytes {
		// The driver's copies of a big load are garbage now, but the heap only learns that at
		// the next collection, and decoding is about to allocate as much again: collect first,
		// so that a big document's load peaks at its bytes plus the document, not at twice
		// its bytes plus the document. Marking is cheap here (the live heap is mostly the
		// pointer-free rows).
		runtime.GC()
	}
	d.applyStored(rows)
	rows = nil // the stored bytes are garbage from here on; the document holds what they said
	d.ydoc.ObserveUpdateIf(serverEdit, d.observe)
	if h := d.r.cfg.Hooks.LoadState; h != nil {
		// On this goroutine, not bounded like the store calls: the hook changes the document,
		// so it cannot be abandoned; it must return when ctx ends.
		if err := h(ctx, d.name, d.ydoc); err != nil {
			return fmt.Errorf("load state of %q: %w", d.name, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("load state of %q: %w", d.name, ctx.Err())
		}
	}
	return nil
}

// applyStored replays the stored rows (the checkpoint first) into the fresh document in one
// transaction (crdt.ApplyUpdates): a long log then costs about what its merged state does,
// instead of a transaction, a cleanup and a struct merge per row. One bad row must not make the
// document unopenable: a row that does not parse is skipped and logged, the rest still applies.
// Should the integration itself fail (an error or a panic: the document may hold part of some
// row), the document is rebuilt row by row, one transaction each as Yjs would, so that only the
// rows that fail are lost.
func (d *Doc) applyStored(rows [][]byte) {
	skipped, err := safeApplyStored(d.ydoc, rows)
	if err == nil {
		for _, s := range skipped {
			d.log.Error("stored update does not apply; skipped", "index", s.Index, "err", s.Err)
			d.r.stats.StoreErrors.Add(1)
		}
		return
	}
	d.log.Warn("stored updates do not apply together; applying them one by one", "err", err)
	d.ydoc = crdt.NewDoc(crdt.DocOptions{})
	for i, u := range rows {
		if err := safeApply(d.ydoc, u, loadOrigin{}); err != nil {
			d.log.Error("stored update does not apply; skipped", "index", i, "err", err)
			d.r.stats.StoreErrors.Add(1)
		}
	}
}

// safeApplyStored is crdt.ApplyUpdates with a panic turned into an error, like safeApply.
func safeApplyStored(doc *crdt.Doc, rows [][]byte) (skipped []crdt.SkippedUpdate, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %w: panic: %v", errHalfApplied, crdt.ErrMalformedUpdate, v)
		}
	}()
	skipped, err = crdt.ApplyUpdates(doc, rows, loadOrigin{})
	if err == nil && testHookLoadApplied != nil {
		testHookLoadApplied(doc)
	}
	return skipped, err
}

// testHookLoadApplied, set only by tests, runs inside safeApplyStored after the rows were applied
// together (a change and a panic there stand for an integration that failed half-way).
var testHookLoadApplied func(doc *crdt.Doc)

// storeContext returns the context of one bounded storage step: storeCtx (cancelled when a
// shutdown's deadline passes) with timeout as its deadline; zero means no deadline.
func (r *Registry) storeContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(r.storeCtx)
	}
	return context.WithTimeout(r.storeCtx, timeout)
}

// bounded runs fn on its own goroutine and returns its error, or ctx's error as soon as ctx
// ends even if fn has not returned: a store (or driver) that ignores its context must not keep
// a document, and the sessions waiting for it, stuck. The abandoned call finishes on its own
// and its result is dropped; fn must therefore only take and return plain values (the store's
// methods do), never touch the document.
func bounded(ctx context.Context, fn func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done: // returned at the same moment
			return err
		default:
		}
		return ctx.Err()
	}
}

// afterEmpty starts the idle countdown once the last session left.
func (d *Doc) afterEmpty() {
	d.becameEmpty = false
	if d.held() || d.stopping() {
		return
	}
	if d.r.cfg.IdleTimeout <= 0 {
		d.tryUnload()
	} else {
		d.r.wheel.schedule(d, d.r.clock.Now().Add(d.r.cfg.IdleTimeout))
	}
}

// tryUnload unloads the document if no one is attached or on the way and nothing waits to be
// stored; with updates still pending it becomes unloading and tries again once they are stored.
func (d *Doc) tryUnload() {
	if d.stopping() || d.held() {
		return
	}
	if !d.idle() {
		d.setState(stateUnloading)
		return
	}
	if !d.r.beginUnload(d) {
		d.setState(stateLive) // a session is joining; it will find the document live
		return
	}
	d.finish()
}

// revive makes an unloading document live again: a session or a hold arrived.
func (d *Doc) revive() {
	if d.state == stateUnloading {
		d.setState(stateLive)
	}
}

// beginStop starts stopping for good at shutdown: sessions are closed and what is pending is
// stored before the final flush.
func (d *Doc) beginStop() {
	if d.stopping() {
		return // already draining (a delete)
	}
	d.setState(stateDraining)
	for _, p := range d.peers {
		d.kick(p, CloseShutdown, nil)
	}
	if d.retryTimer != nil {
		// Shutting down: one more attempt now rather than after the backoff.
		d.retryTimer.Stop()
		d.retryTimer = nil
	}
}

// maybeFinish ends a stopping document once everything is stored (or storage was cancelled).
func (d *Doc) maybeFinish() {
	if d.state == stateDraining && d.idle() {
		d.finish()
	}
}

// failCorrupt stops a document whose in-memory state may hold a half-applied update: it must
// not serve, broadcast or checkpoint that state. Its sessions close with CloseInternal (they
// reconnect), the registry stops handing it out at once, what is pending (updates applied in full
// before) is still stored, and the next join loads the document afresh from the store.
func (d *Doc) failCorrupt(err error) {
	if d.stopping() {
		return
	}
	d.log.Error("update failed half-way; reloading the document from the store", "err", err)
	d.corrupt = true
	d.r.mu.Lock()
	if d.r.docs[d.name] == d {
		delete(d.r.docs, d.name)
		d.r.unloading[d.name] = d // the next load waits until what is pending is stored
	}
	d.r.mu.Unlock()
	d.r.wheel.cancel(d)
	d.setState(stateDraining)
	for _, p := range d.peers {
		d.kick(p, CloseInternal, err)
	}
	d.maybeFinish()
}

// finish checkpoints the document (compacting its log) and ends the actor. Nobody is attached
// and the registry no longer hands the document out, so blocking on storage is fine here.
func (d *Doc) finish() {
	d.setState(stateClosed)
	if d.edits.deleteFn != nil {
		d.finishDelete()
		return
	}
	if d.r.storeCtx.Err() != nil || d.corrupt {
		return // a corrupt state is never checkpointed (nor compact()ed): the log has everything applied in full
	}
	if d.logLen > 0 {
		d.verifySync() // so that the checkpoint can cover what the relay brought (prefix.go)
	}
	needCheckpoint := d.logLen > 0 && d.pos.verified > 0
	if !needCheckpoint && d.r.cfg.Hooks.StoreState == nil {
		return
	}
	state, err := safeDiff(d.ydoc, nil)
	if err != nil {
		d.log.Error("encode state for checkpoint", "err", err)
		return
	}
	if h := d.r.cfg.Hooks.StoreState; h != nil {
		if err := d.r.withinFlush(func(ctx context.Context) error { return h(ctx, d.name, state) }); err != nil {
			d.log.Error("store state hook", "err", err)
		}
	}
	if !needCheckpoint {
		return
	}
	upto := d.pos.verified
	if err := d.r.withinFlush(func(ctx context.Context) error { return d.r.cfg.Store.Compact(ctx, d.name, state, upto) }); err != nil {
		// The log is still complete; compaction only makes the next load cheaper.
		d.r.stats.StoreErrors.Add(1)
		d.log.Error("checkpoint failed", "err", err)
		return
	}
	d.log.Debug("checkpointed", "bytes", len(state), "upto_seq", d.pos.verified)
}

// withinFlush runs one checkpoint or StoreState call bounded by Config.FlushTimeout. A
// checkpoint that does not finish is given up (the log is still complete, so nothing is lost;
// the next load only replays more), so that a document can still unload or stop.
func (r *Registry) withinFlush(fn func(ctx context.Context) error) error {
	ctx, cancel := r.storeContext(r.cfg.FlushTimeout)
	defer cancel()
	return bounded(ctx, fn)
}
