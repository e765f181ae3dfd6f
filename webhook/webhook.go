// Package webhook tells other services what happens to documents: events (document changed,
// loaded, unloaded; sessions joined and left; workflows saved, reset, updated, deleted) are
// written to a durable outbox and POSTed, signed, to every configured receiver URL, retried with
// exponential backoff until a receiver answers 2xx (at-least-once; each event has an id for
// deduplication).
//
// # Goroutines and who calls what
//
//   - Emit and Changed are called from anywhere, document goroutines included: they only take a
//     short mutex and never block on I/O, so delivery never slows editing.
//   - The collector goroutine (collect) turns due document changes into events (debounced) and
//     writes queued events to the outbox; while the outbox is unreachable they stay queued
//     (bounded by Config.MaxQueued; beyond that the oldest are dropped and counted).
//   - The deliverer goroutine (deliver) claims due deliveries from the outbox (a lease, so
//     several nodes share the work) and sends them on up to Config.Workers goroutines.
//   - Close stops both, writing everything still queued or debounced to the outbox first.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ysync/ysync/store"
)

// Event types.
const (
	DocumentChanged  = "document.changed"
	DocumentLoaded   = "document.loaded"
	DocumentUnloaded = "document.unloaded"
	SessionJoined    = "session.joined"
	SessionLeft      = "session.left"
	WorkflowSaved    = "workflow.saved"
	WorkflowReset    = "workflow.reset"
	WorkflowUpdated  = "workflow.updated"
	WorkflowDeleted  = "workflow.deleted"
)

// Outbox is the durable queue of deliveries (store.Postgres, store.Memory).
type Outbox interface {
	EnqueueDeliveries(ctx context.Context, ds []store.Delivery) error
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]store.Delivery, error)
	FinishDelivery(ctx context.Context, id int64, state string, status int, errMsg string, nextAt time.Time) error
	ListDeliveries(ctx context.Context, state string, limit int) ([]store.Delivery, error)
}

// Defaults of Config.
const (
	DefaultDebounce    = 2 * time.Second
	DefaultMinInterval = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultMaxAttempts = 25 // about a day with the default backoff
	DefaultWorkers     = 4
	DefaultPoll        = time.Second
	DefaultMaxQueued   = 100_000
)

// Config configures a Dispatcher. Zero values mean the defaults noted per field.
type Config struct {
	// URLs receive every event. Empty means no webhooks (New returns nil).
	URLs []string
	// Secret signs every request (SignatureHeader). Empty means requests are not signed.
	Secret []byte
	// Debounce: document.changed is sent this long after a document's last change. Zero means
	// DefaultDebounce.
	Debounce time.Duration
	// MinInterval: at most one document.changed per document this often; during continuous
	// editing one is sent every MinInterval. Zero means DefaultMinInterval.
	MinInterval time.Duration
	// Timeout bounds one request; slower counts as a failure. Zero means DefaultTimeout.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait between attempts (jittered by up to
	// a fifth). Zero means DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts: after that many failed attempts a delivery is given up (state failed).
	// Zero means DefaultMaxAttempts.
	MaxAttempts int
	// Workers bounds concurrent requests. Zero means DefaultWorkers.
	Workers int
	// Poll is how often the outbox is checked for due deliveries. Zero means DefaultPoll.
	Poll time.Duration
	// MaxQueued bounds events waiting for the outbox while it is unreachable. Zero means
	// DefaultMaxQueued.
	MaxQueued int
	// Client sends the requests. Nil means a client with no redirects.
	Client *http.Client
	// Logger receives the logs. Nil means discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Debounce, DefaultDebounce)
	def(&c.MinInterval, DefaultMinInterval)
	def(&c.Timeout, DefaultTimeout)
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.Poll, DefaultPoll)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.Client == nil {
		c.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Stats are cumulative counters for metrics.
type Stats struct {
	Events     atomic.Int64 // events written to the outbox (one per event, whatever the URLs)
	Dropped    atomic.Int64 // events dropped because the queue was full
	Delivered  atomic.Int64 // deliveries answered 2xx
	Retried    atomic.Int64 // failed attempts that will be retried
	Failed     atomic.Int64 // deliveries given up
	Queued     atomic.Int64 // events waiting for the outbox now
	OutboxErrs atomic.Int64 // outbox calls that failed
}

// Dispatcher emits, stores and delivers events. Safe for concurrent use.
type Dispatcher struct {
	cfg Config
	ob  Outbox
	log *slog.Logger

	mu      sync.Mutex
	queue   []event
	changes map[string]*change
	closed  bool

	wake    chan struct{} // capacity 1: new events to store
	deliver chan struct{} // capacity 1: new deliveries due
	stop    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context // requests; cancelled by Close when its deadline passes
	cancel  context.CancelFunc

	stats Stats
}

type event struct {
	id, typ, doc string
	at           time.Time
	fields       map[string]any
}

// change is a document's debounce state.
type change struct {
	seq      int64
	first    time.Time // first change not yet announced
	last     time.Time // latest change
	lastSent time.Time
	pending  bool
}

// New returns a started dispatcher over ob, or nil when cfg has no URLs.
func New(cfg Config, ob Outbox) *Dispatcher {
	if len(cfg.URLs) == 0 {
		return nil
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		cfg: cfg, ob: ob, log: cfg.Logger,
		changes: map[string]*change{},
		wake:    make(chan struct{}, 1),
		deliver: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
	d.wg.Add(2)
	go d.collect()
	go d.deliverLoop()
	return d
}

// Stats returns the live counters.
func (d *Dispatcher) Stats() *Stats { return &d.stats }

// NewID returns a random event id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Emit queues an event of type typ about doc (empty for none) with extra body fields. It never
// blocks.
func (d *Dispatcher) Emit(typ, doc string, fields map[string]any) {
	if d == nil {
		return
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.enqueueLocked(event{id: NewID(), typ: typ, doc: doc, at: time.Now().UTC(), fields: fields})
	d.mu.Unlock()
	signal(d.wake)
}

func (d *Dispatcher) enqueueLocked(ev event) {
	if len(d.queue) >= d.cfg.MaxQueued {
		d.queue = d.queue[1:]
		d.stats.Dropped.Add(1)
		d.stats.Queued.Add(-1)
	}
	d.queue = append(d.queue, ev)
	d.stats.Queued.Add(1)
}

// Changed notes that doc's log reached seq; document.changed follows, debounced. It never blocks.
func (d *Dispatcher) Changed(doc string, seq int64) {
	if d == nil {
		return
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	c := d.changes[doc]
	if c == nil {
		c = &change{}
		d.changes[doc] = c
	}
	if !c.pending {
		c.pending = true
		c.first = now
	}
	c.last = now
	c.seq = max(c.seq, seq)
}

// dueAt is when a pending change is announced: Debounce after the last change, but no later than
// MinInterval after the first unannounced one, and never sooner than MinInterval after the
// previous announcement.
func (d *Dispatcher) dueAt(c *change) time.Time {
	at := c.last.Add(d.cfg.Debounce)
	if latest := c.first.Add(d.cfg.MinInterval); latest.Before(at) {
		at = latest
	}
	if next := c.lastSent.Add(d.cfg.MinInterval); at.Before(next) {
		at = next
	}
	return at
}

// takeDueChanges turns due changes (all of them when flush) into queued events.
func (d *Dispatcher) takeDueChanges(now time.Time, flush bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for doc, c := range d.changes {
		if !c.pending {
			if now.Sub(c.lastSent) > d.cfg.MinInterval {
				delete(d.changes, doc) // nothing to remember any more
			}
			continue
		}
		if !flush && now.Before(d.dueAt(c)) {
			continue
		}
		c.pending = false
		c.lastSent = now
		d.enqueueLocked(event{id: NewID(), typ: DocumentChanged, doc: doc, at: now.UTC(), fields: map[string]any{"seq": c.seq}})
	}
}

// tick is how often the collector looks at debounced changes: a small part of the debounce.
func (d *Dispatcher) tick() time.Duration {
	return max(min(d.cfg.Debounce/8, 250*time.Millisecond), 10*time.Millisecond)
}

func (d *Dispatcher) collect() {
	defer d.wg.Done()
	t := time.NewTicker(d.tick())
	defer t.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-t.C:
		}
		d.takeDueChanges(time.Now(), false)
		if err := d.store(d.ctx); err != nil {
			retry = min(max(2*retry, 100*time.Millisecond), 30*time.Second)
			d.log.Warn("webhook outbox unavailable; events kept in memory", "queued", d.stats.Queued.Load(), "retry_in", retry, "err", err)
			select {
			case <-d.stop:
				return
			case <-time.After(retry):
			}
			continue
		}
		retry = 0
	}
}

// store writes the queued events to the outbox, one delivery per URL.
func (d *Dispatcher) store(ctx context.Context) error {
	d.mu.Lock()
	evs := d.queue
	d.queue = nil
	d.mu.Unlock()
	if len(evs) == 0 {
		return nil
	}
	var ds []store.Delivery
	for _, ev := range evs {
		body, err := ev.body()
		if err != nil {
			d.log.Error("webhook event not encodable; dropped", "type", ev.typ, "err", err)
			continue
		}
		for _, u := range d.cfg.URLs {
			ds = append(ds, store.Delivery{EventID: ev.id, Type: ev.typ, Doc: ev.doc, URL: u, Body: body})
		}
	}
	if err := d.ob.EnqueueDeliveries(ctx, ds); err != nil {
		d.stats.OutboxErrs.Add(1)
		d.mu.Lock()
		d.queue = append(evs, d.queue...) // keep order; the bound applies to new events
		d.mu.Unlock()
		return err
	}
	d.stats.Queued.Add(-int64(len(evs)))
	d.stats.Events.Add(int64(len(evs)))
	signal(d.deliver)
	return nil
}

func (ev event) body() ([]byte, error) {
	m := map[string]any{}
	for k, v := range ev.fields {
		m[k] = v
	}
	m["id"], m["type"], m["at"] = ev.id, ev.typ, ev.at.Format(time.RFC3339Nano)
	if ev.doc != "" {
		m["doc"] = ev.doc
	}
	return json.Marshal(m)
}

func (d *Dispatcher) deliverLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	sem := make(chan struct{}, d.cfg.Workers)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		select {
		case <-d.stop:
			return
		case <-d.deliver:
		case <-t.C:
		}
		for {
			lease := 2*d.cfg.Timeout + 5*time.Second
			batch, err := d.ob.ClaimDeliveries(d.ctx, time.Now(), lease, 4*d.cfg.Workers)
			if err != nil {
				d.stats.OutboxErrs.Add(1)
				if d.ctx.Err() == nil {
					d.log.Warn("webhook outbox: claim failed", "err", err)
				}
				break
			}
			for _, dl := range batch {
				select {
				case sem <- struct{}{}:
				case <-d.stop:
					return // claimed ones are retried when their lease runs out
				}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					d.send(dl)
				}()
			}
			if len(batch) < 4*d.cfg.Workers {
				break
			}
		}
	}
}

// send makes one attempt and records its outcome.
func (d *Dispatcher) send(dl store.Delivery) {
	status, err := d.post(dl)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 10*time.Second)
	defer cancel()
	var ferr error
	switch {
	case err == nil:
		d.stats.Delivered.Add(1)
		ferr = d.ob.FinishDelivery(ctx, dl.ID, store.DeliveryDelivered, status, "", time.Time{})
		d.log.Debug("webhook delivered", "event", dl.EventID, "type", dl.Type, "url", dl.URL, "attempt", dl.Attempts)
	case dl.Attempts >= d.cfg.MaxAttempts:
		d.stats.Failed.Add(1)
		ferr = d.ob.FinishDelivery(ctx, dl.ID, store.DeliveryFailed, status, err.Error(), time.Time{})
		d.log.Error("webhook given up", "event", dl.EventID, "type", dl.Type, "url", dl.URL, "attempts", dl.Attempts, "err", err)
	default:
		d.stats.Retried.Add(1)
		wait := d.backoff(dl.Attempts)
		ferr = d.ob.FinishDelivery(ctx, dl.ID, store.DeliveryPending, status, err.Error(), time.Now().Add(wait))
		d.log.Info("webhook failed; will retry", "event", dl.EventID, "type", dl.Type, "url", dl.URL, "attempt", dl.Attempts, "retry_in", wait.Round(time.Millisecond), "err", err)
	}
	if ferr != nil {
		// The lease runs out and the delivery is tried again: at-least-once.
		d.stats.OutboxErrs.Add(1)
		d.log.Warn("webhook outbox: recording the outcome failed", "event", dl.EventID, "err", ferr)
	}
}

// backoff is the wait after the attempt-th failure: MinBackoff·2^(attempt-1), at most
// MaxBackoff, minus up to a fifth at random so that receivers coming back are not hit at once.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	w := float64(d.cfg.MinBackoff) * math.Pow(2, float64(max(attempt-1, 0)))
	w = min(w, float64(d.cfg.MaxBackoff))
	return time.Duration(w * (1 - mrand.Float64()/5))
}

func (d *Dispatcher) post(dl store.Delivery) (int, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.URL, bytes.NewReader(dl.Body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ysync-webhook")
	req.Header.Set("Ysync-Event", dl.Type)
	req.Header.Set("Ysync-Event-Id", dl.EventID)
	req.Header.Set("Ysync-Delivery-Attempt", fmt.Sprint(dl.Attempts))
	if len(d.cfg.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(d.cfg.Secret, time.Now(), dl.Body))
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// Close stops the dispatcher: debounced changes are announced at once and every queued event
// is written to the outbox (delivered after a restart if not now), then both goroutines end.
// Requests still running when ctx ends are cancelled; their deliveries are retried later.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	close(d.stop)
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		d.cancel()
		<-done
		err = fmt.Errorf("webhooks: %w", ctx.Err())
	}
	d.takeDueChanges(time.Now(), true)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	if serr := d.store(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("webhooks: %d events not stored: %w", d.stats.Queued.Load(), serr))
	}
	d.cancel()
	return err
}
