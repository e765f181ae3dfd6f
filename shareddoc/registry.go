package shareddoc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long the server keeps a document loaded after its last session left.
const DefaultIdleTimeout = 30 * time.Minute

// Defaults of Config.LoadTimeout and Config.FlushTimeout for the server: long next to a
// healthy database's milliseconds, short next to a user staring at a spinner.
const (
	DefaultLoadTimeout  = 30 * time.Second
	DefaultFlushTimeout = 30 * time.Second
)

// Config configures a Registry.
type Config struct {
	// Store persists the documents. Required.
	Store Store
	// Logger receives the documents' logs. Nil means discard.
	Logger *slog.Logger
	// Clock drives awareness cleanup, idle unload and storage retries. Nil means the wall clock.
	Clock Clock
	// IdleTimeout is how long a document stays loaded with no session attached. Zero means it
	// unloads as soon as the last session leaves and nothing is waiting to be stored; the
	// server's default is DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Hooks let other layers take part in a document's life.
	Hooks Hooks
	// CommandBuffer is the capacity of each document's command channel; a session's reader
	// blocks while it is full. Zero means 256.
	CommandBuffer int
	// MaxBatch caps the updates of one document in flight to the store at once. Zero means 512.
	MaxBatch int
	// CompactAfter is how many updates a loaded document appends before it checkpoints itself
	// (it always checkpoints when it unloads). Zero means 1000.
	CompactAfter int
	// CompactAfterBytes is how many bytes of updates a loaded document appends before it
	// checkpoints itself, whichever of this and CompactAfter comes first. Zero means 4 MiB;
	// negative turns the bytes trigger off.
	CompactAfterBytes int64
	// MaxDocBytes bounds a document's encoded state: a peer's update that would take it past
	// the bound is refused (permission-denied, ReasonTooLarge). Zero means unlimited.
	MaxDocBytes int64
	// MaxPendingBytesPerDoc and MaxPendingBytes bound the bytes of updates applied but not yet
	// stored, per document and over all documents. A peer's update that would pass either is
	// held, with what the peer sends after it, and the peer paused (Pauser) until the store
	// catches up (backlog.go). Zero means unlimited.
	MaxPendingBytesPerDoc int64
	MaxPendingBytes       int64
	// MaxBacklogWait is how long a peer may be held for the pending budget before it is closed
	// with CloseBacklog (it reconnects later and sends its edits again). Zero means
	// DefaultMaxBacklogWait; negative closes it at once, without holding.
	MaxBacklogWait time.Duration
	// Relay carries updates and awareness to and from other nodes (cluster mode, relay.go).
	// Nil means this process is alone, or shares the database without a relay.
	Relay Relay
	// PositionCheckInterval is how often every loaded document compares its contiguous prefix
	// with the log's last seq and reads what it lacks (another process appended it). Only with
	// a Store that is a LogReader. Zero means never (a store nobody else writes); the server
	// uses DefaultPositionCheckInterval with a database.
	PositionCheckInterval time.Duration
	// MaxAwarenessClientsPerConn bounds the awareness client ids one session may introduce;
	// entries for more are refused (permission-denied, ReasonAwarenessTooManyClients). Zero
	// means unlimited; the server's default is DefaultMaxAwarenessClientsPerConn.
	MaxAwarenessClientsPerConn int
	// MaxAwarenessStateBytes bounds one awareness state (its JSON text); larger ones are
	// refused (permission-denied, ReasonAwarenessStateTooLarge). Zero means unlimited; the
	// server's default is DefaultMaxAwarenessStateBytes.
	MaxAwarenessStateBytes int
	// MaxLoadedDocs bounds the documents in memory. Over it, creating a document evicts the
	// least recently used idle one (no sessions; stored and checkpointed before it leaves), and
	// with none idle the join fails with ErrTooManyDocuments (evict.go). Zero means unlimited;
	// the server's default is DefaultMaxLoadedDocs.
	MaxLoadedDocs int
	// LoadTimeout bounds loading a document: waiting for an instance of the same name still
	// doing its final flush, Store.Load and Hooks.LoadState together. Past it the load fails
	// and the joins waiting for it get the error (sessions close with CloseInternal, 1011, and
	// reconnect). A Store.Load that ignores its context is abandoned; LoadState must return
	// when its context ends. Zero means no bound; the server's default is DefaultLoadTimeout.
	LoadTimeout time.Duration
	// FlushTimeout bounds each Store.Compact (checkpoints while loaded and in the final flush)
	// and each Hooks.StoreState call. One that does not finish is given up and logged (the log
	// is complete, so nothing is lost), so that a document whose store hangs still unloads or
	// stops and its successor can load. Zero means no bound; the server's default is
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
}

// Registry finds, creates and unloads documents. Its mutex guards only the name → document map
// and the joining counters; no I/O happens under it.
type Registry struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	stats Stats
	wheel *idleWheel // idle countdowns of every document (wheel.go)

	cluster   ClusterStats // relay.go
	logReader LogReader    // cfg.Store, when it can be read by range (prefix.go)
	posStop   chan struct{}
	posDone   chan struct{}

	// storeCtx is handed to every storage call; Shutdown cancels it when its deadline passes so
	// that stuck calls give up.
	storeCtx    context.Context
	cancelStore context.CancelFunc

	mu        sync.Mutex
	docs      map[string]*Doc // live documents
	unloading map[string]*Doc // documents doing their final flush; a successor waits for them
	evicting  int             // documents with evicting set (evict.go)
	closing   bool
}

// NewRegistry returns an empty registry.
func NewRegistry(cfg Config) *Registry {
	if cfg.Store == nil {
		panic("shareddoc: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.CommandBuffer <= 0 {
		cfg.CommandBuffer = 256
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.CompactAfter <= 0 {
		cfg.CompactAfter = 1000
	}
	if cfg.CompactAfterBytes == 0 {
		cfg.CompactAfterBytes = 4 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registry{
		cfg:         cfg,
		log:         cfg.Logger,
		clock:       cfg.Clock,
		wheel:       newIdleWheel(cfg.Clock),
		storeCtx:    ctx,
		cancelStore: cancel,
		docs:        make(map[string]*Doc),
		unloading:   make(map[string]*Doc),
	}
	r.logReader, _ = cfg.Store.(LogReader)
	r.startPositionCheck()
	return r
}

// Stats returns the registry's live counters.
func (r *Registry) Stats() *Stats { return &r.stats }

// JoinOptions describe the session joining a document.
type JoinOptions struct {
	Session SessionInfo
	Peer    Peer
}

// JoinOrCreate attaches a session to the document called name, loading the document first if it
// is not in memory. Many sessions joining at once share one load. created reports whether this
// call started the document. The returned Doc is where the session sends its messages; it must
// call Leave when it goes away.
func (r *Registry) JoinOrCreate(ctx context.Context, name string, opts JoinOptions) (doc *Doc, created bool, err error) {
	if opts.Peer == nil {
		return nil, false, errors.New("shareddoc: JoinOptions.Peer is required")
	}
	if h := r.cfg.Hooks.OnJoin; h != nil {
		meta, err := h(ctx, name, opts.Session.User)
		if err != nil {
			return nil, false, fmt.Errorf("join %q: %w: %w", name, ErrJoinRefused, err)
		}
		opts.Session.Meta = meta
	}

	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, false, ErrClosed
	}
	d := r.docs[name]
	if d == nil {
		if err := r.admitNewLocked(); err != nil {
			r.mu.Unlock()
			return nil, false, fmt.Errorf("join %q: %w", name, err)
		}
		d = newDoc(r, name, r.unloading[name])
		r.docs[name] = d
		created = true
		r.stats.DocumentsLoaded.Add(1)
		go d.run()
	}
	// While joining > 0 the document does not unload: the join below is on its way.
	d.joining++
	r.mu.Unlock()

	if testHookJoinCounted != nil {
		testHookJoinCounted(d)
	}

	reply := make(chan error, 1)
	err = ctx.Err() // the client is already gone: do not queue the join
	if err == nil {
		err = d.send(ctx, joinCmd{info: opts.Session, peer: opts.Peer, reply: reply})
	}
	if err != nil {
		d.abandonJoin()
		return nil, created, fmt.Errorf("join %q: %w", name, err)
	}
	// Not ctx: once queued the join will be processed, and the caller must know that it is
	// attached so that it leaves again.
	select {
	case err = <-reply:
	case <-d.done:
		err = d.closedErr()
	}
	if err != nil {
		return nil, created, fmt.Errorf("join %q: %w", name, err)
	}
	return d, created, nil
}

// Get returns the loaded document called name, or nil.
func (r *Registry) Get(name string) *Doc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.docs[name]
}

// Leave detaches a session from the document called name. It is a no-op when either is unknown.
func (r *Registry) Leave(name, sessionID string) {
	if d := r.Get(name); d != nil {
		d.Leave(sessionID)
	}
}

// List returns the names of the loaded documents, sorted.
func (r *Registry) List() []string {
	r.mu.Lock()
	names := make([]string, 0, len(r.docs))
	for n := range r.docs {
		names = append(names, n)
	}
	r.mu.Unlock()
	slices.Sort(names)
	return names
}

// Count returns the number of loaded documents.
func (r *Registry) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.docs)
}

// Shutdown refuses new joins, closes every attached session with CloseShutdown, stores what is
// waiting to be stored, checkpoints every document and waits for all document goroutines. When
// ctx ends first, storage calls are cancelled (updates not yet stored are lost and logged) and
// Shutdown returns ctx's error after the goroutines exit.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	var docs []*Doc
	for _, d := range r.docs {
		docs = append(docs, d)
	}
	for _, d := range r.unloading {
		docs = append(docs, d)
	}
	r.mu.Unlock()
	r.stopPositionCheck()

	for _, d := range docs {
		d.stopOnce.Do(func() { close(d.stop) })
	}
	var err error
	for _, d := range docs {
		select {
		case <-d.done:
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("shutdown documents: %w", ctx.Err())
				r.cancelStore()
			}
			<-d.done
		}
	}
	r.wheel.stop()
	r.cancelStore()
	return err
}

// forget removes d from the maps when its goroutine ends.
func (r *Registry) forget(d *Doc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.docs[d.name] == d {
		delete(r.docs, d.name)
	}
	if r.unloading[d.name] == d {
		delete(r.unloading, d.name)
	}
	r.endEvictionLocked(d)
}

// testHookJoinCounted, set only by tests, runs after a join was counted in d.joining and
// before it is queued to the actor.
var testHookJoinCounted func(d *Doc)

// abandonJoin un-counts a join (or hold) that was counted in d.joining but never reached the
// actor. An idle unload skipped while it was on its way would otherwise never happen: the actor
// un-counts it and re-arms the idle countdown if the document is still empty.
func (d *Doc) abandonJoin() {
	if d.send(context.Background(), unjoinCmd{}) != nil {
		d.r.mu.Lock() // the actor ended: nothing left to unload
		d.joining--
		d.r.mu.Unlock()
	}
}

type unjoinCmd struct{}

func (unjoinCmd) run(d *Doc) {
	d.r.mu.Lock()
	d.joining--
	d.r.mu.Unlock()
	if len(d.peers) == 0 && d.state == stateLive {
		d.afterEmpty()
	}
}

// beginUnload removes d from the live map unless a join is on its way. The caller is d's
// goroutine.
func (r *Registry) beginUnload(d *Doc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.joining > 0 {
		r.endEvictionLocked(d)
		return false
	}
	if r.docs[d.name] == d {
		delete(r.docs, d.name)
	}
	r.unloading[d.name] = d
	return true
}
