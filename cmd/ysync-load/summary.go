package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// runSummary implements `ysync-load summary DIR`: one Markdown table of issue 14's scenarios
// side by side, from the reports scripts/bench-server.sh --scenario all leaves in DIR (named
// <scenario>-<server>-<run>.json), with the ratios of ysync to the reference y-websocket server
// and to Hocuspocus; and, where DIR holds perf reports (<scenario>-<server>-<run>.perf.txt), the
// top symbols of each server's first run.
func runSummary(args []string, w io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("summary: want one directory, got %q", args)
	}
	runs, err := loadRuns(args[0])
	if err != nil {
		return err
	}
	writeSummary(w, runs)
	writeProfiles(w, args[0], runs)
	return nil
}

// runKey names the reports of one server in one scenario.
type runKey struct{ scenario, server string }

// loadRuns reads DIR/<scenario>-<server>-<run>.json, in run order.
func loadRuns(dir string) (map[runKey][]*report, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	type numbered struct {
		n   int
		rep *report
	}
	byKey := make(map[runKey][]numbered)
	for _, f := range files {
		k, n, ok := parseRunName(strings.TrimSuffix(filepath.Base(f), ".json"))
		if !ok {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rep report
		if err := json.Unmarshal(b, &rep); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		byKey[k] = append(byKey[k], numbered{n, &rep})
	}
	out := make(map[runKey][]*report, len(byKey))
	for k, rs := range byKey {
		sort.Slice(rs, func(i, j int) bool { return rs[i].n < rs[j].n })
		for _, r := range rs {
			out[k] = append(out[k], r.rep)
		}
	}
	return out, nil
}

// parseRunName splits "fanout-hocuspocus-ysync-2" into scenario "fanout-hocuspocus", server
// "ysync" and run 2.
func parseRunName(base string) (runKey, int, bool) {
	i := strings.LastIndex(base, "-")
	if i < 0 {
		return runKey{}, 0, false
	}
	n, err := strconv.Atoi(base[i+1:])
	if err != nil {
		return runKey{}, 0, false
	}
	rest := base[:i]
	j := strings.LastIndex(rest, "-")
	if j < 0 {
		return runKey{}, 0, false
	}
	return runKey{rest[:j], rest[j+1:]}, n, true
}

// summaryRow is one line of the table: a metric of one scenario, measured against the reference
// (y-websocket scenarios) and against Hocuspocus (the same scenario with --protocol hocuspocus;
// empty when the protocol does not apply).
type summaryRow struct {
	scenario, metric string
	yws, hp          string // scenario tags of bench-server.sh
	value            func(*report) float64
	target           string
}

var summaryRows = []summaryRow{
	{"join storm", "server CPU per storm (s)", "joinstorm", "", func(r *report) float64 { return joinStorm(r, func(j *joinStormReport) float64 { return j.MedianCPUS }) }, "ratio <= 0.15"},
	{"join storm", "join p99 (ms)", "joinstorm", "", func(r *report) float64 {
		return joinStorm(r, func(j *joinStormReport) float64 { return median(j.JoinP99MS) })
	}, ""},
	{"join storm", "failed joins", "joinstorm", "", func(r *report) float64 {
		return joinStorm(r, func(j *joinStormReport) float64 { return float64(j.Failed) })
	}, "0"},
	{"fan-out", "server CPU per delivered update (µs)", "fanout", "fanout-hocuspocus", metricValue("server CPU per delivery"), ""},
	{"fan-out", "p50 latency (ms)", "fanout", "fanout-hocuspocus", metricValue("p50 latency"), ""},
	{"fan-out", "p99 latency (ms)", "fanout", "fanout-hocuspocus", metricValue("p99 latency"), ""},
	{"fan-out", "lost deliveries", "fanout", "fanout-hocuspocus", metricValue("lost deliveries"), "0"},
	{"fan-out", "RSS max under load (MiB)", "fanout", "fanout-hocuspocus", metricValue("RSS max under load"), ""},
	{"idle", "RSS per idle connection (KiB)", "idle", "idle-hocuspocus", metricValue("RSS per idle conn"), "<= 8 KiB"},
	{"idle", "RSS, all connected (MiB)", "idle", "idle-hocuspocus", metricValue("RSS idle (all connected)"), ""},
	{"idle", "connect errors + drops", "idle", "idle-hocuspocus", metricValue("connect errors+drops"), "0"},
}

func joinStorm(r *report, f func(*joinStormReport) float64) float64 {
	if r.JoinStorm == nil {
		return math.NaN()
	}
	return f(r.JoinStorm)
}

// metricValue is the value function of the compare table's metric of that name, looked up at
// each call (some are set by init, after this package's variables).
func metricValue(name string) func(*report) float64 {
	return func(r *report) float64 {
		for _, m := range metrics {
			if m.name == name {
				return m.value(r)
			}
		}
		panic("summary: no metric " + name)
	}
}

// cell is the median of runs with the runs in brackets, and the median alone for ratios.
func cell(runs []*report, f func(*report) float64) (string, float64) {
	if len(runs) == 0 {
		return "", math.NaN()
	}
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = f(r)
	}
	med := median(vs)
	s := fmtNum(med)
	if len(vs) > 1 {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmtNum(v)
		}
		s += " [" + strings.Join(parts, " ") + "]"
	}
	return s, med
}

func ratio(a, b float64) string {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return ""
	case a == 0 && b == 0:
		return "="
	case b == 0:
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func writeSummary(w io.Writer, runs map[runKey][]*report) {
	nRuns := 0
	for _, rs := range runs {
		nRuns = max(nRuns, len(rs))
	}
	fmt.Fprintf(w, "Issue 14, all scenarios side by side: medians of up to %d runs per server [the runs]; ratios are ysync/other (below 1: ysync uses less).\n\n", nRuns)
	fmt.Fprintln(w, "| scenario | metric | ysync | reference | ysync/reference | ysync (Hocuspocus protocol) | hocuspocus | ysync/hocuspocus | target |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, row := range summaryRows {
		ys, ym := cell(runs[runKey{row.yws, "ysync"}], row.value)
		rs, rm := cell(runs[runKey{row.yws, "reference"}], row.value)
		hys, hym, hs, hm := "n/a", math.NaN(), "n/a", math.NaN()
		if row.hp != "" {
			hys, hym = cell(runs[runKey{row.hp, "ysync"}], row.value)
			hs, hm = cell(runs[runKey{row.hp, "hocuspocus"}], row.value)
		}
		if ys == "" && rs == "" && (row.hp == "" || hys == "" && hs == "") {
			continue // scenario not run
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.scenario, row.metric,
			ys, rs, ratio(ym, rm), hys, hs, ratio(hym, hm), row.target)
	}
}

// writeProfiles prints the first lines of each server's first perf report (bench-server.sh
// --profile), scenario by scenario.
func writeProfiles(w io.Writer, dir string, runs map[runKey][]*report) {
	files, _ := filepath.Glob(filepath.Join(dir, "*-1.perf.txt"))
	if len(files) == 0 {
		return
	}
	sort.Strings(files)
	fmt.Fprintf(w, "\nTop symbols per server (perf record -g, self time, first run of each; full reports in %s):\n", dir)
	for _, f := range files {
		k, _, ok := parseRunName(strings.TrimSuffix(filepath.Base(f), ".perf.txt"))
		if !ok {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var top []string
		for line := range strings.SplitSeq(string(b), "\n") {
			if line = strings.TrimSuffix(strings.Join(strings.Fields(line), " "), " - -"); line != "" {
				top = append(top, line)
			}
			if len(top) == 6 {
				break
			}
		}
		fmt.Fprintf(w, "\n%s, %s:\n", k.scenario, k.server)
		for _, l := range top {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}
