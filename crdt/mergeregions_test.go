package crdt

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// mergeRegionsFromRight is the reference for mergeRegions: tryToMergeWithLefts on every index
// of the regions, from the right, as cleanupTransaction and tryMergeDeleteSet did before (and as
// Yjs does).
func mergeRegionsFromRight(store *structStore, client uint64, regions [][2]int) {
	// Indexes refer to the list on entry: take the clocks of the regions' ends first (merges
	// move indexes, not clocks), as tryMergeDeleteSet found its structs by clock.
	structs := store.clients[client]
	type span struct{ lo, hi int }
	var spans []span
	for _, rg := range regions {
		lo, hi := max(rg[0], 1), min(rg[1], len(structs)-1)
		if lo <= hi {
			spans = append(spans, span{structs[lo].id().Clock, structs[hi].id().Clock})
		}
	}
	for k := len(spans) - 1; k >= 0; k-- {
		si := findIndexSS(store.clients[client], spans[k].hi)
		for si > 0 && store.clients[client][si].id().Clock >= spans[k].lo {
			si -= 1 + tryToMergeWithLefts(store, client, si)
		}
	}
}

// dumpStore lists every struct of d: the struct boundaries, not only the content, must match.
func dumpStore(d *Doc) string {
	var b strings.Builder
	for _, client := range sortedClientsDesc(d.store.clients) {
		for _, st := range d.store.clients[client] {
			switch s := st.(type) {
			case *GC:
				fmt.Fprintf(&b, "gc %d:%d+%d\n", client, s.ID.Clock, s.Length)
			case *Item:
				fmt.Fprintf(&b, "item %d:%d+%d del=%v keep=%v left=%v right=%v %T", client, s.ID.Clock, s.Length, s.Deleted(), s.keep(), s.Left != nil, s.Right != nil, s.Content)
				if c, ok := s.Content.(*ContentString); ok {
					// The text, not how lone surrogate halves are kept (a half alone is
					// the same as a head or as a tail).
					fmt.Fprintf(&b, " %q %d", c.Text(), c.n)
				}
				b.WriteByte('\n')
			default:
				fmt.Fprintf(&b, "%T %v\n", st, st.id())
			}
		}
	}
	return b.String()
}

// mergeScenario runs random edits (local inserts and deletes, syncs) and replays of their updates
// (one transaction for all, shuffled, and one by one) and returns everything observable: the
// updates emitted, and every document's structs and encoded state.
func mergeScenario(t *testing.T, seed uint64) string {
	var out strings.Builder
	v1, _, final := randomEdits(t, seed, 1+int(seed%3), 40+int(seed%60))
	typing := typingUpdates(t, 200+int(seed%300), 1+int(seed%3))
	r := rand.New(rand.NewPCG(seed, 7))
	for _, updates := range [][][]byte{v1, typing} {
		for _, u := range updates {
			fmt.Fprintf(&out, "%x\n", u)
		}
		shuffled := append([][]byte(nil), updates...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, set := range [][][]byte{updates, shuffled} {
			d := NewDoc(DocOptions{ClientID: 1000})
			if _, err := ApplyUpdates(d, set, nil); err != nil {
				t.Fatal(err)
			}
			// Local deletes and inserts on the loaded document (tryMergeDeleteSet on a long list).
			txt := d.GetText("t")
			for i := 0; i < 30 && txt.Len() > 0; i++ {
				at := r.IntN(txt.Len())
				if i%3 == 0 {
					if err := txt.Insert(at, "xy", nil); err != nil {
						t.Fatal(err)
					}
				} else if err := txt.Delete(at, min(1+r.IntN(5), txt.Len()-at)); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Fprintf(&out, "%s%x\n", dumpStore(d), stateOf(t, d))
		}
		one := applyOneByOne(t, updates)
		fmt.Fprintf(&out, "%s%x\n", dumpStore(one), stateOf(t, one))
	}
	fmt.Fprintf(&out, "%s%x\n", dumpStore(final), stateOf(t, final))
	return out.String()
}

// TestMergeRegionsMatchesFromRight: merging in one pass from the left leaves every document the
// same structs (boundaries, contents, links) and encoded state, and makes every transaction emit
// the same update bytes, as merging from the right with tryToMergeWithLefts.
func TestMergeRegionsMatchesFromRight(t *testing.T) {
	defer func() { mergeInRegions = mergeRegions }()
	for seed := uint64(0); seed < 40; seed++ {
		mergeInRegions = mergeRegionsFromRight
		want := mergeScenario(t, seed)
		mergeInRegions = mergeRegions
		got := mergeScenario(t, seed)
		if got != want {
			gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
			for i := range min(len(gl), len(wl)) {
				if gl[i] != wl[i] {
					t.Fatalf("seed %d: line %d differs:\n got %.300s\nwant %.300s", seed, i, gl[i], wl[i])
				}
			}
			t.Fatalf("seed %d: %d lines, want %d", seed, len(gl), len(wl))
		}
		if !bytes.Contains([]byte(want), []byte("item")) {
			t.Fatal("the scenario made no structs")
		}
	}
}

// TestMergeRegionsDirect: random lists of mergeable and unmergeable GC runs and random regions
// (overlapping, empty, past the end) merge alike both ways.
func TestMergeRegionsDirect(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 2000; iter++ {
		build := func() *structStore {
			s := newStructStore()
			rr := rand.New(rand.NewPCG(uint64(iter), 9))
			clock := 0
			for i := 0; i < 1+rr.IntN(30); i++ {
				n := 1 + rr.IntN(3)
				var st abstractStruct = &GC{ID: ID{1, clock}, Length: n}
				if rr.IntN(3) == 0 {
					// An item between GCs: never merges with them.
					st = &Item{ID: ID{1, clock}, Length: n, Content: &ContentDeleted{N: n}}
					st.(*Item).markDeleted()
					st.(*Item).info &^= infoDeleted
				}
				s.clients[1] = append(s.clients[1], st)
				clock += n
			}
			return s
		}
		a, b := build(), build()
		var regions [][2]int
		lo := 0
		for k := 0; k < r.IntN(5); k++ {
			lo += r.IntN(4)
			regions = append(regions, [2]int{lo, lo + r.IntN(5)})
			lo += r.IntN(2) // sometimes the same start again
		}
		mergeRegions(a, 1, regions)
		mergeRegionsFromRight(b, 1, regions)
		da, db := &Doc{store: a}, &Doc{store: b}
		if got, want := dumpStore(da), dumpStore(db); got != want {
			t.Fatalf("iter %d regions %v:\n got %s\nwant %s", iter, regions, got, want)
		}
	}
}
