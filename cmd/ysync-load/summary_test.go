package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummaryTableSideBySide(t *testing.T) {
	dir := t.TempDir()
	put := func(name string, r report) {
		t.Helper()
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idle := func(kib float64) report {
		return report{Server: &serverReport{RSSPerIdleConn: kib, RSSIdleKiB: 100 << 10}}
	}
	fan := func(cpu float64, p99 float64) report {
		return report{Deliveries: 1e6, Latency: latency{P50: 1, P99: p99}, Server: &serverReport{CPUMeasureS: cpu}}
	}
	for i, v := range []float64{10, 12, 11} {
		put("idle-ysync-"+string(rune('1'+i)), idle(v))
	}
	for i, v := range []float64{8, 9, 7} {
		put("idle-reference-"+string(rune('1'+i)), idle(v))
	}
	put("idle-hocuspocus-ysync-1", idle(20))
	put("idle-hocuspocus-hocuspocus-1", idle(40))
	put("fanout-hocuspocus-ysync-1", fan(5, 30))
	put("fanout-hocuspocus-hocuspocus-1", fan(10, 60))
	put("joinstorm-ysync-1", report{JoinStorm: &joinStormReport{MedianCPUS: 0.5}})
	put("joinstorm-reference-1", report{JoinStorm: &joinStormReport{MedianCPUS: 2}})
	if err := os.WriteFile(filepath.Join(dir, "idle-ysync-1.perf.txt"), []byte("    41.00%  [.] runtime.scanobject\n\n    9.00%  [k] copy_user\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runSummary([]string{dir}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"| idle | RSS per idle connection (KiB) | 11.0 [10.0 12.0 11.0] | 8.00 [8.00 9.00 7.00] | 1.38 | 20.0 | 40.0 | 0.50 | <= 8 KiB |",
		"| join storm | server CPU per storm (s) | 0.50 | 2.00 | 0.25 | n/a | n/a |  | ratio <= 0.15 |",
		// y-websocket fan-out did not run: its cells are empty, the Hocuspocus ones are not.
		"| fan-out | server CPU per delivered update (µs) |  |  |  | 5.00 | 10.0 | 0.50 |  |",
		"| fan-out | p99 latency (ms) |  |  |  | 30.0 | 60.0 | 0.50 |  |",
		"idle, ysync:\n    41.00% [.] runtime.scanobject\n    9.00% [k] copy_user\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| join storm | server CPU per storm (s) | 0.50 | 2.00 | 0.25 | 0") {
		t.Errorf("join storm has Hocuspocus cells")
	}
}

func TestParseRunName(t *testing.T) {
	for _, c := range []struct {
		in       string
		scenario string
		server   string
		n        int
		ok       bool
	}{
		{"fanout-hocuspocus-ysync-2", "fanout-hocuspocus", "ysync", 2, true},
		{"idle-reference-10", "idle", "reference", 10, true},
		{"summary", "", "", 0, false},
		{"idle-ysync-x", "", "", 0, false},
	} {
		k, n, ok := parseRunName(c.in)
		if ok != c.ok || k.scenario != c.scenario || k.server != c.server || n != c.n {
			t.Errorf("parseRunName(%q) = %+v %d %v", c.in, k, n, ok)
		}
	}
}
