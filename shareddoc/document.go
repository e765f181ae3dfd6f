package shareddoc

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/awareness"
	"github.com/ysync/ysync/crdt/syncproto"
)

// Timing of the document actor.
const (
	// awarenessCheckInterval is how often outdated awareness states are dropped: a tenth of the
	// timeout, as y-protocols checks.
	awarenessCheckInterval = awareness.OutdatedTimeout / 10
	// retryMin and retryMax bound the backoff between failed Append attempts.
	retryMin = 100 * time.Millisecond
	retryMax = 30 * time.Second
)

// Doc is one loaded document. Its goroutine owns the crdt.Doc, the awareness states and the peer
// set; the exported methods only send it commands and are safe for concurrent use.
type Doc struct {
	name string
	r    *Registry
	log  *slog.Logger

	cmds     chan command
	results  chan storeResult   // storage goroutine → actor; capacity 1, one batch in flight
	compacts chan compactResult // capacity 1, one Compact in flight
	fills    chan fillResult    // capacity 1, one log read in flight (prefix.go)
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	prev     *Doc  // a predecessor still doing its final flush; load waits for it
	err      error // why the document stopped; written before done is closed

	joining  int  // sessions on their way in; guarded by r.mu
	evicting bool // chosen for eviction, not yet ended (evict.go); guarded by r.mu

	idleWake  chan struct{} // the idle wheel's countdown ended, or eviction (wheel.go)
	idleEntry *idleEntry    // the wheel's entry while counting down; guarded by r.wheel.mu

	// prefixSeen mirrors pos.prefix for the registry's position check.
	prefixSeen atomic.Int64

	// Owned by the actor goroutine.
	ydoc         *crdt.Doc
	aw           *awareness.Awareness
	peers        map[string]*peer
	pending      []pendingUpdate                // applied, not yet handed to the store
	storing      []pendingUpdate                // handed to the store, result not back yet
	pos          logPos                         // contiguous prefix of the log; a checkpoint covers at most it (prefix.go)
	remoteAw     map[string]map[uint64]struct{} // awareness clients per other node (remote.go)
	recvAt       time.Time                      // Receive time of the message being handled (zero outside msgCmd.run)
	logLen       int                            // updates in the log since the last checkpoint (approximately)
	compacting   bool
	stopping     bool
	unloadWanted bool
	becameEmpty  bool
	retryDelay   time.Duration
	retryTimer   Timer          // armed while a failed batch waits to be retried
	budget       budget         // pending bytes and size estimate (budget.go)
	awTimer      Timer          // armed while the awareness remembers any client (awareness.go)
	awState      awarenessState // client id owners, cached frame (awareness.go)
	exit         bool
	edits        editState // server-side edits, holds and deletion (edit.go)
}

type peer struct {
	info    SessionInfo
	p       Peer
	clients map[uint64]struct{} // awareness client ids this session introduced
}

type pendingUpdate struct {
	update []byte
	frame  []byte // the Update frame, echoed to origin once stored
	origin string // session id; empty for server-side edits

	ack *editWaiter // a server-side edit waiting for this update to be stored (edit.go)
}

// storeResult reports one batch: per update, its seq or its error.
type storeResult struct {
	seqs []int64
	errs []error
	dur  time.Duration
}

type compactResult struct {
	upto int64
	err  error
}

// Origins passed to crdt.ApplyUpdate / Transact so that the update observer can tell apart
// what it must broadcast and store.
type loadOrigin struct{}

// ServerOrigin is the transaction origin of server-side edits made with Doc.Update.
type ServerOrigin struct{}

type command interface{ run(d *Doc) }

func newDoc(r *Registry, name string, prev *Doc) *Doc {
	return &Doc{
		name:     name,
		r:        r,
		log:      r.log.With("doc", name),
		cmds:     make(chan command, r.cfg.CommandBuffer),
		results:  make(chan storeResult, 1),
		compacts: make(chan compactResult, 1),
		fills:    make(chan fillResult, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		prev:     prev,
		peers:    make(map[string]*peer),
		idleWake: make(chan struct{}, 1),
	}
}

// Name returns the document's name.
func (d *Doc) Name() string { return d.name }

// Done is closed when the document's goroutine has ended.
func (d *Doc) Done() <-chan struct{} { return d.done }

func (d *Doc) closedErr() error {
	if d.err != nil {
		return d.err
	}
	return ErrClosed
}

// send queues a command, blocking while the channel is full: this is the sessions' backpressure.
func (d *Doc) send(ctx context.Context, c command) error {
	select {
	case d.cmds <- c:
		return nil
	case <-d.done:
		return d.closedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Receive hands the document one decoded message from a session. Messages of one session are
// applied in the order Receive is called. It blocks while the document's command channel is full.
// The error is only about delivery (ctx ended, document closed); what the message does is
// reported to the session through its Peer.
func (d *Doc) Receive(ctx context.Context, sessionID string, msg syncproto.Message) error {
	return d.send(ctx, msgCmd{id: sessionID, msg: msg, at: time.Now()})
}

// Leave detaches a session, removing the awareness states it introduced. It is a no-op for a
// session that is not attached (for instance one the document already closed as slow).
func (d *Doc) Leave(sessionID string) {
	reply := make(chan *peer, 1)
	if d.send(context.Background(), leaveCmd{id: sessionID, reply: reply}) != nil {
		return
	}
	var p *peer
	select {
	case p = <-reply:
	case <-d.done:
	}
	if p != nil && d.r.cfg.Hooks.OnLeave != nil {
		d.r.cfg.Hooks.OnLeave(d.name, p.info)
	}
}

// Update runs fn in a transaction on the document's goroutine. What it changes goes to every
// session and to the store, like any edit.
func (d *Doc) Update(ctx context.Context, fn func(tx *crdt.Transaction)) error {
	reply := make(chan error, 1)
	if err := d.send(ctx, updateCmd{fn: fn, reply: reply}); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-d.done:
		return d.closedErr()
	}
}

// Info describes a loaded document for the admin API.
type Info struct {
	Name string `json:"name"`
	// Sessions are the attached sessions, oldest first.
	Sessions []SessionInfo `json:"-"`
	// Bytes is the size of the whole document encoded as one update.
	Bytes int `json:"bytes"`
	// StateVector is the encoded state vector, base64.
	StateVector string `json:"state_vector"`
	// AwarenessStates counts the clients with an awareness state.
	AwarenessStates int `json:"awareness_states"`
	// PendingUpdates counts updates applied but not yet stored.
	PendingUpdates int `json:"pending_updates"`
}

// Info asks the document for a description of itself.
func (d *Doc) Info(ctx context.Context) (Info, error) {
	reply := make(chan Info, 1)
	if err := d.send(ctx, infoCmd{reply: reply}); err != nil {
		return Info{}, err
	}
	select {
	case in := <-reply:
		return in, nil
	case <-d.done:
		return Info{}, d.closedErr()
	case <-ctx.Done():
		return Info{}, ctx.Err()
	}
}

// --- the actor ---------------------------------------------------------------------------------

func (d *Doc) run() {
	defer func() {
		d.r.wheel.cancel(d)
		if h := d.r.cfg.Hooks.OnUnload; h != nil && d.err == nil {
			h(d.name)
		}
		d.r.forget(d)
		d.r.stats.DocumentsLoaded.Add(-1)
		d.releaseBudget()
		close(d.done)
	}()
	if d.prev != nil {
		<-d.prev.done
	}
	defer d.subscribe()()
	loadStart := time.Now()
	err := d.load()
	d.r.stats.LoadLatency.Observe(time.Since(loadStart))
	if err != nil {
		d.err = err
		d.r.stats.StoreErrors.Add(1)
		d.log.Error("load failed", "err", err)
		return
	}
	defer d.stopTimers()
	d.log.Debug("loaded", "log_len", d.logLen, "seq", d.pos.prefix)
	if d.r.cfg.Relay != nil {
		d.r.cfg.Relay.QueryAwareness(d.name)
	}
	stop := d.stop
	for !d.exit {
		select {
		case c := <-d.cmds:
			c.run(d)
		case res := <-d.results:
			d.stored(res)
			d.recountPending()
		case res := <-d.compacts:
			d.compacted(res)
		case res := <-d.fills:
			d.filled(res)
		case <-timerC(d.awTimer):
			d.awarenessTick()
		case <-d.idleWake:
			d.tryUnload()
		case <-timerC(d.retryTimer):
			d.retryTimer = nil
		case <-timerC(d.pos.grace):
			d.graceOver()
		case <-stop:
			stop = nil
			d.beginStop()
		}
		if d.becameEmpty {
			d.afterEmpty()
		}
		d.maybeFill()
		d.flush()
		d.maybeFinish()
	}
}

func timerC(t Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

func (d *Doc) stopTimers() {
	for _, t := range []Timer{d.awTimer, d.retryTimer, d.pos.grace} {
		if t != nil {
			t.Stop()
		}
	}
}

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

// serverEdit reports whether a transaction's update must be broadcast and stored by observe.
// Peers' updates are handled where they are applied (their raw bytes are broadcast, stored and
// echoed) and loading replays stored bytes, so the crdt core need not encode those at all.
func serverEdit(origin any) bool {
	switch origin.(type) {
	case *peer, loadOrigin, remoteOrigin:
		return false
	}
	return true
}

// observe sees every server-side edit of the crdt.Doc (see serverEdit).
func (d *Doc) observe(update []byte, origin any, _ *crdt.Transaction) {
	u := bytes.Clone(update)
	frame := syncproto.EncodeUpdate(u)
	d.broadcast(frame, nil)
	d.enqueue(pendingUpdate{update: u, frame: frame, ack: d.edits.attach()})
}

// safeApply applies an update, turning a panic in the CRDT code into an error: a hostile frame
// must not take the process down.
func safeApply(doc *crdt.Doc, update []byte, origin any) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: panic: %v", crdt.ErrMalformedUpdate, v)
		}
	}()
	return crdt.ApplyUpdate(doc, update, origin)
}

func safeDiff(doc *crdt.Doc, sv []byte) (diff []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("encode state: panic: %v", v)
		}
	}()
	return crdt.EncodeStateAsUpdate(doc, sv)
}

// emptyUpdate is a V1 update with no structs and an empty delete set, what a client with nothing
// to contribute answers to SyncStep1.
var emptyUpdate = []byte{0, 0}

// --- commands ----------------------------------------------------------------------------------

type joinCmd struct {
	info  SessionInfo
	peer  Peer
	reply chan error
}

func (c joinCmd) run(d *Doc) {
	d.r.mu.Lock()
	d.joining--
	d.r.endEvictionLocked(d) // joined again before it could unload: no longer evicted
	d.r.mu.Unlock()
	if d.stopping {
		c.reply <- ErrClosed
		return
	}
	if _, dup := d.peers[c.info.ID]; dup {
		c.reply <- fmt.Errorf("session %q already attached", c.info.ID)
		return
	}
	d.peers[c.info.ID] = &peer{info: c.info, p: c.peer, clients: make(map[uint64]struct{})}
	d.r.wheel.cancel(d)
	d.unloadWanted = false
	c.reply <- nil
}

type leaveCmd struct {
	id    string
	reply chan *peer
}

func (c leaveCmd) run(d *Doc) {
	p := d.peers[c.id]
	if p != nil {
		d.detach(p)
	}
	c.reply <- p
}

type updateCmd struct {
	fn    func(tx *crdt.Transaction)
	reply chan error
}

func (c updateCmd) run(d *Doc) {
	if d.stopping {
		c.reply <- ErrClosed
		return
	}
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("update %q: panic: %v", d.name, v)
			}
		}()
		d.ydoc.Transact(c.fn, ServerOrigin{})
		return nil
	}()
	c.reply <- err
}

type infoCmd struct{ reply chan Info }

func (c infoCmd) run(d *Doc) {
	in := Info{
		Name:            d.name,
		StateVector:     base64.StdEncoding.EncodeToString(crdt.EncodeStateVector(d.ydoc)),
		AwarenessStates: d.aw.Len(),
		PendingUpdates:  len(d.pending) + len(d.storing),
	}
	if u, err := safeDiff(d.ydoc, nil); err == nil {
		in.Bytes = len(u)
	}
	for _, p := range d.peers {
		in.Sessions = append(in.Sessions, p.info)
	}
	slices.SortFunc(in.Sessions, func(a, b SessionInfo) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	c.reply <- in
}

type msgCmd struct {
	id  string
	msg syncproto.Message
	at  time.Time // when Receive was called, for the propagation histogram
}

func (c msgCmd) run(d *Doc) {
	p := d.peers[c.id]
	if p == nil {
		return // detached (closed as slow or bad) while the message was on its way
	}
	d.recvAt = c.at
	defer func() { d.recvAt = time.Time{} }()
	m := c.msg
	switch m.Type {
	case syncproto.TypeSync:
		switch m.SyncType {
		case syncproto.SyncStep1:
			diff, err := safeDiff(d.ydoc, m.Payload)
			if err != nil {
				d.kick(p, CloseBadUpdate, fmt.Errorf("sync step 1: %w", err))
				return
			}
			if !d.sendTo(p, syncproto.EncodeSyncStep2(diff)) ||
				!d.sendTo(p, syncproto.EncodeSyncStep1(crdt.EncodeStateVector(d.ydoc))) {
				return
			}
			if d.aw.Len() > 0 {
				d.sendTo(p, d.awarenessFrame())
			}
		case syncproto.SyncStep2, syncproto.SyncUpdate:
			d.applyFromPeer(p, m.Payload)
		}
	case syncproto.TypeAwareness:
		d.applyAwareness(p, m.Payload)
	case syncproto.TypeQueryAwareness:
		d.sendTo(p, d.awarenessFrame())
	}
}

func (d *Doc) applyFromPeer(p *peer, update []byte) {
	if !d.admitUpdate(p, update) {
		return
	}
	if err := safeApply(d.ydoc, update, p); err != nil {
		d.kick(p, CloseBadUpdate, err)
		return
	}
	if bytes.Equal(update, emptyUpdate) || len(update) == 0 {
		return
	}
	frame := syncproto.EncodeUpdate(update)
	d.broadcast(frame, p)
	if !d.recvAt.IsZero() {
		d.r.stats.PropagationLatency.Observe(time.Since(d.recvAt))
	}
	d.enqueue(pendingUpdate{update: update, frame: frame, origin: p.info.ID})
}

// --- peers -------------------------------------------------------------------------------------

// sendTo queues frame for p; a peer over budget is detached and closed as slow.
func (d *Doc) sendTo(p *peer, frame []byte) bool {
	if p.p.Send(frame) {
		return true
	}
	d.r.stats.SlowCloses.Add(1)
	d.kick(p, CloseSlow, nil)
	return false
}

// ack tells an Acker peer the outcome of its update; a peer over budget is closed as slow.
func (d *Doc) ack(p *peer, a Acker, ok bool) {
	if a.Ack(ok) {
		return
	}
	d.r.stats.SlowCloses.Add(1)
	d.kick(p, CloseSlow, nil)
}

// broadcast queues frame for every peer but except. Peers over budget are closed after the loop
// so that their awareness removal does not interleave with this frame.
func (d *Doc) broadcast(frame []byte, except *peer) {
	var slow []*peer
	for _, p := range d.peers {
		if p != except && !p.p.Send(frame) {
			slow = append(slow, p)
		}
	}
	for _, p := range slow {
		if d.peers[p.info.ID] == p {
			d.r.stats.SlowCloses.Add(1)
			d.kick(p, CloseSlow, nil)
		}
	}
}

// kick detaches p and closes it.
func (d *Doc) kick(p *peer, reason CloseReason, err error) {
	if reason == CloseBadUpdate {
		d.r.stats.BadUpdateCloses.Add(1)
	}
	lvl := slog.LevelInfo
	if reason == CloseBadUpdate || reason == CloseInternal {
		lvl = slog.LevelWarn
	}
	d.log.Log(context.Background(), lvl, "closing session", "session", p.info.ID, "user", p.info.User, "reason", reason.String(), "err", err)
	d.detach(p)
	p.p.Close(reason, err)
}

// detach removes p from the peer set and its awareness states from everyone's view.
func (d *Doc) detach(p *peer) {
	if d.peers[p.info.ID] != p {
		return
	}
	delete(d.peers, p.info.ID)
	d.dropPeerAwareness(p)
	if len(d.peers) == 0 {
		// Acted on by the loop, after the current command: unloading here could end the
		// document in the middle of a broadcast or a transaction.
		d.becameEmpty = true
	}
}

// afterEmpty starts the idle countdown once the last session left.
func (d *Doc) afterEmpty() {
	d.becameEmpty = false
	if d.held() || d.stopping {
		return
	}
	if d.r.cfg.IdleTimeout <= 0 {
		d.tryUnload()
	} else {
		d.r.wheel.schedule(d, d.r.clock.Now().Add(d.r.cfg.IdleTimeout))
	}
}

// --- storage -----------------------------------------------------------------------------------

// flush hands the next batch of pending updates to the store. Only one batch is in flight per
// document; its updates are appended concurrently so that the store commits them together.
// Their order in the log may differ from the apply order, which Yjs does not mind.
func (d *Doc) flush() {
	if len(d.storing) > 0 || len(d.pending) == 0 || d.retryTimer != nil {
		return
	}
	n := min(len(d.pending), d.r.cfg.MaxBatch)
	d.storing = d.pending[:n:n]
	d.pending = d.pending[n:]
	updates := make([][]byte, n)
	for i, u := range d.storing {
		updates[i] = u.update
	}
	store, ctx, name, clock, results := d.r.cfg.Store, d.r.storeCtx, d.name, d.r.clock, d.results
	go func() {
		start := clock.Now()
		res := storeResult{seqs: make([]int64, n), errs: make([]error, n)}
		var wg sync.WaitGroup
		for i, u := range updates {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res.seqs[i], res.errs[i] = store.Append(ctx, name, u)
			}()
		}
		wg.Wait()
		res.dur = clock.Now().Sub(start)
		results <- res
	}()
}

// stored takes a batch's results: stored updates are echoed to their senders (that is when a
// y-websocket client may consider its edit safe); failed ones are retried with backoff.
func (d *Doc) stored(res storeResult) {
	batch := d.storing
	d.storing = nil
	var failed []pendingUpdate
	var firstErr error
	for i, u := range batch {
		if err := res.errs[i]; err != nil {
			failed = append(failed, u)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.ownStored(res.seqs[i])
		if d.r.cfg.Relay != nil {
			d.r.cfg.Relay.PublishUpdate(d.name, res.seqs[i], u.update)
		}
		d.logLen++
		u.ack.ack(res.seqs[i], nil)
		if u.origin == "" {
			continue
		}
		if p := d.peers[u.origin]; p != nil {
			if a, ok := p.p.(Acker); ok {
				d.ack(p, a, true)
			} else {
				d.sendTo(p, u.frame)
			}
		}
	}
	if ok := len(batch) - len(failed); ok > 0 {
		d.r.stats.StoreAppends.Add(int64(ok))
		d.r.stats.StoreLatency.Observe(res.dur)
		if h := d.r.cfg.Hooks.OnStored; h != nil {
			top := d.pos.prefix
			for i := range batch {
				if res.errs[i] == nil {
					top = max(top, res.seqs[i])
				}
			}
			h(d.name, top)
		}
	}
	if len(failed) > 0 {
		d.r.stats.StoreErrors.Add(int64(len(failed)))
		if d.r.storeCtx.Err() != nil {
			lost := len(failed) + len(d.pending)
			d.log.Error("storage cancelled; updates not stored", "updates", lost, "err", firstErr)
			for _, u := range append(failed, d.pending...) {
				u.ack.ack(0, ErrNotStored)
			}
			d.pending = nil
			return
		}
		d.pending = append(failed, d.pending...)
		d.retryDelay = min(max(2*d.retryDelay, retryMin), retryMax)
		d.log.Error("append failed; will retry", "updates", len(failed), "retry_in", d.retryDelay, "err", firstErr)
		d.retryTimer = d.r.clock.NewTimer(d.retryDelay)
		return
	}
	d.retryDelay = 0
	if d.logLen >= d.r.cfg.CompactAfter {
		d.compact()
	}
	if d.unloadWanted {
		d.tryUnload()
	}
}

// compact checkpoints the live document in the background. The state is encoded now, after
// every update with seq <= the verified prefix was applied, so it covers them; never more,
// since a checkpoint deletes what it covers: other processes may have appended updates this one
// has not applied, and updates applied from the relay's messages are only trusted once re-read
// from the log (prefix.go). When the relay has taken the prefix past the verified one, a verify
// fill is started too, so that the next checkpoint covers more.
func (d *Doc) compact() {
	if d.pos.verified < d.pos.prefix && !d.pos.filling {
		d.pos.want, d.pos.verify = true, true // the next checkpoint covers more
	}
	if d.compacting || d.pos.verified == 0 {
		return
	}
	state, err := safeDiff(d.ydoc, nil)
	if err != nil {
		d.log.Error("encode state for checkpoint", "err", err)
		return
	}
	d.compacting = true
	upto, store, ctx, name, out := d.pos.verified, d.r.cfg.Store, d.r.storeCtx, d.name, d.compacts
	go func() { out <- compactResult{upto: upto, err: store.Compact(ctx, name, state, upto)} }()
}

func (d *Doc) compacted(res compactResult) {
	d.compacting = false
	if res.err != nil {
		d.r.stats.StoreErrors.Add(1)
		d.log.Warn("checkpoint failed", "err", res.err)
		return
	}
	d.logLen = 0 // approximately: updates stored meanwhile are counted again
	d.log.Debug("checkpointed", "upto_seq", res.upto)
	if d.unloadWanted {
		d.tryUnload()
	}
}

func (d *Doc) idle() bool { return len(d.pending) == 0 && len(d.storing) == 0 && !d.compacting }

// tryUnload unloads the document if no one is attached or on the way and nothing waits to be
// stored; with updates still pending it tries again once they are stored.
func (d *Doc) tryUnload() {
	if d.stopping || d.exit || d.held() {
		return
	}
	if !d.idle() {
		d.unloadWanted = true
		return
	}
	d.unloadWanted = false
	if !d.r.beginUnload(d) {
		return // a session is joining; it will find the document live
	}
	d.finish()
}

func (d *Doc) beginStop() {
	d.stopping = true
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
	if d.stopping && !d.exit && d.idle() {
		d.finish()
	}
}

// finish checkpoints the document (compacting its log) and ends the actor. Nobody is attached
// and the registry no longer hands the document out, so blocking on storage is fine here.
func (d *Doc) finish() {
	d.exit = true
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
