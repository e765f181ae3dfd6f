package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// writeTrace writes a small sequential trace in the editing-traces format.
func writeTrace(t *testing.T) (path, end string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	// "hello" → "hello world" → "help world" → "help! world"
	_, _ = zw.Write([]byte(`{"startContent":"","endContent":"help! world","txns":[
		{"patches":[[0,0,"hello"]]},
		{"patches":[[5,0," world"]]},
		{"patches":[[3,2,"p"]]},
		{"patches":[[4,0,"!"]]}]}`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "small.json.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, "help! world"
}

// TestJoinStormInProcess: the seeded state reaches every joiner of every storm, the probe's
// text is the trace's end content, and the compare table shows the join-storm rows only.
func TestJoinStormInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	trace, end := writeTrace(t)
	got, state, err := traceState(trace)
	if err != nil || got != end || len(state) == 0 {
		t.Fatalf("traceState: %q, %d bytes, %v", got, len(state), err)
	}
	srv := server.New(server.Config{IdleTimeout: time.Second}, store.NewMemory())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	ts := hs.URL
	js, err := runJoinStorm(context.Background(), joinStormConfig{
		URL: "ws" + strings.TrimPrefix(ts, "http") + "/ws", Trace: trace, Doc: "storm",
		Joiners: 20, Storms: 2, Pause: 10 * time.Millisecond, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if js.Failed != 0 || js.ContentOK != 2 || len(js.WallMS) != 2 || js.StateBytes != len(state) {
		t.Fatalf("report %+v", js)
	}
	// Every joiner got at least the state.
	if js.BytesIn < int64(2*20*len(state)) {
		t.Errorf("joiners received %d bytes, want >= %d", js.BytesIn, 2*20*len(state))
	}
	f := filepath.Join(t.TempDir(), "j.json")
	out, _ := os.Create(f)
	if err := writeJSON(out, &report{Name: "x", JoinStorm: js}); err != nil {
		t.Fatal(err)
	}
	out.Close()
	var table bytes.Buffer
	if err := runCompare([]string{"a=" + f, "b=" + f}, &table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "join storm: wall") || strings.Contains(table.String(), "p99 latency") {
		t.Errorf("compare table:\n%s", table.String())
	}
}

// TestTraceStateRejectsBadTraces: a trace whose replay does not end at endContent is an error.
func TestTraceStateRejectsBadTraces(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"startContent":"","endContent":"nope","txns":[{"patches":[[0,0,"yes"]]}]}`))
	_ = zw.Close()
	path := filepath.Join(t.TempDir(), "bad.json.gz")
	_ = os.WriteFile(path, buf.Bytes(), 0o644)
	if _, _, err := traceState(path); err == nil || !strings.Contains(err.Error(), "endContent") {
		t.Fatalf("err = %v", err)
	}
}
