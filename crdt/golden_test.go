package crdt

// Golden tests: fixtures made by the reference yjs (scripts/gen-fixtures.mjs → testdata/golden/,
// format and tagging in testdata/golden/README.md), checked in pure Go (no Node needed):
// applying the fixture's updates (V1, and separately V2) gives its json and Text deltas, and the
// document then encodes to the fixture's bytes (state vector, state, diffs); merged updates,
// diffs of the merged update and state vectors from updates are yjs's bytes; decoding the state
// into a fresh document and encoding again gives the same bytes.
//
//	go test -run TestGolden ./crdt/

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// goldenRaw is a fixture file (format: the top comment of scripts/gen-fixtures.mjs).
type goldenRaw struct {
	oScenario
	Description    string  `json:"description"`
	GC             *bool   `json:"gc"`
	ApplyOrder     []int   `json:"applyOrder"`
	CleanupUpdates []oPair `json:"cleanupUpdates"`
}

// goldenFile is one fixture, decoded.
type goldenFile struct {
	Name string
	Raw  goldenRaw

	Updates   [][]byte
	UpdatesV2 [][]byte
	State     []byte
	StateV2   []byte
}

func goldenDir() string { return filepath.Join("..", "testdata", "golden") }

func loadGoldenFiles(tb testing.TB) []*goldenFile {
	files, err := filepath.Glob(filepath.Join(goldenDir(), "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	var out []*goldenFile
	for _, path := range files {
		g, err := readGolden(path)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		out = append(out, g)
	}
	return out
}

// loadGoldenFilesQuiet is loadGoldenFiles for fuzz seeding: unreadable fixtures are skipped.
func loadGoldenFilesQuiet() []*goldenFile {
	files, _ := filepath.Glob(filepath.Join(goldenDir(), "*.json"))
	sort.Strings(files)
	var out []*goldenFile
	for _, path := range files {
		if g, err := readGolden(path); err == nil {
			out = append(out, g)
		}
	}
	return out
}

func readGolden(path string) (g *goldenFile, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g = &goldenFile{Name: strings.TrimSuffix(filepath.Base(path), ".json")}
	if err := json.Unmarshal(data, &g.Raw); err != nil {
		return nil, err
	}
	for _, u := range g.Raw.Updates {
		g.Updates = append(g.Updates, unb64(u.V1))
		g.UpdatesV2 = append(g.UpdatesV2, unb64(u.V2))
	}
	g.State = unb64(g.Raw.State.V1)
	g.StateV2 = unb64(g.Raw.State.V2)
	return g, nil
}

func TestGolden(t *testing.T) {
	files := loadGoldenFiles(t)
	if len(files) == 0 {
		t.Skipf("no golden fixtures in %s (generate them with node scripts/gen-fixtures.mjs)", goldenDir())
	}
	for _, g := range files {
		t.Run(g.Name, func(t *testing.T) { checkGolden(t, g) })
	}
}

func checkGolden(t *testing.T, g *goldenFile) {
	sc := &g.Raw.oScenario
	disableGC := g.Raw.GC != nil && !*g.Raw.GC
	// Reuse the differential test's comparisons; a failure is reported with the fixture's name.
	r := &seedRun{sc: sc, disableGC: disableGC}
	report := func() {
		t.Helper()
		for _, f := range r.fails {
			t.Errorf("%s: (%s) %s: %s", g.Name, f.check, f.name, f.msg)
		}
		r.fails = nil
	}
	order := g.Raw.ApplyOrder
	if order == nil {
		order = make([]int, len(g.Updates))
		for i := range order {
			order[i] = i
		}
	}

	r.guard("apply-v1", func() {
		d, local := r.applySequence(g.Updates, order, false, "apply-v1")
		if d == nil {
			return
		}
		r.compareLocal("formatting-cleanup updates of the replay doc", local, g.Raw.CleanupUpdates)
		r.compareDoc("json/deltas after V1 updates", d, &sc.oSnapshot)
		r.compareBytes("EncodeStateVector", EncodeStateVector(d), unb64(sc.StateVector))
		r.compareEncode("EncodeStateAsUpdate", d, nil, sc.State.V1, false)
		r.compareEncode("EncodeStateAsUpdateV2", d, nil, sc.State.V2, true)
		// The diffs were made on the replay doc, which this doc reproduces.
		for i, df := range sc.Diffs {
			r.compareEncode(fmt.Sprintf("diff for sv %d (V1)", i), d, unb64(df.SV), df.V1, false)
			r.compareEncode(fmt.Sprintf("diff for sv %d (V2)", i), d, unb64(df.SV), df.V2, true)
		}
	})
	report()
	r.guard("apply-v2", func() {
		d, _ := r.applySequence(g.UpdatesV2, order, true, "apply-v2")
		if d == nil {
			return
		}
		r.compareDoc("json/deltas after V2 updates", d, &sc.oSnapshot)
		r.compareBytes("EncodeStateVector (V2 updates)", EncodeStateVector(d), unb64(sc.StateVector))
		r.compareEncode("EncodeStateAsUpdate (V2 updates)", d, nil, sc.State.V1, false)
		r.compareEncode("EncodeStateAsUpdateV2 (V2 updates)", d, nil, sc.State.V2, true)
	})
	report()
	r.guard("state", func() {
		// Decoding the state and encoding again gives identical bytes.
		d := NewDoc(DocOptions{ClientID: diffGoEditor, FormattingCleanup: true, DisableGC: disableGC})
		r.getRoots(d)
		if err := ApplyUpdate(d, g.State, nil); err != nil {
			r.failf("apply state", "%v", err)
			return
		}
		r.compareDoc("json/deltas of decoded state", d, &sc.oSnapshot)
		r.compareEncode("re-encoded state (V1)", d, nil, sc.State.V1, false)
		r.compareEncode("re-encoded state (V2)", d, nil, sc.State.V2, true)
		d2 := NewDoc(DocOptions{ClientID: diffGoEditor, DisableGC: disableGC})
		r.getRoots(d2)
		if err := ApplyUpdateV2(d2, g.StateV2, nil); err != nil {
			r.failf("apply V2 state", "%v", err)
			return
		}
		r.compareEncode("re-encoded V2 state (V2)", d2, nil, sc.State.V2, true)
		r.compareEncode("re-encoded V2 state (V1)", d2, nil, sc.State.V1, false)
	})
	report()
	r.guard("updates", func() {
		if sc.Merged.V1 == "" {
			return
		}
		r.checkUpdateFuncs(g.Updates, g.UpdatesV2)
	})
	report()
}
