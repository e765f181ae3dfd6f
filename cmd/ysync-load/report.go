package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

type reportConfig struct {
	URL         string  `json:"url"`
	Clients     int     `json:"clients"`
	Docs        int     `json:"docs"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	ConnectRate float64 `json:"connect_rate"` // 0: unlimited
	IdleS       float64 `json:"idle_s"`
	GraceS      float64 `json:"grace_s"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
}

type latency struct {
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
	N    int64   `json:"n"`
}

type serverReport struct {
	PID            int     `json:"pid"`
	RSSBeforeKiB   int64   `json:"rss_before_kib"`
	RSSIdleKiB     int64   `json:"rss_idle_kib"`
	RSSLoadMaxKiB  int64   `json:"rss_load_max_kib"`
	RSSAfterKiB    int64   `json:"rss_after_kib"`
	IdleConns      int     `json:"idle_conns"`
	RSSPerIdleConn float64 `json:"rss_per_idle_conn_kib"`
	CPUConnectS    float64 `json:"cpu_connect_s"` // connect + sync + idle phase
	CPUMeasureS    float64 `json:"cpu_measure_s"` // measured window
	CPULoadS       float64 `json:"cpu_load_s"`    // warmup + window + drain
	CPUTotalS      float64 `json:"cpu_total_s"`
	CoresMeasure   float64 `json:"cores_measure"`
}

type report struct {
	Name      string       `json:"name,omitempty"`
	Config    reportConfig `json:"config"`
	ConnectS  float64      `json:"connect_s"`
	MeasuredS float64      `json:"measured_s"`
	DrainS    float64      `json:"drain_s"`

	Synced        int   `json:"synced_clients"`
	ConnectErrors int64 `json:"connect_errors"`
	Dropped       int64 `json:"dropped_connections"`
	SendErrors    int64 `json:"send_errors"`

	EditsSent        int64   `json:"edits_sent"`        // in the measured window
	Deliveries       int64   `json:"deliveries"`        // of measured edits
	DeliveredPerS    float64 `json:"delivered_per_s"`   // Deliveries / measured seconds
	EditsComplete    int64   `json:"edits_complete"`    // measured edits applied by every other client
	ExpectedAll      int64   `json:"expected_all"`      // deliveries owed, all phases
	LostDeliveries   int64   `json:"lost_deliveries"`   // owed but never applied within grace
	LostEdits        int64   `json:"lost_edits"`        // edits missing at >= 1 receiver
	UnexpectedCredit int64   `json:"unexpected_credit"` // bookkeeping sanity (must be 0)
	ContentChecked   int     `json:"content_checked_docs"`
	ContentErrors    int     `json:"content_errors"` // {c, n} entries missing or duplicated

	Latency     latency `json:"latency"`          // edit → applied at every other client
	PerDelivery latency `json:"latency_delivery"` // edit → applied at one client
	SchedLag    latency `json:"sched_lag"`        // generator lateness vs schedule

	GenCPUS         float64 `json:"gen_cpu_s"`
	GenCPUMeasureS  float64 `json:"gen_cpu_measure_s"`
	GenCoresMeasure float64 `json:"gen_cores_measure"`
	GenWallS        float64 `json:"gen_wall_s"`
	GenMaxRSSKiB    int64   `json:"gen_rss_kib"`

	// Whole machine, measured window: busy cores, and what is left after the generator and (with
	// --server-pid) the server: other work sharing the machine.
	HostCoresMeasure  float64 `json:"host_cores_measure"`
	OtherCoresMeasure float64 `json:"other_cores_measure"`

	Errors []string      `json:"errors,omitempty"`
	Server *serverReport `json:"server,omitempty"`
	// JoinStorm is set by `ysync-load joinstorm` (joinstorm.go); the fields above are then unused.
	JoinStorm *joinStormReport `json:"join_storm,omitempty"`
}

func latencyOf(h *hist) latency {
	return latency{P50: h.quantile(0.5), P99: h.quantile(0.99), Max: h.quantile(1), Mean: h.mean(), N: h.count.Load()}
}

func (r *runner) fill(rep *report, cpu0 time.Duration, wall0 time.Time, m0, m1 time.Duration) {
	l := r.ledger
	rep.Synced = r.alive()
	rep.ConnectErrors = r.connectErrors.Load()
	rep.Dropped = r.dropped.Load()
	rep.SendErrors = r.sendErrors.Load()
	rep.EditsSent = l.mSent.Load()
	rep.Deliveries = l.mDelivered.Load()
	if rep.MeasuredS > 0 {
		rep.DeliveredPerS = float64(rep.Deliveries) / rep.MeasuredS
	}
	rep.EditsComplete = l.mComplete.Load()
	rep.ExpectedAll = l.expected.Load()
	rep.LostDeliveries, rep.LostEdits = l.lost()
	rep.UnexpectedCredit = l.unexpected.Load()
	rep.Latency = latencyOf(&l.edit)
	rep.PerDelivery = latencyOf(&l.one)
	rep.SchedLag = latencyOf(&r.lagHist)
	rep.GenCPUS = (selfCPU() - cpu0).Seconds()
	rep.GenCPUMeasureS = (m1 - m0).Seconds()
	if rep.MeasuredS > 0 {
		rep.GenCoresMeasure = rep.GenCPUMeasureS / rep.MeasuredS
	}
	rep.GenWallS = time.Since(wall0).Seconds()
	if s, err := readProc(os.Getpid()); err == nil {
		rep.GenMaxRSSKiB = s.RSSKiB
	}
	r.errMu.Lock()
	rep.Errors = append([]string(nil), r.errors...)
	r.errMu.Unlock()
}

// nanNull makes NaN (no samples) encodable: encoding/json rejects NaN.
func (rep *report) sanitize() {
	for _, l := range []*latency{&rep.Latency, &rep.PerDelivery, &rep.SchedLag} {
		for _, f := range []*float64{&l.P50, &l.P99, &l.Max, &l.Mean} {
			if math.IsNaN(*f) {
				*f = -1
			}
		}
	}
}

func writeJSON(w io.Writer, rep *report) error {
	rep.sanitize()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func ms(v float64) string {
	if v < 0 || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", v)
}

func writeText(w io.Writer, rep *report) {
	rep.sanitize()
	c := rep.Config
	fmt.Fprintf(w, "scenario: %d clients / %d docs, %.3g edits/s per client, %gs measured after %gs warmup (url %s)\n",
		c.Clients, c.Docs, c.Rate, c.DurationS, c.WarmupS, c.URL)
	fmt.Fprintf(w, "connections: %d synced in %.1fs, %d connect errors, %d dropped, %d send errors\n",
		rep.Synced, rep.ConnectS, rep.ConnectErrors, rep.Dropped, rep.SendErrors)
	fmt.Fprintf(w, "edits: %d sent in %.1fs window, %d deliveries (%.0f/s), %d complete\n",
		rep.EditsSent, rep.MeasuredS, rep.Deliveries, rep.DeliveredPerS, rep.EditsComplete)
	fmt.Fprintf(w, "propagation (edit -> applied at every other client): p50 %s  p99 %s  max %s  (n=%d)\n",
		ms(rep.Latency.P50), ms(rep.Latency.P99), ms(rep.Latency.Max), rep.Latency.N)
	fmt.Fprintf(w, "per delivery (edit -> applied at one client):          p50 %s  p99 %s  max %s\n",
		ms(rep.PerDelivery.P50), ms(rep.PerDelivery.P99), ms(rep.PerDelivery.Max))
	fmt.Fprintf(w, "LOST: %d deliveries (%d edits) of %d owed after %.1fs drain; unexpected credits %d\n",
		rep.LostDeliveries, rep.LostEdits, rep.ExpectedAll, rep.DrainS, rep.UnexpectedCredit)
	fmt.Fprintf(w, "content: %d documents checked (one client each: every client:seq token exactly once), %d errors\n", rep.ContentChecked, rep.ContentErrors)
	fmt.Fprintf(w, "generator: %.2f CPU s in window = %.2f cores of %d (GOMAXPROCS %d); %.1f CPU s total; sched lag p99 %s max %s; RSS %d KiB\n",
		rep.GenCPUMeasureS, rep.GenCoresMeasure, runtime.NumCPU(), c.GOMAXPROCS, rep.GenCPUS, ms(rep.SchedLag.P99), ms(rep.SchedLag.Max), rep.GenMaxRSSKiB)
	fmt.Fprintf(w, "host: %.2f cores busy in window, %.2f of them neither generator nor server\n", rep.HostCoresMeasure, rep.OtherCoresMeasure)
	if s := rep.Server; s != nil {
		fmt.Fprintf(w, "server pid %d: RSS before %d KiB, idle %d KiB (%.1f KiB per idle conn over %d), load max %d KiB; CPU connect %.2fs, window %.2fs (%.2f cores), load %.2fs\n",
			s.PID, s.RSSBeforeKiB, s.RSSIdleKiB, s.RSSPerIdleConn, s.IdleConns, s.RSSLoadMaxKiB, s.CPUConnectS, s.CPUMeasureS, s.CoresMeasure, s.CPULoadS)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

// --- compare -------------------------------------------------------------------------------

type metric struct {
	name  string
	get   func(*report) float64
	unit  string
	lower bool // lower is better
	join  bool // a join-storm metric (only join-storm reports have it; they have no other)
}

// value is m of r, NaN when r is not of m's kind.
func (m metric) value(r *report) float64 {
	if (r.JoinStorm != nil) != m.join {
		return math.NaN()
	}
	return m.get(r)
}

var metrics = []metric{
	{"p50 latency", func(r *report) float64 { return r.Latency.P50 }, "ms", true, false},
	{"p99 latency", func(r *report) float64 { return r.Latency.P99 }, "ms", true, false},
	{"max latency", func(r *report) float64 { return r.Latency.Max }, "ms", true, false},
	{"delivered/s", func(r *report) float64 { return r.DeliveredPerS }, "/s", false, false},
	{"lost deliveries", func(r *report) float64 { return float64(r.LostDeliveries) }, "", true, false},
	{"connect errors+drops", func(r *report) float64 { return float64(r.ConnectErrors + r.Dropped) }, "", true, false},
	{"RSS before", srv(func(s *serverReport) float64 { return float64(s.RSSBeforeKiB) / 1024 }), "MiB", true, false},
	{"RSS idle (all connected)", srv(func(s *serverReport) float64 { return float64(s.RSSIdleKiB) / 1024 }), "MiB", true, false},
	{"RSS max under load", srv(func(s *serverReport) float64 { return float64(s.RSSLoadMaxKiB) / 1024 }), "MiB", true, false},
	{"RSS per idle conn", srv(func(s *serverReport) float64 { return s.RSSPerIdleConn }), "KiB", true, false},
	{"server CPU, window", srv(func(s *serverReport) float64 { return s.CPUMeasureS }), "s", true, false},
	{"server CPU, connect", srv(func(s *serverReport) float64 { return s.CPUConnectS }), "s", true, false},
	{"server CPU per delivery", nil, "µs", true, false},
	{"generator cores, window", func(r *report) float64 { return r.GenCoresMeasure }, "", true, false},
	{"other processes' cores, window", func(r *report) float64 { return r.OtherCoresMeasure }, "", true, false},
	{"join storm: server CPU", func(r *report) float64 { return r.JoinStorm.MedianCPUS }, "s", true, true},
	{"join storm: wall, first dial to last state", func(r *report) float64 { return r.JoinStorm.MedianWall }, "ms", true, true},
	{"join storm: join p99", func(r *report) float64 { return median(r.JoinStorm.JoinP99MS) }, "ms", true, true},
	{"join storm: state bytes", func(r *report) float64 { return float64(r.JoinStorm.StateBytes) }, "", true, true},
	{"join storm: failed joins", func(r *report) float64 { return float64(r.JoinStorm.Failed) }, "", true, true},
}

func init() {
	// Server CPU in the measured window per delivered update: what fan-out costs per frame.
	for i := range metrics {
		if metrics[i].name == "server CPU per delivery" {
			metrics[i].get = func(r *report) float64 {
				if r.Server == nil || r.Server.CPUMeasureS < 0 || r.Deliveries <= 0 {
					return math.NaN()
				}
				return r.Server.CPUMeasureS / float64(r.Deliveries) * 1e6
			}
		}
	}
}

func srv(f func(*serverReport) float64) func(*report) float64 {
	return func(r *report) float64 {
		if r.Server == nil {
			return math.NaN()
		}
		return f(r.Server)
	}
}

func median(v []float64) float64 {
	var xs []float64
	for _, x := range v {
		if !math.IsNaN(x) && x >= 0 {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// group is one server's runs.
type group struct {
	name string
	runs []*report
}

// runCompare implements `ysync-load compare NAME=a.json[,b.json...] NAME2=...`: a table with the
// median of every metric per server and the ratio of the first server to the second.
func runCompare(args []string, w io.Writer) error {
	var groups []group
	for _, a := range args {
		name, files, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("compare: want NAME=file.json[,file.json...], got %q", a)
		}
		g := group{name: name}
		for _, f := range strings.Split(files, ",") {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			var rep report
			if err := json.Unmarshal(b, &rep); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			g.runs = append(g.runs, &rep)
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return fmt.Errorf("compare: no inputs")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "metric\t"
	for _, g := range groups {
		head += fmt.Sprintf("%s (median of %d)\t", g.name, len(g.runs))
	}
	if len(groups) >= 2 {
		head += fmt.Sprintf("%s/%s\t", groups[0].name, groups[1].name)
	}
	fmt.Fprintln(tw, head)
	for _, m := range metrics {
		any := false
		for _, g := range groups {
			for _, r := range g.runs {
				if v := m.value(r); !math.IsNaN(v) && v >= 0 {
					any = true
				}
			}
		}
		if !any {
			continue // no report of this kind (join-storm rows in a fan-out table and so on)
		}
		line := m.name
		if m.unit != "" {
			line += " (" + m.unit + ")"
		}
		line += "\t"
		var meds []float64
		for _, g := range groups {
			var vs []float64
			for _, r := range g.runs {
				vs = append(vs, m.value(r))
			}
			med := median(vs)
			meds = append(meds, med)
			cell := fmtNum(med)
			if len(vs) > 1 {
				parts := make([]string, len(vs))
				for i, v := range vs {
					parts[i] = fmtNum(v)
				}
				cell += " [" + strings.Join(parts, " ") + "]"
			}
			line += cell + "\t"
		}
		if len(meds) >= 2 {
			ratio := math.NaN()
			if meds[1] != 0 {
				ratio = meds[0] / meds[1]
			}
			if meds[0] == 0 && meds[1] == 0 {
				line += "=\t"
			} else if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
				line += "-\t"
			} else {
				line += fmt.Sprintf("%.2f\t", ratio)
			}
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
