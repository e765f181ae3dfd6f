package crdt

// Trace benchmarks: real editing histories (shared/traces/*.json.gz, the editing-traces data set)
// replayed against a Text, with the same steps scripts/bench-yjs.mjs times for the reference yjs.
// scripts/bench-compare.sh runs both and prints the comparison table.
//
//	go test -run '^$' -bench BenchmarkTrace ./crdt/
//
// $YSYNC_TRACES_DIR overrides where the traces are read from (default: ../shared/traces relative
// to the repository root). Traces with concurrent history (txns with "parents") are skipped.

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// tracePatch is one patch of a trace, with positions already in UTF-16 code units (what the Text
// API counts), converted from the trace's code-point positions.
type tracePatch struct {
	pos, del int
	ins      string
}

type editTrace struct {
	name       string
	endContent string
	start      string
	txns       [][]tracePatch
	ops        int
}

// rawTrace is the on-disk format: {startContent, endContent, txns: [{patches: [[pos, del, ins]]}]}.
type rawTrace struct {
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	Txns         []struct {
		Parents json.RawMessage   `json:"parents"`
		Patches []json.RawMessage `json:"patches"`
	} `json:"txns"`
}

func tracesDir() string {
	if d := os.Getenv("YSYNC_TRACES_DIR"); d != "" {
		return d
	}
	// The test runs in the package directory (crdt/); the repository root is one up.
	return filepath.Join("..", "..", "shared", "traces")
}

// loadTrace reads a sequential trace; ok is false for concurrent traces (txns with parents).
func loadTrace(path string) (tr *editTrace, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, false, err
	}
	var raw rawTrace
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	tr = &editTrace{
		name:       strings.TrimSuffix(filepath.Base(path), ".json.gz"),
		start:      raw.StartContent,
		endContent: raw.EndContent,
	}
	// Astral characters are one code point but two UTF-16 units: keep the sorted code-point
	// indexes of the astral characters in the simulated document to convert positions.
	var astral []int
	cp := 0
	for _, r := range raw.StartContent {
		if r > 0xFFFF {
			astral = append(astral, cp)
		}
		cp++
	}
	for _, txn := range raw.Txns {
		if len(txn.Parents) > 0 && string(txn.Parents) != "null" {
			return nil, false, nil
		}
		patches := make([]tracePatch, 0, len(txn.Patches))
		for _, rp := range txn.Patches {
			var p [3]any
			if err := json.Unmarshal(rp, &p); err != nil {
				return nil, false, fmt.Errorf("%s: patch %s: %w", path, rp, err)
			}
			pos, _ := p[0].(float64)
			del, _ := p[1].(float64)
			ins, _ := p[2].(string)
			tp := tracePatch{pos: int(pos), del: int(del), ins: ins}
			if len(astral) > 0 || hasAstral(ins) {
				tp, astral = convertPatch(tp, astral)
			}
			patches = append(patches, tp)
			tr.ops++
		}
		tr.txns = append(tr.txns, patches)
	}
	return tr, true, nil
}

func hasAstral(s string) bool {
	for _, r := range s {
		if r > 0xFFFF {
			return true
		}
	}
	return false
}

// convertPatch turns a code-point patch into a UTF-16 one and updates the astral index list.
func convertPatch(p tracePatch, astral []int) (tracePatch, []int) {
	below := sort.SearchInts(astral, p.pos)
	endDel := sort.SearchInts(astral, p.pos+p.del)
	out := tracePatch{pos: p.pos + below, del: p.del + (endDel - below), ins: p.ins}
	// Remove deleted astral positions, shift the rest.
	rest := append([]int(nil), astral[endDel:]...)
	astral = astral[:below]
	var added []int
	n := 0
	for _, r := range p.ins {
		if r > 0xFFFF {
			added = append(added, p.pos+n)
		}
		n++
	}
	astral = append(astral, added...)
	for _, a := range rest {
		astral = append(astral, a-p.del+n)
	}
	return out, astral
}

// replayLocal applies the trace to a fresh doc, one transaction per txn, keeping each
// transaction's V1 update when keep is set.
func replayLocal(tb testing.TB, tr *editTrace, keep bool) (*Doc, [][]byte) {
	doc := NewDoc(DocOptions{ClientID: benchClientID})
	text := doc.GetText("text")
	var updates [][]byte
	if keep {
		updates = make([][]byte, 0, len(tr.txns)+1)
		doc.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { updates = append(updates, u) })
	}
	var err error
	if tr.start != "" {
		err = text.Insert(0, tr.start, nil)
	}
	for _, txn := range tr.txns {
		doc.Transact(func(tx *Transaction) {
			for _, p := range txn {
				if p.del > 0 {
					if e := text.Delete(p.pos, p.del); e != nil && err == nil {
						err = e
					}
				}
				if p.ins != "" {
					if e := text.Insert(p.pos, p.ins, nil); e != nil && err == nil {
						err = e
					}
				}
			}
		}, nil)
		if err != nil {
			tb.Fatalf("%s: %v", tr.name, err)
		}
	}
	return doc, updates
}

// heapDelta runs make once and returns the live heap it added (after a full GC), with its result.
func heapDelta[T any](make func() T) (float64, T) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	v := make()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(v)
	d := float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
	if d < 0 {
		d = 0
	}
	return d, v
}

func BenchmarkTrace(b *testing.B) {
	dir := tracesDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	if len(files) == 0 {
		b.Skipf("no traces in %s (set YSYNC_TRACES_DIR)", dir)
	}
	sort.Strings(files)
	for _, path := range files {
		tr, ok, err := loadTrace(path)
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			continue // concurrent trace: no sequential replay
		}
		b.Run(tr.name, func(b *testing.B) { benchTrace(b, tr) })
	}
}

func benchTrace(b *testing.B, tr *editTrace) {
	// Reference run: checks the result once and gives the inputs of the later steps.
	doc, updates := replayLocal(b, tr, true)
	if got := doc.GetText("text").String(); got != tr.endContent {
		b.Fatalf("%s: final text differs from endContent (got %d bytes, want %d; first difference at byte %d)",
			tr.name, len(got), len(tr.endContent), firstDiff(got, tr.endContent))
	}
	state, err := EncodeStateAsUpdate(doc, nil)
	if err != nil {
		b.Fatal(err)
	}
	stateV2, err := EncodeStateAsUpdateV2(doc, nil)
	if err != nil {
		b.Fatal(err)
	}
	wantLen := utf16Len(tr.endContent)

	b.Run("apply-local", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			replayLocal(b, tr, true)
		}
		b.StopTimer()
		// Retained: the doc and the kept updates (as bench-yjs.mjs measures).
		h, _ := heapDelta(func() any { d, us := replayLocal(b, tr, true); return []any{d, us} })
		b.ReportMetric(h, "heap-bytes")
		b.ReportMetric(float64(tr.ops), "patches")
	})
	b.Run("encode", func(b *testing.B) {
		// Both encodings per op, as bench-yjs.mjs times them.
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeStateAsUpdate(doc, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := EncodeStateAsUpdateV2(doc, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		h, _ := heapDelta(func() [2][]byte {
			u1, _ := EncodeStateAsUpdate(doc, nil)
			u2, _ := EncodeStateAsUpdateV2(doc, nil)
			return [2][]byte{u1, u2}
		})
		b.ReportMetric(h, "heap-bytes")
		b.ReportMetric(float64(len(state)), "v1-bytes")
		b.ReportMetric(float64(len(stateV2)), "v2-bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		decode := func() *Doc {
			d := NewDoc(DocOptions{ClientID: 2})
			if err := ApplyUpdate(d, state, nil); err != nil {
				b.Fatal(err)
			}
			return d
		}
		for b.Loop() {
			decode()
		}
		b.StopTimer()
		h, d := heapDelta(decode)
		if n := d.GetText("text").Len(); n != wantLen {
			b.Fatalf("decoded text has %d units, want %d", n, wantLen)
		}
		b.ReportMetric(h, "heap-bytes")
	})
	b.Run("remote-updates", func(b *testing.B) {
		b.ReportAllocs()
		apply := func() *Doc {
			d := NewDoc(DocOptions{ClientID: 2})
			for _, u := range updates {
				if err := ApplyUpdate(d, u, nil); err != nil {
					b.Fatal(err)
				}
			}
			return d
		}
		for b.Loop() {
			apply()
		}
		b.StopTimer()
		h, d := heapDelta(apply)
		if n := d.GetText("text").Len(); n != wantLen {
			b.Fatalf("text from updates has %d units, want %d", n, wantLen)
		}
		b.ReportMetric(h, "heap-bytes")
		b.ReportMetric(float64(len(updates)), "updates")
	})
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// benchClientID is the client id the trace is replayed under, here and in scripts/bench-yjs.mjs.
// It is a typical random 32-bit Yjs client id (5 bytes as a var-uint), so V1 sizes compare with
// what real clients produce.
const benchClientID = 2946758011
