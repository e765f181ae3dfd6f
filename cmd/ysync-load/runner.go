package main

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// config is one scenario.
type config struct {
	URL         string        // base WebSocket URL, or several comma-separated (nodes); "/<doc>" is appended
	Clients     int           // connections
	Docs        int           // documents; client i edits document i % Docs
	Rate        float64       // edits per second per client
	Duration    time.Duration // measured window
	Warmup      time.Duration // editing before the measured window (not measured)
	ConnectRate float64       // new connections per second during the ramp
	Idle        time.Duration // time all clients sit idle after syncing, before editing
	Grace       time.Duration // time allowed after the last edit for deliveries to arrive
	SyncTimeout time.Duration // time allowed for all clients to connect and sync
	Tick        time.Duration // scheduler tick
	Workers     int           // goroutines that make and send edits
	DocPrefix   string        // document names are DocPrefix-<n>
	ServerPID   int           // when > 0, sample this process's RSS and CPU per phase
	Log         io.Writer     // progress lines; nil: none
	Protocol    string        // "y-websocket" (default) or "hocuspocus" (hocuspocus.go)

	heapProfile string // write a heap profile at the end of the measured window
}

// nodeURL is the base URL client id connects to. With several nodes, the clients of one document
// (ids d, d+docs, d+2*docs, ...) go to different nodes in turn, so that every edit has receivers
// on other nodes than its sender's: what is measured is cross-node propagation.
func (c config) nodeURL(id int) string {
	urls := strings.Split(c.URL, ",")
	return urls[(id/c.Docs)%len(urls)]
}

// runner holds one run's state.
type runner struct {
	cfg     config
	dialer  *websocket.Dialer
	clients []*client
	ledger  *ledger

	docReceivers []int // per document: clients alive when editing started

	connected     atomic.Int64
	connectErrors atomic.Int64 // dial, handshake or sync failures
	dropped       atomic.Int64 // connections lost after syncing
	sendErrors    atomic.Int64

	errMu  sync.Mutex
	errors []string

	lagHist hist // scheduler lateness: send time - due time
}

func (r *runner) docName(d int) string { return fmt.Sprintf("%s-%d", r.cfg.DocPrefix, d) }

func (r *runner) receivers(c *client) int { return r.docReceivers[c.docIx] - 1 }

func (r *runner) noteError(err error) {
	r.errMu.Lock()
	if len(r.errors) < 10 {
		r.errors = append(r.errors, err.Error())
	}
	r.errMu.Unlock()
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Log != nil {
		fmt.Fprintf(r.cfg.Log, "ysync-load: "+format+"\n", args...)
	}
}

// bufferPool shares write buffers between connections (gorilla takes one only while writing).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() any  { return b.p.Get() }
func (b *bufferPool) Put(x any) { b.p.Put(x) }

// capacityFor is the number of edits one client may make in a run: the scheduled count plus
// slack for rounding.
func capacityFor(cfg config) int {
	return int(math.Ceil(cfg.Rate*(cfg.Warmup+cfg.Duration).Seconds())) + 2
}

// run executes the scenario and returns the report.
func run(ctx context.Context, cfg config) (*report, error) {
	if cfg.Clients <= 0 || cfg.Docs <= 0 || cfg.Docs > cfg.Clients {
		return nil, fmt.Errorf("need clients >= docs >= 1")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 2 * time.Millisecond
	}
	if cfg.ConnectRate <= 0 {
		cfg.ConnectRate = math.Inf(1)
	}
	r := &runner{
		cfg: cfg,
		dialer: &websocket.Dialer{
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   4096,
			WriteBufferSize:  4096,
			WriteBufferPool:  &bufferPool{},
		},
		ledger:       newLedger(cfg.Clients, capacityFor(cfg)),
		docReceivers: make([]int, cfg.Docs),
	}
	rep := &report{Config: reportConfig{
		URL: cfg.URL, Clients: cfg.Clients, Docs: cfg.Docs, Rate: cfg.Rate,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), ConnectRate: cfg.ConnectRate,
		IdleS: cfg.Idle.Seconds(), GraceS: cfg.Grace.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}}
	if math.IsInf(cfg.ConnectRate, 1) {
		rep.Config.ConnectRate = 0
	}
	sample := func(phase string) procSample {
		if cfg.ServerPID <= 0 {
			return procSample{}
		}
		s, err := readProc(cfg.ServerPID)
		if err != nil {
			r.noteError(fmt.Errorf("sample server (%s): %w", phase, err))
		}
		return s
	}
	cpu0 := selfCPU()
	wall0 := time.Now()
	srvBefore := sample("before")

	// Connect at the ramp rate; each connection's goroutine becomes its reader.
	r.clients = make([]*client, cfg.Clients)
	for i := range r.clients {
		r.clients[i] = newClient(r, i)
	}
	connCtx, cancelConn := context.WithTimeout(ctx, cfg.SyncTimeout)
	defer cancelConn()
	var readers sync.WaitGroup
	rampStart := time.Now()
	for i, c := range r.clients {
		if !math.IsInf(cfg.ConnectRate, 1) {
			due := rampStart.Add(time.Duration(float64(i) / cfg.ConnectRate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		readers.Add(1)
		go func() { defer readers.Done(); c.connect(connCtx) }()
	}
	// Wait until every client is synced or failed.
	syncDeadline := time.NewTimer(cfg.SyncTimeout)
	for _, c := range r.clients {
		select {
		case <-c.synced:
		case <-syncDeadline.C:
		case <-ctx.Done():
		}
	}
	syncDeadline.Stop()
	for _, c := range r.clients {
		select {
		case <-c.synced:
			if !c.failed.Load() {
				c.alive.Store(true)
				r.docReceivers[c.docIx]++
			}
		default:
			c.fail(fmt.Errorf("not synced within %v", cfg.SyncTimeout))
		}
	}
	rep.ConnectS = time.Since(rampStart).Seconds()
	r.logf("%d/%d clients synced in %.1fs (%d connect errors)", r.alive(), cfg.Clients, rep.ConnectS, r.connectErrors.Load())

	// Idle: every client synced, nobody edits.
	if cfg.Idle > 0 {
		select {
		case <-time.After(cfg.Idle):
		case <-ctx.Done():
		}
	}
	srvIdle := sample("idle")

	// Load: a shared scheduler hands due clients to a few workers (client i always to worker
	// i % Workers, so that one client's edits go out in order).
	var srvLoadStart, srvMeasureStart, srvMeasureEnd procSample
	var rssMax int64
	var cpuMeasure0, cpuMeasure1 time.Duration
	var host0, host1 float64
	var measuring atomic.Bool
	if cfg.Rate > 0 && cfg.Duration > 0 && ctx.Err() == nil {
		srvLoadStart = sample("load start")
		work := make([]chan *client, cfg.Workers)
		var workers sync.WaitGroup
		for w := range work {
			work[w] = make(chan *client, cfg.Clients/cfg.Workers+16)
			workers.Add(1)
			go func() {
				defer workers.Done()
				for c := range work[w] {
					c.edit(measuring.Load())
				}
			}()
		}
		loadStart := time.Now()
		measureStart := loadStart.Add(cfg.Warmup)
		loadEnd := measureStart.Add(cfg.Duration)
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		q := make(dueQueue, 0, cfg.Clients)
		for i, c := range r.clients {
			if c.alive.Load() {
				// spread the first edits over one interval (golden-ratio sequence)
				frac := math.Mod(float64(i)*0.6180339887498949, 1)
				q = append(q, dueEntry{due: loadStart.Add(time.Duration(frac * float64(interval))), c: c})
			}
		}
		heap.Init(&q)
		ticker := time.NewTicker(cfg.Tick)
		sampler := time.NewTicker(time.Second)
		measured := false
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-sampler.C:
				if s := sample("load"); s.RSSKiB > rssMax {
					rssMax = s.RSSKiB
				}
				continue
			case now := <-ticker.C:
				if !measured && !now.Before(measureStart) {
					measured = true
					srvMeasureStart = sample("measure start")
					cpuMeasure0 = selfCPU()
					host0, _ = hostBusy()
					measuring.Store(true)
				}
				if !now.Before(loadEnd) {
					break loop
				}
				for len(q) > 0 && !q[0].due.After(now) {
					e := &q[0]
					r.lagHist.record(now.Sub(e.due))
					work[e.c.idx%cfg.Workers] <- e.c
					e.due = e.due.Add(interval)
					if e.due.After(loadEnd) || !e.c.alive.Load() {
						heap.Pop(&q)
					} else {
						heap.Fix(&q, 0)
					}
				}
			}
		}
		ticker.Stop()
		sampler.Stop()
		measuring.Store(false)
		if !measured {
			cpuMeasure0 = selfCPU()
			host0, _ = hostBusy()
			srvMeasureStart = sample("measure start")
		}
		cpuMeasure1 = selfCPU()
		host1, _ = hostBusy()
		if cfg.heapProfile != "" {
			writeHeapProfile(cfg.heapProfile, r)
		}
		srvMeasureEnd = sample("measure end")
		if s := srvMeasureEnd; s.RSSKiB > rssMax {
			rssMax = s.RSSKiB
		}
		for _, ch := range work {
			close(ch)
		}
		workers.Wait()
		rep.MeasuredS = time.Since(measureStart).Seconds()
		if rep.MeasuredS > cfg.Duration.Seconds() {
			rep.MeasuredS = cfg.Duration.Seconds()
		}
		r.logf("load done: %d edits sent, %d deliveries outstanding", r.ledger.mSent.Load(), r.ledger.outstanding())

		// Grace: wait for every owed delivery (or the deadline).
		graceStart := time.Now()
		for r.ledger.outstanding() > 0 && time.Since(graceStart) < cfg.Grace && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		rep.DrainS = time.Since(graceStart).Seconds()
	}
	srvAfter := sample("after")
	rep.ContentChecked, rep.ContentErrors = r.verifyContent()

	for _, c := range r.clients {
		c.close()
	}
	readers.Wait()

	r.fill(rep, cpu0, wall0, cpuMeasure0, cpuMeasure1)
	if rep.MeasuredS > 0 && host1 > host0 {
		rep.HostCoresMeasure = (host1 - host0) / rep.MeasuredS
		rep.OtherCoresMeasure = rep.HostCoresMeasure - rep.GenCoresMeasure
	}
	if cfg.ServerPID > 0 {
		rep.Server = &serverReport{
			PID:            cfg.ServerPID,
			RSSBeforeKiB:   srvBefore.RSSKiB,
			RSSIdleKiB:     srvIdle.RSSKiB,
			RSSLoadMaxKiB:  rssMax,
			RSSAfterKiB:    srvAfter.RSSKiB,
			CPUConnectS:    srvIdle.CPU - srvBefore.CPU,
			CPUMeasureS:    srvMeasureEnd.CPU - srvMeasureStart.CPU,
			CPULoadS:       srvAfter.CPU - srvLoadStart.CPU,
			CPUTotalS:      srvAfter.CPU - srvBefore.CPU,
			IdleConns:      r.alive(),
			RSSPerIdleConn: 0,
		}
		if n := r.alive(); n > 0 && srvIdle.OK && srvBefore.OK {
			rep.Server.RSSPerIdleConn = float64(srvIdle.RSSKiB-srvBefore.RSSKiB) / float64(n)
		}
		// A failed sample (the server exited, say) reads as zero: report -1, not a difference.
		if !srvLoadStart.OK || !srvAfter.OK {
			rep.Server.CPULoadS = -1
		}
		if !srvMeasureStart.OK || !srvMeasureEnd.OK {
			rep.Server.CPUMeasureS = -1
		}
		if !srvBefore.OK || !srvIdle.OK {
			rep.Server.CPUConnectS = -1
		}
		if !srvBefore.OK || !srvAfter.OK {
			rep.Server.CPUTotalS = -1
		}
		if rep.MeasuredS > 0 && rep.Server.CPUMeasureS >= 0 {
			rep.Server.CoresMeasure = rep.Server.CPUMeasureS / rep.MeasuredS
			if rep.HostCoresMeasure > 0 {
				rep.OtherCoresMeasure -= rep.Server.CoresMeasure
			}
		}
	}
	// Tick-granular /proc accounting can make the remainder slightly negative on an idle host.
	rep.OtherCoresMeasure = max(rep.OtherCoresMeasure, 0)
	return rep, nil
}

func (r *runner) alive() int {
	n := 0
	for _, c := range r.clients {
		if c.alive.Load() {
			n++
		}
	}
	return n
}

// dueQueue is a min-heap of clients by their next edit time.
type dueEntry struct {
	due time.Time
	c   *client
}
type dueQueue []dueEntry

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dueQueue) Push(x any)        { *q = append(*q, x.(dueEntry)) }
func (q *dueQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// verifyContent checks, for one live client per document, that its array holds every edit made
// by the document's clients exactly once ("c:n:t" tokens). It returns the documents checked and
// the number of missing or duplicated entries.
func (r *runner) verifyContent() (checked, errs int) {
	for d := 0; d < r.cfg.Docs; d++ {
		var probe *client
		for i := d; i < len(r.clients); i += r.cfg.Docs {
			if c := r.clients[i]; c.alive.Load() {
				probe = c
				break
			}
		}
		if probe == nil {
			continue
		}
		checked++
		type key struct{ c, n int64 }
		seen := make(map[key]int)
		probe.mu.Lock()
		vals := probe.arr.ToJSON()
		probe.mu.Unlock()
		for _, v := range vals {
			c, n, ok := parseToken(v)
			if !ok {
				errs++
				continue
			}
			seen[key{c, n}]++
		}
		for i := d; i < len(r.clients); i += r.cfg.Docs {
			n := r.ledger.sent[i].Load()
			for seq := int64(0); seq < n; seq++ {
				k := key{int64(i), seq}
				if seen[k] != 1 {
					errs++
				}
				delete(seen, k)
			}
		}
		errs += len(seen)
	}
	return checked, errs
}

func writeHeapProfile(path string, r *runner) {
	f, err := os.Create(path)
	if err != nil {
		r.noteError(err)
		return
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		r.noteError(err)
	}
}
