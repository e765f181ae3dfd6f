package shareddoc

import (
	"fmt"

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

// load reads the stored state into a fresh crdt.Doc, then runs Hooks.LoadState.
func (d *Doc) load() error {
	d.ydoc = crdt.NewDoc(crdt.DocOptions{})
	d.aw = awareness.New()
	checkpoint, updates, seq, err := d.r.cfg.Store.Load(d.r.storeCtx, d.name)
	if err != nil {
		return fmt.Errorf("load document %q: %w", d.name, err)
	}
	d.loadedAt(seq)
	d.logLen = len(updates)
	if checkpoint != nil {
		updates = append([][]byte{checkpoint}, updates...)
	}
	for i, u := range updates {
		if err := safeApply(d.ydoc, u, loadOrigin{}); err != nil {
			// One bad row must not make the document unopenable; the rest still applies.
			d.log.Error("stored update does not apply; skipped", "index", i, "err", err)
			d.r.stats.StoreErrors.Add(1)
		}
	}
	d.ydoc.ObserveUpdateIf(serverEdit, d.observe)
	if h := d.r.cfg.Hooks.LoadState; h != nil {
		if err := h(d.r.storeCtx, d.name, d.ydoc); err != nil {
			return fmt.Errorf("load state of %q: %w", d.name, err)
		}
	}
	return nil
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

// finish checkpoints the document (compacting its log) and ends the actor. Nobody is attached
// and the registry no longer hands the document out, so blocking on storage is fine here.
func (d *Doc) finish() {
	d.setState(stateClosed)
	if d.edits.deleteFn != nil {
		d.finishDelete()
		return
	}
	if d.r.storeCtx.Err() != nil {
		return
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
		if err := h(d.r.storeCtx, d.name, state); err != nil {
			d.log.Error("store state hook", "err", err)
		}
	}
	if !needCheckpoint {
		return
	}
	if err := d.r.cfg.Store.Compact(d.r.storeCtx, d.name, state, d.pos.verified); err != nil {
		// The log is still complete; compaction only makes the next load cheaper.
		d.r.stats.StoreErrors.Add(1)
		d.log.Error("checkpoint failed", "err", err)
		return
	}
	d.log.Debug("checkpointed", "bytes", len(state), "upto_seq", d.pos.verified)
}
