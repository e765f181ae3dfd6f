package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	if !math.IsNaN(h.quantile(0.5)) {
		t.Fatal("empty histogram should have no quantile")
	}
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond) // 1 µs .. 10 ms
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 9.9}, {0.01, 0.1}} {
		got := h.quantile(c.q)
		if math.Abs(got-c.want)/c.want > 0.02 {
			t.Errorf("q%.2f = %.4f ms, want %.4f ±2%%", c.q, got, c.want)
		}
	}
	if got := h.quantile(1); got != 10 {
		t.Errorf("max = %v ms, want exactly 10", got)
	}
	if got := h.mean(); math.Abs(got-5.0005) > 1e-9 {
		t.Errorf("mean = %v", got)
	}
	// Bucket boundaries are monotone and every bucket's midpoint maps back to it.
	prev := -1
	for us := uint64(0); us < 1<<30; us = us*9/8 + 1 {
		b := bucketOf(us)
		if b < prev {
			t.Fatalf("bucketOf not monotone at %d", us)
		}
		prev = b
		if bucketOf(uint64(bucketMid(b))) != b {
			t.Fatalf("midpoint of bucket %d (%v) maps to %d", b, bucketMid(b), bucketOf(uint64(bucketMid(b))))
		}
	}
}

func TestLedgerAccounting(t *testing.T) {
	l := newLedger(3, 4)
	ms := int64(time.Millisecond)
	// Client 0 makes edits 0 and 1 (owed to 2 receivers each); edit 0 is measured.
	l.send(0, 0, 10*ms, 2, true)
	l.send(0, 1, 20*ms, 2, false)
	if got := l.outstanding(); got != 4 {
		t.Fatalf("outstanding = %d, want 4", got)
	}
	// Receiver A applies both at 15 ms... no: at 25 ms (one update carrying edits 0 and 1).
	l.deliver(0, 0, 2, 25*ms)
	// Receiver B applies edit 0 only, at 40 ms.
	l.deliver(0, 0, 1, 40*ms)
	if got := l.outstanding(); got != 1 {
		t.Fatalf("outstanding = %d, want 1", got)
	}
	d, e := l.lost()
	if d != 1 || e != 1 {
		t.Fatalf("lost = %d deliveries, %d edits; want 1, 1", d, e)
	}
	// Measured: edit 0 only. Per delivery 15 ms and 30 ms; complete at 30 ms (the later receiver).
	if n := l.one.count.Load(); n != 2 {
		t.Fatalf("per-delivery samples = %d, want 2", n)
	}
	if n := l.edit.count.Load(); n != 1 {
		t.Fatalf("complete samples = %d, want 1", n)
	}
	if got := l.edit.quantile(1); got != 30 {
		t.Errorf("edit latency = %v ms, want 30", got)
	}
	if got := l.mDelivered.Load(); got != 2 {
		t.Errorf("measured deliveries = %d, want 2", got)
	}
	// A credit beyond what the sender recorded is flagged, not counted.
	l.deliver(1, 0, 3, 50*ms)
	if got := l.unexpected.Load(); got != 3 {
		t.Errorf("unexpected = %d, want 3", got)
	}
	// The late receiver catches up: nothing lost any more.
	l.deliver(0, 1, 2, 60*ms)
	if d, e := l.lost(); d != 0 || e != 0 || l.outstanding() != 0 {
		t.Errorf("after catch-up lost = %d/%d outstanding %d", d, e, l.outstanding())
	}
	if !l.full(0) == (len(l.slots[0]) <= 2) {
		t.Errorf("full(0) wrong")
	}
	l.send(0, 2, 70*ms, 0, true) // a lone client: nothing owed, nothing measured
	if l.outstanding() != 0 || l.edit.count.Load() != 1 {
		t.Errorf("edit with no receivers changed the books")
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3.25 {
		t.Fatalf("cpu = %v, %v; want 3.25", cpu, err)
	}
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   12345 kB\n"))
	if err != nil || rss != 12345 {
		t.Fatalf("rss = %v, %v", rss, err)
	}
	if _, ok := hostBusy(); !ok {
		t.Log("no /proc/stat here")
	}
}

// TestRunInProcess runs a small scenario against an in-process ysync server: every edit must
// reach every other client of its document, and the JSON report must round-trip into compare.
func TestRunInProcess(t *testing.T) { testRunInProcess(t, protoYWebsocket) }

// TestRunInProcessHocuspocus: the same with --protocol hocuspocus, against GET /ws.
func TestRunInProcessHocuspocus(t *testing.T) { testRunInProcess(t, protoHocuspocus) }

func testRunInProcess(t *testing.T, protocol string) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	st := store.NewMemory()
	srv := server.New(server.Config{IdleTimeout: time.Second}, st)
	ts := httptest.NewServer(srv.Handler())
	defer func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	cfg := config{
		URL:         "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws",
		Clients:     9,
		Docs:        3,
		Rate:        20,
		Duration:    700 * time.Millisecond,
		Warmup:      200 * time.Millisecond,
		Grace:       5 * time.Second,
		SyncTimeout: 10 * time.Second,
		DocPrefix:   "test",
		Protocol:    protocol,
	}
	rep, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	writeText(&text, rep)
	t.Log("\n" + text.String())
	if rep.Synced != 9 || rep.ConnectErrors != 0 || rep.Dropped != 0 {
		t.Fatalf("connections: %+v", rep)
	}
	if rep.EditsSent < 50 {
		t.Errorf("only %d measured edits", rep.EditsSent)
	}
	if rep.LostDeliveries != 0 || rep.UnexpectedCredit != 0 {
		t.Errorf("lost %d, unexpected %d", rep.LostDeliveries, rep.UnexpectedCredit)
	}
	if rep.Deliveries != 2*rep.EditsSent || rep.EditsComplete != rep.EditsSent {
		t.Errorf("deliveries %d, complete %d for %d edits with 2 receivers each", rep.Deliveries, rep.EditsComplete, rep.EditsSent)
	}
	if rep.Latency.N != rep.EditsSent || !(rep.Latency.P50 > 0 && rep.Latency.P50 <= rep.Latency.P99 && rep.Latency.P99 <= rep.Latency.Max) {
		t.Errorf("latency %+v", rep.Latency)
	}

	if rep.ContentChecked != 3 || rep.ContentErrors != 0 {
		t.Errorf("content check: %d docs checked, %d errors", rep.ContentChecked, rep.ContentErrors)
	}

	dir := t.TempDir()
	var js bytes.Buffer
	if err := writeJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	f := dir + "/r.json"
	if err := os.WriteFile(f, js.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := runCompare([]string{"a=" + f + "," + f, "b=" + f}, &table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "p99 latency") || !strings.Contains(table.String(), "1.00") {
		t.Errorf("compare table:\n%s", table.String())
	}
}

// With several node URLs the clients of each document are spread over the nodes.
func TestNodeURLSpreadsDocuments(t *testing.T) {
	c := config{URL: "ws://a/ws,ws://b/ws,ws://c/ws", Docs: 2}
	perDoc := map[int]map[string]bool{}
	for id := range 12 {
		doc := id % c.Docs
		if perDoc[doc] == nil {
			perDoc[doc] = map[string]bool{}
		}
		perDoc[doc][c.nodeURL(id)] = true
	}
	for doc, nodes := range perDoc {
		if len(nodes) != 3 {
			t.Errorf("document %d's clients are on %d nodes, want 3", doc, len(nodes))
		}
	}
	if got := (config{URL: "ws://one/ws", Docs: 5}).nodeURL(17); got != "ws://one/ws" {
		t.Errorf("single URL: %q", got)
	}
}
