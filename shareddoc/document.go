package shareddoc

import (
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
	corrupt  bool // an update failed half-way: never checkpoint the in-memory state (failCorrupt)
	evicting bool // chosen for eviction, not yet ended (evict.go); guarded by r.mu

	idleWake  chan struct{} // the idle wheel's countdown ended, or eviction (wheel.go)
	idleEntry *idleEntry    // the wheel's entry while counting down; guarded by r.wheel.mu

	// prefixSeen mirrors pos.prefix for the registry's position check.
	prefixSeen atomic.Int64

	// Owned by the actor goroutine.
	ydoc        *crdt.Doc
	aw          *awareness.Awareness
	peers       map[string]*peer
	pending     []pendingUpdate                // applied, not yet handed to the store
	storing     []pendingUpdate                // handed to the store, result not back yet
	pos         logPos                         // contiguous prefix of the log; a checkpoint covers at most it (prefix.go)
	remoteAw    map[string]map[uint64]struct{} // awareness clients per other node (remote.go)
	recvAt      time.Time                      // Receive time of the message being handled (zero outside msgCmd.run)
	logLen      int                            // updates in the log since the last checkpoint (approximately)
	logBytes    int64                          // bytes of the updates appended since the last checkpoint (approximately)
	state       docState                       // lifecycle.go; changed only by setState
	compacting  bool
	becameEmpty bool // the last session or hold left during this command; acted on by the loop
	retryDelay  time.Duration
	retryTimer  Timer          // armed while a failed batch waits to be retried
	budget      budget         // pending bytes and size estimate (budget.go)
	awTimer     Timer          // armed while the awareness remembers any client (awareness.go)
	awState     awarenessState // client id owners, cached frame (awareness.go)
	edits       editState      // server-side edits, holds and deletion (edit.go)
	backlog     backlogState   // peers held while the store is behind (backlog.go)
	joins       joinCache      // sync answers shared by joiners (joincache.go)
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
	loadStart := time.Now()
	loadCtx, cancelLoad := d.r.storeContext(d.r.cfg.LoadTimeout)
	err := d.waitPredecessor(loadCtx)
	if err == nil {
		defer d.subscribe()()
		err = d.load(loadCtx)
	}
	cancelLoad()
	d.r.stats.LoadLatency.Observe(time.Since(loadStart))
	if err != nil {
		d.err = err
		d.r.stats.StoreErrors.Add(1)
		d.log.Error("load failed", "err", err)
		d.setState(stateClosed)
		return
	}
	d.setState(stateLive)
	defer d.stopTimers()
	d.log.Debug("loaded", "log_len", d.logLen, "seq", d.pos.prefix)
	if d.logTooLong() {
		d.compact() // a long log is checkpointed now, not after the next append
	}
	if d.r.cfg.Relay != nil {
		d.r.cfg.Relay.QueryAwareness(d.name)
	}
	stop := d.stop
	for d.state != stateClosed {
		select {
		case c := <-d.cmds:
			c.run(d)
		case res := <-d.results:
			d.stored(res)
			d.recountPending()
			d.replayHeld()
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
		case <-timerC(d.backlog.timer):
			d.backlogTick()
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
	d.endBacklog()
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
	if d.stopping() {
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
