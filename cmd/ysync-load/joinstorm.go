package main

// The join-storm scenario (`ysync-load joinstorm`): one document holding a big state (the end
// state of an editing trace, e.g. automerge-paper), then --joiners fresh y-websocket clients
// connecting at the same moment, each asking for the whole state (SyncStep1 with an empty state
// vector), --storms times. It measures the server's CPU and the wall time from the first dial to
// the last SyncStep2 of each storm. Joiners are light (no crdt.Doc): they answer the server's
// SyncStep1 with an empty SyncStep2 as a stock client with an empty document does, and count the
// bytes they receive; the first joiner of every storm applies the state it got and checks that
// its text is the trace's end content, so a server that answered fast but wrong is caught.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/syncproto"
)

type joinStormConfig struct {
	URL       string
	Trace     string
	Doc       string
	Joiners   int
	Storms    int
	Pause     time.Duration
	Timeout   time.Duration
	ServerPID int
	Log       io.Writer
}

// joinStormReport is one run: per storm the server CPU and wall time, and their medians.
type joinStormReport struct {
	Trace       string    `json:"trace"`
	StateBytes  int       `json:"state_bytes"`
	Joiners     int       `json:"joiners"`
	Storms      int       `json:"storms"`
	CPUS        []float64 `json:"cpu_s"`        // server CPU per storm
	WallMS      []float64 `json:"wall_ms"`      // first dial → last SyncStep2, per storm
	JoinP50MS   []float64 `json:"join_p50_ms"`  // per joiner: dial → SyncStep2, median
	JoinP99MS   []float64 `json:"join_p99_ms"`  // and p99
	MedianCPUS  float64   `json:"median_cpu_s"` // over storms
	MedianWall  float64   `json:"median_wall_ms"`
	BytesIn     int64     `json:"bytes_in"`      // received by all joiners, all storms
	Failed      int64     `json:"failed_joins"`  // joiners that did not get a SyncStep2
	ContentOK   int       `json:"content_ok"`    // storms whose probe joiner had the right text
	SeedApplyMS float64   `json:"seed_apply_ms"` // generator time to replay the trace
}

func runJoinStormCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c joinStormConfig
	fs := flag.NewFlagSet("ysync-load joinstorm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8080/ws", "base y-websocket URL; /<doc> is appended")
	fs.StringVar(&c.Trace, "trace", "", "sequential editing trace (.json.gz, editing-traces format) whose end state seeds the document")
	fs.StringVar(&c.Doc, "doc", "", "document name (default: joinstorm-<time>)")
	fs.IntVar(&c.Joiners, "joiners", 300, "clients joining at once per storm")
	fs.IntVar(&c.Storms, "storms", 3, "storms per run (joiners leave between storms)")
	fs.DurationVar(&c.Pause, "pause", time.Second, "pause between storms")
	fs.DurationVar(&c.Timeout, "timeout", 60*time.Second, "time allowed per storm")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "sample this process's CPU from /proc per storm")
	jsonOut := fs.String("json", "", "also write the report as JSON here")
	name := fs.String("name", "", "label stored in the JSON report")
	quiet := fs.Bool("quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Trace == "" || c.Joiners < 1 || c.Storms < 1 {
		return errors.New("joinstorm: need --trace, --joiners >= 1, --storms >= 1")
	}
	if c.Doc == "" {
		c.Doc = fmt.Sprintf("joinstorm-%d", time.Now().UnixNano())
	}
	if !*quiet {
		c.Log = stderr
	}
	js, err := runJoinStorm(ctx, c)
	if err != nil {
		return err
	}
	rep := &report{Name: *name, Config: reportConfig{URL: c.URL, Clients: c.Joiners, Docs: 1}, JoinStorm: js}
	if c.ServerPID > 0 {
		rep.Server = &serverReport{PID: c.ServerPID}
	}
	if *jsonOut != "" {
		f, err := os.Create(*jsonOut)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := writeJSON(f, rep); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "joinstorm: %d joiners x %d storms, state %d bytes (%s)\n", js.Joiners, js.Storms, js.StateBytes, js.Trace)
	fmt.Fprintf(stdout, "server CPU per storm (s): %s (median %.3f)\n", fmtList(js.CPUS), js.MedianCPUS)
	fmt.Fprintf(stdout, "wall per storm (ms): %s (median %.1f); join p50 %s p99 %s ms\n", fmtList(js.WallMS), js.MedianWall, fmtList(js.JoinP50MS), fmtList(js.JoinP99MS))
	fmt.Fprintf(stdout, "received %d bytes; %d failed joins; content checked ok in %d/%d storms\n", js.BytesIn, js.Failed, js.ContentOK, js.Storms)
	if js.Failed > 0 || js.ContentOK != js.Storms {
		return fmt.Errorf("joinstorm: %d failed joins, content ok in %d of %d storms", js.Failed, js.ContentOK, js.Storms)
	}
	return nil
}

func fmtList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmtNum(x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func runJoinStorm(ctx context.Context, c joinStormConfig) (*joinStormReport, error) {
	logf := func(format string, args ...any) {
		if c.Log != nil {
			fmt.Fprintf(c.Log, "ysync-load: "+format+"\n", args...)
		}
	}
	t0 := time.Now()
	want, state, err := traceState(c.Trace)
	if err != nil {
		return nil, err
	}
	js := &joinStormReport{Trace: c.Trace, StateBytes: len(state), Joiners: c.Joiners, Storms: c.Storms,
		SeedApplyMS: float64(time.Since(t0).Microseconds()) / 1000}
	logf("trace replayed in %.0f ms: %d bytes of state, %d characters", js.SeedApplyMS, len(state), len(want))

	dialer := &websocket.Dialer{HandshakeTimeout: c.Timeout, ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &bufferPool{}}
	url := c.URL + "/" + c.Doc
	// The seed stays connected for the whole run: the reference server drops a document when its
	// last connection leaves.
	seed, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("seed: dial %s: %w", url, err)
	}
	defer seed.Close()
	go func() { // discard what the server sends the seed
		for {
			if _, _, err := seed.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := seed.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := seed.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(state)); err != nil {
		return nil, fmt.Errorf("seed: send state: %w", err)
	}
	// One awareness state, so that every joiner is also sent the awareness snapshot.
	if err := seed.WriteMessage(websocket.BinaryMessage, syncproto.EncodeAwareness(awarenessUpdate(1<<40, 1, `{"user":{"name":"seed","color":"#30bced"}}`))); err != nil {
		return nil, fmt.Errorf("seed: send awareness: %w", err)
	}
	// Wait until a probe sees the whole state.
	deadline := time.Now().Add(c.Timeout)
	for {
		r := joinOnce(ctx, dialer, url, true, c.Timeout, nil, nil)
		if r.err == nil && r.text == want {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("seed: the server did not serve the seeded state within %v (last: %v, %d of %d characters)", c.Timeout, r.err, len(r.text), len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("document %s seeded", c.Doc)

	for s := 0; s < c.Storms; s++ {
		if s > 0 {
			time.Sleep(c.Pause)
		}
		before, _ := readProc(c.ServerPID)
		start := time.Now()
		results := make([]joinResult, c.Joiners)
		var joined, closed sync.WaitGroup
		release := make(chan struct{})
		for i := range results {
			joined.Add(1)
			closed.Add(1)
			go func() {
				defer closed.Done()
				results[i] = joinOnce(ctx, dialer, url, i == 0, c.Timeout, &joined, release)
			}()
		}
		// Every joiner stays connected until all have their state: a storm is everyone at once.
		joined.Wait()
		wall := time.Since(start)
		after, _ := readProc(c.ServerPID)
		close(release)
		closed.Wait()
		var lat []float64
		for _, r := range results {
			if r.err != nil {
				js.Failed++
				continue
			}
			lat = append(lat, float64(r.took.Microseconds())/1000)
		}
		if results[0].err == nil && results[0].text == want {
			js.ContentOK++
		} else if results[0].err == nil {
			logf("storm %d: the probe joiner's text differs (%d of %d characters)", s+1, len(results[0].text), len(want))
		}
		for _, r := range results {
			if r.err != nil {
				logf("storm %d: %v", s+1, r.err)
				break
			}
		}
		sort.Float64s(lat)
		p50, p99 := -1.0, -1.0
		if len(lat) > 0 {
			p50, p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
		}
		cpu := -1.0
		if c.ServerPID > 0 && before.OK && after.OK {
			cpu = after.CPU - before.CPU
		}
		js.CPUS = append(js.CPUS, cpu)
		js.WallMS = append(js.WallMS, float64(wall.Microseconds())/1000)
		js.JoinP50MS = append(js.JoinP50MS, p50)
		js.JoinP99MS = append(js.JoinP99MS, p99)
		for _, r := range results {
			js.BytesIn += r.bytes
		}
		logf("storm %d/%d: %d joiners in %.0f ms, server CPU %.3f s, join p50 %.0f p99 %.0f ms", s+1, c.Storms, c.Joiners, float64(wall.Microseconds())/1000, cpu, p50, p99)
	}
	js.MedianCPUS = median(js.CPUS)
	js.MedianWall = median(js.WallMS)
	if math.IsNaN(js.MedianCPUS) { // no --server-pid: JSON has no NaN
		js.MedianCPUS = -1
	}
	return js, nil
}

type joinResult struct {
	took  time.Duration
	bytes int64
	text  string // probe only
	err   error
}

// joinOnce is one joiner: dial, SyncStep1 with an empty state vector, answer the server's
// SyncStep1, wait for SyncStep2. With probe it applies the state and returns the text. With
// joined set it calls joined.Done once it has its state (or failed) and keeps the connection open
// until release is closed.
func joinOnce(ctx context.Context, dialer *websocket.Dialer, url string, probe bool, timeout time.Duration, joined *sync.WaitGroup, release chan struct{}) (r joinResult) {
	start := time.Now()
	var once sync.Once
	done := func() {
		if joined != nil {
			once.Do(joined.Done)
		}
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		r.err = fmt.Errorf("dial: %w", err)
		return r
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	if err := conn.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1([]byte{0})); err != nil {
		r.err = fmt.Errorf("send step1: %w", err)
		return r
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			r.err = fmt.Errorf("read: %w", err)
			return r
		}
		r.bytes += int64(len(data))
		msg, err := syncproto.Decode(data)
		if err != nil || msg.Type != syncproto.TypeSync {
			continue
		}
		if msg.SyncType == syncproto.SyncStep1 {
			if err := conn.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep2([]byte{0, 0})); err != nil {
				r.err = fmt.Errorf("send step2: %w", err)
				return r
			}
			continue
		}
		if msg.SyncType != syncproto.SyncStep2 {
			continue
		}
		r.took = time.Since(start)
		if probe {
			doc := crdt.NewDoc(crdt.DocOptions{})
			if err := crdt.ApplyUpdate(doc, msg.Payload, nil); err != nil {
				r.err = fmt.Errorf("apply state: %w", err)
				return r
			}
			r.text = doc.GetText("text").String()
		}
		break
	}
	done()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return r
}

// awarenessUpdate encodes one awareness entry: count, client id, clock, JSON state.
func awarenessUpdate(client, clock uint64, state string) []byte {
	b := binary.AppendUvarint(nil, 1)
	b = binary.AppendUvarint(b, client)
	b = binary.AppendUvarint(b, clock)
	b = binary.AppendUvarint(b, uint64(len(state)))
	return append(b, state...)
}

// traceState replays a sequential editing trace into a Y.Text named "text", one transaction per
// txn, and returns the end content and the state encoded as one V1 update.
func traceState(path string) (string, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw struct {
		StartContent string `json:"startContent"`
		EndContent   string `json:"endContent"`
		Txns         []struct {
			Parents json.RawMessage   `json:"parents"`
			Patches []json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, r := range raw.StartContent + raw.EndContent {
		if r > 0xFFFF {
			// Trace positions count code points, Y.Text counts UTF-16 units.
			return "", nil, fmt.Errorf("%s: characters outside the BMP are not supported by the seed loader", path)
		}
	}
	doc := crdt.NewDoc(crdt.DocOptions{ClientID: 1 << 41})
	text := doc.GetText("text")
	if raw.StartContent != "" {
		if err := text.Insert(0, raw.StartContent, nil); err != nil {
			return "", nil, err
		}
	}
	for i, txn := range raw.Txns {
		if len(txn.Parents) > 0 && !bytes.Equal(txn.Parents, []byte("null")) && !bytes.Equal(txn.Parents, []byte("[]")) && i > 0 {
			return "", nil, fmt.Errorf("%s: concurrent trace (txns with parents) not supported", path)
		}
		var err error
		doc.Transact(func(*crdt.Transaction) {
			for _, rp := range txn.Patches {
				var p [3]any
				if e := json.Unmarshal(rp, &p); e != nil {
					err = e
					return
				}
				pos, _ := p[0].(float64)
				del, _ := p[1].(float64)
				ins, _ := p[2].(string)
				if del > 0 {
					if e := text.Delete(int(pos), int(del)); e != nil {
						err = e
						return
					}
				}
				if ins != "" {
					if e := text.Insert(int(pos), ins, nil); e != nil {
						err = e
						return
					}
				}
			}
		}, nil)
		if err != nil {
			return "", nil, fmt.Errorf("%s: txn %d: %w", path, i, err)
		}
	}
	if got := text.String(); got != raw.EndContent {
		return "", nil, fmt.Errorf("%s: replay ended with %d characters, want the %d of endContent", path, len(got), len(raw.EndContent))
	}
	state, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		return "", nil, err
	}
	return raw.EndContent, state, nil
}
