// Command bigdoc-bench measures how fast and how lean the server loads big and old documents
// (issue 14, item 4):
//
//	bigdoc-bench [--updates 100000] [--runs 3] [--big-mb 50] [--trace FILE] [--database-url URL]
//
// (a) a document whose log holds --updates small updates (one per edit of an editing trace, or
// of a synthetic typist without --trace; stored with compaction off) and (b) the same content as
// one checkpoint are written to a real store — a SQLite file in a temporary directory, or
// Postgres (a fresh schema, dropped at the end) with --database-url or YSYNC_TEST_DATABASE_URL
// — and loaded by a fresh shareddoc.Registry with the server's defaults. Each run measures, in
// process, the time from JoinOrCreate to the SyncStep2 answering a fresh client's SyncStep1 (the
// whole document), which includes Store.Load, applying what it returned and the compaction the
// long log triggers right after load. The table gives the median of --runs runs of each (run
// alternately, each on a document of its own written just before) and the ratio log/checkpoint
// (target <= 2x).
//
// (c) a document of about --big-mb MiB (large text: 4 KiB pieces inserted at random places) is
// stored as a checkpoint and loaded and synced the same way while a sampler reads the heap every
// half millisecond (runtime/metrics: bytes in heap objects, live and not yet swept); the table
// gives the peak above the heap before the load, divided by the encoded size (target <= 4x), and
// the live heap after the sync.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/shareddoc"
	"github.com/ysync/ysync/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigdoc-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	updates     int
	runs        int
	bigMB       float64
	trace       string
	databaseURL string
	dir         string
	cpuProfile  string
	memProfile  string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bigdoc-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.updates, "updates", 100000, "updates in the log of document (a)")
	fs.IntVar(&o.runs, "runs", 3, "runs of each of (a) and (b); the table shows medians")
	fs.Float64Var(&o.bigMB, "big-mb", 50, "size of document (c) in MiB of text; 0 skips it")
	fs.StringVar(&o.trace, "trace", "", "editing trace (.json.gz) for (a) and (b); empty: $YSYNC_TRACES_DIR/automerge-paper.json.gz if there, else a synthetic typist; \"synthetic\" forces it")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("YSYNC_TEST_DATABASE_URL"), "Postgres to store the documents in (a fresh schema); empty: a SQLite file")
	fs.StringVar(&o.dir, "dir", "", "directory for the SQLite store; empty: a temporary one, removed at the end")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured loads to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile (allocations) of the big document's load and sync to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.updates < 1 || o.runs < 1 || o.bigMB < 0 {
		return o, errors.New("--updates and --runs must be >= 1, --big-mb >= 0")
	}
	if o.trace == "" {
		if p := filepath.Join(os.Getenv("YSYNC_TRACES_DIR"), "automerge-paper.json.gz"); os.Getenv("YSYNC_TRACES_DIR") != "" && fileExists(p) {
			o.trace = p
		}
	}
	if o.trace == "synthetic" {
		o.trace = ""
	}
	return o, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	st, kind, closeStore, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer closeStore()

	source := "synthetic typist"
	var updates [][]byte
	var want string
	if o.trace != "" {
		source = o.trace
		updates, want, err = traceUpdates(o.trace, o.updates)
	} else {
		updates, want, err = syntheticUpdates(o.updates)
	}
	if err != nil {
		return err
	}
	state, err := stateOf(updates)
	if err != nil {
		return err
	}
	logBytes := 0
	for _, u := range updates {
		logBytes += len(u)
	}
	fmt.Fprintf(stderr, "bigdoc-bench: %d updates (%d bytes) from %s, state %d bytes, store %s\n",
		len(updates), logBytes, source, len(state), kind)

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var logTimes, cpTimes []time.Duration
	for r := range o.runs {
		// Alternate which goes first, so that neither always runs on a warmer machine.
		order := []bool{true, false}
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, isLog := range order {
			name := fmt.Sprintf("bigdoc-cp-%d", r)
			if isLog {
				name = fmt.Sprintf("bigdoc-log-%d", r)
				err = writeLog(ctx, st, name, updates)
			} else {
				err = writeCheckpoint(ctx, st, name, state)
			}
			if err != nil {
				return err
			}
			res, err := loadAndSync(ctx, st, name, false)
			if err != nil {
				return err
			}
			if res.text != want {
				return fmt.Errorf("%s: synced text (%d bytes) differs from the written one (%d bytes)", name, len(res.text), len(want))
			}
			if isLog {
				logTimes = append(logTimes, res.took)
			} else {
				cpTimes = append(cpTimes, res.took)
			}
			fmt.Fprintf(stderr, "bigdoc-bench: run %d %s %v\n", r+1, name, res.took.Round(time.Millisecond))
		}
	}
	updates, state = nil, nil

	var big *syncResult
	var bigEncoded int
	if o.bigMB > 0 {
		bigEncoded, err = writeBigDoc(ctx, st, "bigdoc-big", int(o.bigMB*(1<<20)))
		if err != nil {
			return err
		}
		if o.memProfile != "" {
			runtime.MemProfileRate = 64 << 10
		}
		big, err = loadAndSync(ctx, st, "bigdoc-big", true)
		if err != nil {
			return err
		}
		if o.memProfile != "" {
			if err := writeHeapProfile(o.memProfile); err != nil {
				return err
			}
		}
	}

	lm, cm := median(logTimes), median(cpTimes)
	fmt.Fprintf(stdout, "\nBig and old documents (store %s, %d runs; medians, runs in brackets)\n\n", kind, o.runs)
	fmt.Fprintf(stdout, "| case | result | target |\n|---|---|---|\n")
	fmt.Fprintf(stdout, "| (a) log of %d updates (%s), load to first SyncStep2 | %v %s | |\n", o.updates, shortSource(source), ms(lm), msList(logTimes))
	fmt.Fprintf(stdout, "| (b) same content as one checkpoint (%d bytes) | %v %s | |\n", len(want), ms(cm), msList(cpTimes))
	fmt.Fprintf(stdout, "| ratio log/checkpoint | %.2fx | <= 2x |\n", float64(lm)/float64(cm))
	if big != nil {
		fmt.Fprintf(stdout, "| (c) big document, encoded | %.1f MiB | |\n", float64(bigEncoded)/(1<<20))
		fmt.Fprintf(stdout, "| (c) load to first SyncStep2 | %v | |\n", ms(big.took))
		fmt.Fprintf(stdout, "| (c) peak heap above baseline | %.1f MiB | |\n", float64(big.peakHeap)/(1<<20))
		fmt.Fprintf(stdout, "| ratio peak heap/encoded | %.2fx | <= 4x |\n", float64(big.peakHeap)/float64(bigEncoded))
		fmt.Fprintf(stdout, "| (c) of which until loaded (before the sync) / encoded | %.2fx | |\n", float64(big.peakLoad)/float64(bigEncoded))
		fmt.Fprintf(stdout, "| (c) peak live heap (marked by a GC) / encoded | %.2fx | |\n", float64(big.peakLive)/float64(bigEncoded))
		fmt.Fprintf(stdout, "| (c) live heap after sync (document + SyncStep2 frame) / encoded | %.2fx | |\n", float64(big.liveAfter)/float64(bigEncoded))
	}
	return nil
}

func shortSource(s string) string {
	if s == "synthetic typist" {
		return "synthetic"
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			s = s[i+1:]
			break
		}
	}
	if n := len(".json.gz"); len(s) > n && s[len(s)-n:] == ".json.gz" {
		s = s[:len(s)-n]
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func msList(ds []time.Duration) string {
	out := "["
	for i, d := range ds {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond))
	}
	return out + "]"
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchStore is the store the documents are written to and loaded from.
type benchStore = shareddoc.Store

// openStore opens the store the documents are written to and loaded from.
func openStore(ctx context.Context, o options) (benchStore, string, func(), error) {
	if o.databaseURL != "" {
		return openPostgres(ctx, o.databaseURL)
	}
	dir, cleanup := o.dir, func() {}
	if dir == "" {
		d, err := os.MkdirTemp("", "bigdoc-bench-")
		if err != nil {
			return nil, "", nil, err
		}
		dir, cleanup = d, func() { os.RemoveAll(d) }
	}
	s, err := store.OpenSQLite(ctx, dir, store.Options{})
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return s, "sqlite", func() { s.Close(); cleanup() }, nil
}

// openPostgres migrates a fresh schema of the database and opens a store on it; closing drops
// the schema.
func openPostgres(ctx context.Context, databaseURL string) (benchStore, string, func(), error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", nil, err
	}
	schema := "bigdoc_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			return fmt.Errorf("connect to postgres: %w", err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		return nil, "", nil, err
	}
	drop := func() { _ = exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE") }
	url, err := withSearchPath(databaseURL, schema)
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	if err := migrations.Up(ctx, url); err != nil {
		drop()
		return nil, "", nil, err
	}
	s, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	return s, "postgres", func() { s.Close(); drop() }, nil
}

// writeLog appends updates as the server does with compaction off: in batches of up to 512
// appended concurrently (shareddoc's flush), so their order within a batch may differ from the
// edit order, as in a real log.
func writeLog(ctx context.Context, st benchStore, name string, updates [][]byte) error {
	const batch = 512
	for i := 0; i < len(updates); i += batch {
		part := updates[i:min(i+batch, len(updates))]
		errs := make([]error, len(part))
		var wg sync.WaitGroup
		for j, u := range part {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = st.Append(ctx, name, u)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// writeCheckpoint stores state as the document's only content: one append, compacted.
func writeCheckpoint(ctx context.Context, st benchStore, name string, state []byte) error {
	seq, err := st.Append(ctx, name, state)
	if err != nil {
		return err
	}
	return st.Compact(ctx, name, state, seq)
}

type syncResult struct {
	took      time.Duration
	text      string
	peakHeap  uint64 // peak bytes in heap objects above the baseline (sampled)
	peakLoad  uint64 // the same until the document was loaded (JoinOrCreate returned)
	peakLive  uint64 // peak live heap (as marked by the GCs meanwhile) above the baseline
	liveAfter uint64 // live heap after the sync and a GC, above the baseline
}

// syncPeer is the fresh client: it records when the SyncStep2 arrives.
type syncPeer struct {
	step2 chan []byte
	once  sync.Once
}

func (p *syncPeer) Send(frame []byte) bool {
	if len(frame) > 1 && frame[0] == byte(syncproto.TypeSync) && frame[1] == byte(syncproto.SyncStep2) {
		p.once.Do(func() { p.step2 <- frame })
	}
	return true
}

func (p *syncPeer) Close(shareddoc.CloseReason, error) {}

// loadAndSync starts a registry with the server's defaults, joins the document as a fresh
// client, sends SyncStep1 with an empty state vector and waits for the SyncStep2. With
// sampleHeap the heap is sampled from just before the join until the reply has arrived.
func loadAndSync(ctx context.Context, st benchStore, name string, sampleHeap bool) (*syncResult, error) {
	reg := shareddoc.NewRegistry(shareddoc.Config{
		Store:        st,
		LoadTimeout:  5 * time.Minute,
		FlushTimeout: 5 * time.Minute,
	})
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_ = reg.Shutdown(sctx)
	}()
	runtime.GC()
	runtime.GC()
	base := heapObjects()
	var sampler *heapSampler
	if sampleHeap {
		sampler = startHeapSampler(base)
	}
	peer := &syncPeer{step2: make(chan []byte, 1)}
	res := &syncResult{}
	start := time.Now()
	doc, _, err := reg.JoinOrCreate(ctx, name, shareddoc.JoinOptions{
		Session: shareddoc.SessionInfo{ID: "bench", ConnectedAt: start},
		Peer:    peer,
	})
	if err != nil {
		if sampler != nil {
			sampler.stop()
		}
		return nil, err
	}
	defer doc.Leave("bench")
	if sampler != nil {
		res.peakLoad = sampler.peakNow()
	}
	err = doc.Receive(ctx, "bench", syncproto.Message{Type: syncproto.TypeSync, SyncType: syncproto.SyncStep1, Payload: []byte{0}})
	var frame []byte
	if err == nil {
		select {
		case frame = <-peer.step2:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	res.took = time.Since(start)
	if sampler != nil {
		res.peakHeap = sampler.stop()
		if l := sampler.peakLive.Load(); l > sampler.baseLive {
			res.peakLive = l - sampler.baseLive
		}
		runtime.GC()
		if live := heapObjects(); live > base {
			res.liveAfter = live - base
		}
	}
	if err != nil {
		return nil, err
	}
	m, err := syncproto.Decode(frame)
	if err != nil {
		return nil, err
	}
	client := crdt.NewDoc(crdt.DocOptions{})
	if err := crdt.ApplyUpdate(client, m.Payload, nil); err != nil {
		return nil, fmt.Errorf("apply the SyncStep2: %w", err)
	}
	res.text = client.GetText("text").String()
	runtime.KeepAlive(frame)
	return res, nil
}

const (
	heapMetric = "/memory/classes/heap/objects:bytes"
	liveMetric = "/gc/heap/live:bytes"
)

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapSampler reads the bytes in heap objects (live, and dead but not yet swept) every half
// millisecond and keeps the highest.
type heapSampler struct {
	base     uint64
	peak     atomic.Uint64
	peakLive atomic.Uint64 // the live heap as the last GC marked it
	baseLive uint64
	done     chan struct{}
	wg       sync.WaitGroup
}

func startHeapSampler(base uint64) *heapSampler {
	s := []metrics.Sample{{Name: liveMetric}}
	metrics.Read(s)
	h := &heapSampler{base: base, baseLive: s[0].Value.Uint64(), done: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s := []metrics.Sample{{Name: heapMetric}, {Name: liveMetric}}
		t := time.NewTicker(500 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			if v := s[1].Value.Uint64(); v > h.peakLive.Load() {
				h.peakLive.Store(v)
			}
			select {
			case <-h.done:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// peakNow returns the peak so far above the baseline.
func (h *heapSampler) peakNow() uint64 {
	if p := max(h.peak.Load(), heapObjects()); p > h.base {
		return p - h.base
	}
	return 0
}

// stop ends sampling and returns the peak above the baseline.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	if v := heapObjects(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	if p := h.peak.Load(); p > h.base {
		return p - h.base
	}
	return 0
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// stateOf applies updates to a fresh document and returns its encoded state.
func stateOf(updates [][]byte) ([]byte, error) {
	d := crdt.NewDoc(crdt.DocOptions{})
	for i, u := range updates {
		if err := crdt.ApplyUpdate(d, u, nil); err != nil {
			return nil, fmt.Errorf("update %d: %w", i, err)
		}
	}
	return crdt.EncodeStateAsUpdate(d, nil)
}
