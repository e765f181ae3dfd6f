// Package idlemem measures what an idle WebSocket connection costs the server, part by part: it
// runs a server in this process, opens N loopback connections that sync once and then sit idle,
// and reads the Go runtime's own accounting (runtime/metrics, the goroutine profile and, with
// Sites, the heap profile by allocation site) before and after.
//
// The clients are raw sockets driven from a few worker goroutines that end once every connection
// is synced: an idle client costs this process a socket (net.Conn, its fd and poll descriptor)
// and nothing else, and the heap profile tells those allocations apart (they are made under
// this package's dial function). Socket buffers are kernel memory and count in no process's RSS.
//
// It is the re-runnable form of the breakdown in docs/load.md ("Issue 14 results"); run it with
// `go run ./cmd/ysync-load idlemem --clients 8000`.
package idlemem

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ysync/ysync/crdt/syncproto"
)

// Config is one measurement. Zero values mean the defaults.
type Config struct {
	// Clients is the number of idle connections. Zero means 8000.
	Clients int
	// Docs spreads the clients over this many documents (client i joins doc i % Docs). Zero
	// means 100.
	Docs int
	// Protocol is "y-websocket" (GET /ws/{doc}, the default) or "hocuspocus" (GET /ws, one
	// document per socket).
	Protocol string
	// Idle is how long the connections sit after the last one synced before the idle sample.
	// Zero means 5 s.
	Idle time.Duration
	// Sites records every allocation (runtime.MemProfileRate = 1) and reports the live heap
	// by allocation site. The profile's own buckets then count in the RSS figures.
	Sites bool
	// Workers dial and sync the clients. Zero means 16.
	Workers int
}

// Server is what Measure measures: Serve serves a listener until Close.
type Server struct {
	Serve func(net.Listener) error
	Close func()
}

// Sample is the runtime's accounting at one moment.
type Sample struct {
	RSS         uint64 // VmRSS of this process
	Total       uint64 // /memory/classes/total: everything the runtime mapped and did not release
	Objects     uint64 // heap objects, live and not yet swept dead ones
	Live        uint64 // /gc/heap/live: heap marked live by the last GC
	HeapUnused  uint64 // spans in use, not holding objects (fragmentation, size-class rounding)
	HeapFree    uint64 // free spans not yet returned to the OS
	Released    uint64 // free spans returned to the OS (not in RSS)
	Stacks      uint64 // goroutine stacks (heap spans used for stacks)
	OSStacks    uint64
	Metadata    uint64 // GC and allocator metadata, profiling buckets, other runtime
	Goal        uint64 // /gc/heap/goal
	Goroutines  uint64
	StartStack  uint64 // /gc/stack/starting-size
	GCCycles    uint64
	ByCreator   map[string]int // goroutines by the function they started in (forced-GC samples)
	HeapBySite  map[string]int64
	ClientBytes int64 // live heap allocated by this package's clients (Sites only)
}

// Report is a baseline, the idle point as the runtime left it, and the idle point after a forced
// GC, over Clients connections.
type Report struct {
	Config Config
	Before Sample // before dialing, after a forced GC
	Idle   Sample // after Idle, as the GC left it (what an outside RSS sample sees)
	IdleGC Sample // the same after runtime.GC() twice
	// Freed is the same after debug.FreeOSMemory: the floor an RSS sample could be pushed to by
	// returning every free page, not what the process needs (docs/load.md says why the server
	// does not do it).
	Freed     Sample
	Connected time.Duration
}

// Measure runs one measurement against the server that newServer builds. It fails if any client
// fails to connect and sync.
func Measure(ctx context.Context, cfg Config, newServer func() (Server, error)) (Report, error) {
	cfg = cfg.withDefaults()
	if cfg.Sites {
		runtime.MemProfileRate = 1
	}
	srv, err := newServer()
	if err != nil {
		return Report{}, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Report{}, err
	}
	go func() { _ = srv.Serve(ln) }()

	// Warm up with one connection so that lazily built server state (documents' actors are
	// per document and counted, but pools, the keep-alive wheel, the registry maps) is not
	// charged to the measured connections.
	warm, err := dialSync(ln.Addr().String(), "warmup", cfg.Protocol, make([]byte, 64<<10))
	if err != nil {
		return Report{}, fmt.Errorf("warm-up connection: %w", err)
	}
	defer warm.Close()
	time.Sleep(200 * time.Millisecond)

	rep := Report{Config: cfg}
	rep.Before = sample(true, cfg.Sites)

	start := time.Now()
	conns := make([]net.Conn, cfg.Clients)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for i := range next {
				c, err := dialSync(ln.Addr().String(), "idle-"+strconv.Itoa(i%cfg.Docs), cfg.Protocol, buf)
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("client %d: %w", i, err))
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range cfg.Clients {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if len(errs) > 0 {
		return rep, fmt.Errorf("%d of %d clients failed; first: %w", len(errs), cfg.Clients, errs[0])
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	rep.Connected = time.Since(start)
	select {
	case <-time.After(cfg.Idle):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	rep.Idle = sample(false, cfg.Sites)
	rep.IdleGC = sample(true, cfg.Sites)
	debug.FreeOSMemory()
	rep.Freed = sample(false, false)
	return rep, nil
}

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = 8000
	}
	if c.Docs <= 0 {
		c.Docs = 100
	}
	if c.Protocol == "" {
		c.Protocol = "y-websocket"
	}
	if c.Idle <= 0 {
		c.Idle = 5 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	return c
}

var metricNames = []string{
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/stacks:bytes",
	"/memory/classes/os-stacks:bytes",
	"/memory/classes/metadata/other:bytes",
	"/memory/classes/metadata/mcache/free:bytes",
	"/memory/classes/metadata/mcache/inuse:bytes",
	"/memory/classes/metadata/mspan/free:bytes",
	"/memory/classes/metadata/mspan/inuse:bytes",
	"/memory/classes/profiling/buckets:bytes",
	"/memory/classes/other:bytes",
	"/gc/heap/goal:bytes",
	"/sched/goroutines:goroutines",
	"/gc/stack/starting-size:bytes",
	"/gc/cycles/total:gc-cycles",
}

func sample(gc, sites bool) Sample {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	ms := make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		ms[i].Name = n
	}
	metrics.Read(ms)
	v := func(i int) uint64 {
		if ms[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return ms[i].Value.Uint64()
	}
	s := Sample{
		RSS:        vmRSS(),
		Total:      v(0),
		Objects:    v(1),
		Live:       v(2),
		HeapUnused: v(3),
		HeapFree:   v(4),
		Released:   v(5),
		Stacks:     v(6),
		OSStacks:   v(7),
		Metadata:   v(8) + v(9) + v(10) + v(11) + v(12) + v(13) + v(14),
		Goal:       v(15),
		Goroutines: v(16),
		StartStack: v(17),
		GCCycles:   v(18),
	}
	if gc { // after the metrics: the profile's own garbage is not in them
		s.ByCreator = goroutinesByStart()
	}
	if sites {
		s.HeapBySite, s.ClientBytes = heapBySite()
	}
	return s
}

func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// goroutinesByStart counts goroutines by the function they started in (the outermost frame
// of their stack).
func goroutinesByStart() map[string]int {
	n, _ := runtime.GoroutineProfile(nil)
	recs := make([]runtime.StackRecord, n+64)
	n, ok := runtime.GoroutineProfile(recs)
	m := make(map[string]int)
	if !ok {
		return m
	}
	for _, r := range recs[:n] {
		frames := runtime.CallersFrames(r.Stack())
		last := ""
		for {
			f, more := frames.Next()
			if f.Function != "" && f.Function != "runtime.goexit" {
				last = f.Function
			}
			if !more {
				break
			}
		}
		m[shortFunc(last)]++
	}
	return m
}

// heapBySite sums the live heap (as of the last GC) by its allocation site: the first two frames
// outside the runtime. Allocations made under dialSync (the clients) are summed apart.
func heapBySite() (map[string]int64, int64) {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		n, ok = runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
	}
	sites := make(map[string]int64)
	var client int64
	for _, r := range recs {
		b := r.InUseBytes()
		if b <= 0 {
			continue
		}
		frames := runtime.CallersFrames(r.Stack())
		var names []string
		first := "" // the allocating runtime function, for stacks with nothing else
		isClient := false
		for {
			f, more := frames.Next()
			fn := f.Function
			if strings.Contains(fn, "ysync/internal/idlemem.dialSync") {
				isClient = true
			}
			if first == "" && fn != "" && !strings.HasPrefix(fn, "runtime.mallocgc") && !strings.HasPrefix(fn, "runtime.new") {
				first = shortFunc(fn)
			}
			if len(names) < 2 && fn != "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") {
				names = append(names, shortFunc(fn))
			}
			if !more {
				break
			}
		}
		if isClient {
			client += b
			continue
		}
		if len(names) == 0 {
			names = []string{first + " (runtime)"}
		}
		sites[strings.Join(names, " ← ")] += b
	}
	return sites, client
}

func shortFunc(fn string) string {
	if i := strings.LastIndex(fn, "/"); i >= 0 {
		fn = fn[i+1:]
	}
	return fn
}

// dialSync opens one connection, sends the opening sync messages of its protocol and reads until
// the server's SyncStep2 arrives; the returned socket is left unread from then on (what the
// server sends an idle client, pings included, fits the kernel's socket buffers).
func dialSync(addr, doc, protocol string, buf []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	path := "/ws/" + doc
	if protocol == "hocuspocus" {
		path = "/ws"
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	// Read the response head byte by byte so that no frame bytes are swallowed into a buffer.
	br := bufio.NewReaderSize(oneByteReader{c}, 16)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	var frames [][]byte
	switch protocol {
	case "hocuspocus":
		key := syncproto.AppendHPKey(nil, doc)
		frames = [][]byte{
			syncproto.EncodeHPToken(doc, "", ""),
			append(key, syncproto.EncodeSyncStep1([]byte{0})...),
			append(slices.Clip(key), syncproto.EncodeSyncStep2([]byte{0, 0})...),
		}
	default:
		frames = [][]byte{
			syncproto.EncodeSyncStep1([]byte{0}),
			syncproto.EncodeSyncStep2([]byte{0, 0}),
		}
	}
	for _, f := range frames {
		if _, err := c.Write(maskedFrame(f)); err != nil {
			return nil, err
		}
	}
	if err := readUntilStep2(c, buf, protocol == "hocuspocus"); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	ok = true
	return c, nil
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// maskedFrame frames payload as one masked binary message (clients must mask). The mask is zero,
// which leaves the payload as is.
func maskedFrame(payload []byte) []byte {
	f := []byte{0x82}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("idlemem: frame too big")
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

var errClosed = errors.New("server closed the connection")

// readUntilStep2 reads server frames until a SyncStep2 (y-websocket: message 0/1; Hocuspocus: the
// same after the document name).
func readUntilStep2(c net.Conn, buf []byte, hp bool) error {
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return err
		}
		have += n
		for {
			payload, op, rest, ok := nextFrame(buf[:have])
			if !ok {
				break
			}
			if op == 0x8 {
				return errClosed
			}
			if op == 0x2 && isStep2(payload, hp) {
				return nil
			}
			have = copy(buf, rest)
		}
		if have == len(buf) {
			return errors.New("server frame larger than the read buffer")
		}
	}
}

func nextFrame(b []byte) (payload []byte, op byte, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, 0, b, false
	}
	op = b[0] & 0x0f
	n, h := int(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return nil, 0, b, false
		}
		n, h = int(b[2])<<8|int(b[3]), 4
	case 127:
		if len(b) < 10 {
			return nil, 0, b, false
		}
		n, h = 0, 10
		for _, x := range b[2:10] {
			n = n<<8 | int(x)
		}
	}
	if len(b) < h+n {
		return nil, 0, b, false
	}
	return b[h : h+n], op, b[h+n:], true
}

func isStep2(p []byte, hp bool) bool {
	if hp {
		m, err := syncproto.DecodeHP(p)
		return err == nil && (m.Type == syncproto.HPSync || m.Type == syncproto.HPSyncReply) && m.Sync.SyncType == syncproto.SyncStep2
	}
	m, err := syncproto.Decode(p)
	return err == nil && m.Type == syncproto.TypeSync && m.SyncType == syncproto.SyncStep2
}

// Format prints the report: per connection, the idle point minus the baseline.
func (r Report) Format(w io.Writer) {
	n := float64(r.Config.Clients)
	kib := func(a, b uint64) string { return fmt.Sprintf("%.2f", (float64(a)-float64(b))/n/1024) }
	fmt.Fprintf(w, "idle connections: %d over %d documents (%s), all synced in %s, then %s idle\n",
		r.Config.Clients, r.Config.Docs, r.Config.Protocol, r.Connected.Round(time.Millisecond), r.Config.Idle)
	if r.Config.Sites {
		fmt.Fprintln(w, "(--sites: every allocation is profiled; the profile's buckets inflate RSS and metadata)")
	}
	fmt.Fprintf(w, "%-46s %9s %9s %12s\n", "KiB per connection (idle point − baseline)", "as left", "after GC", "FreeOSMemory")
	row := func(name string, f func(Sample) uint64) {
		fmt.Fprintf(w, "%-46s %9s %9s %12s\n", name, kib(f(r.Idle), f(r.Before)), kib(f(r.IdleGC), f(r.Before)), kib(f(r.Freed), f(r.Before)))
	}
	row("VmRSS", func(s Sample) uint64 { return s.RSS })
	row("runtime total (mapped, not released)", func(s Sample) uint64 { return s.Total - s.Released })
	row("  heap objects (live + unswept dead)", func(s Sample) uint64 { return s.Objects })
	row("  heap live (marked by the last GC)", func(s Sample) uint64 { return s.Live })
	row("  heap unused (in-use spans, no object)", func(s Sample) uint64 { return s.HeapUnused })
	row("  heap free, not released (GC slack)", func(s Sample) uint64 { return s.HeapFree })
	row("  goroutine stacks", func(s Sample) uint64 { return s.Stacks + s.OSStacks })
	row("  runtime metadata and other", func(s Sample) uint64 { return s.Metadata })
	row("heap goal", func(s Sample) uint64 { return s.Goal })
	fmt.Fprintf(w, "goroutines per connection: %.3f (total %d → %d); starting stack %d B; GC cycles during the run %d\n",
		(float64(r.IdleGC.Goroutines)-float64(r.Before.Goroutines))/n, r.Before.Goroutines, r.IdleGC.Goroutines,
		r.IdleGC.StartStack, r.Idle.GCCycles-r.Before.GCCycles)
	if d := r.IdleGC.Goroutines - r.Before.Goroutines; d > 0 {
		fmt.Fprintf(w, "stack bytes per added goroutine: %.0f\n", (float64(r.IdleGC.Stacks)-float64(r.Before.Stacks))/float64(d))
	}
	fmt.Fprintln(w, "goroutines added, by the function they run:")
	for _, k := range sortedKeys(r.IdleGC.ByCreator) {
		if d := r.IdleGC.ByCreator[k] - r.Before.ByCreator[k]; d != 0 {
			fmt.Fprintf(w, "  %+7d  %s\n", d, k)
		}
	}
	if r.Config.Sites {
		fmt.Fprintln(w, "live heap added by allocation site (bytes per connection, ≥ 16):")
		type kv struct {
			k string
			v float64
		}
		var rows []kv
		var total float64
		for k, v := range r.IdleGC.HeapBySite {
			d := float64(v-r.Before.HeapBySite[k]) / n
			total += d
			if d >= 16 || d <= -16 {
				rows = append(rows, kv{k, d})
			}
		}
		slices.SortFunc(rows, func(a, b kv) int { return int(b.v - a.v) })
		for _, x := range rows {
			fmt.Fprintf(w, "  %8.0f  %s\n", x.v, x.k)
		}
		fmt.Fprintf(w, "  %8.0f  total server side\n", total)
		fmt.Fprintf(w, "  %8.0f  (the measuring clients' own sockets, not counted above)\n",
			float64(r.IdleGC.ClientBytes-r.Before.ClientBytes)/n)
	}
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
