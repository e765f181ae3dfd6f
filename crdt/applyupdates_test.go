package crdt

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// mergeStructStreamsSorted is the merge loop as it was before the cursor heap, kept as the
// reference: it re-sorts every cursor (stably, like Yjs's JavaScript sort) before each step.
func mergeStructStreamsSorted(streams [][]abstractStruct, w *lazyWriter) {
	cursors := make([]*structCursor, 0, len(streams))
	for _, s := range streams {
		cursors = append(cursors, &structCursor{structs: slices.DeleteFunc(slices.Clone(s), isSkip)})
	}
	var currWrite abstractStruct
	for {
		cursors = slices.DeleteFunc(cursors, func(c *structCursor) bool { return c.curr() == nil })
		slices.SortStableFunc(cursors, func(a, b *structCursor) int {
			ai, bi := a.curr().id(), b.curr().id()
			if ai.Client == bi.Client {
				return cmp.Compare(ai.Clock, bi.Clock)
			}
			return cmp.Compare(bi.Client, ai.Client)
		})
		if len(cursors) == 0 {
			break
		}
		mergeStep(cursors[0], &currWrite, w)
	}
	if currWrite != nil {
		w.write(currWrite, 0)
	}
}

// mergeWith merges updates like mergeUpdates, with the given struct merge.
func mergeWith(tb testing.TB, merge func([][]abstractStruct, *lazyWriter), updates [][]byte, v2 bool) []byte {
	tb.Helper()
	streams := make([][]abstractStruct, len(updates))
	dss := make([]*DeleteSet, len(updates))
	for i, u := range updates {
		p, err := parseUpdate(u, v2)
		if err != nil {
			tb.Fatal(err)
		}
		streams[i], dss[i] = p.structs, p.ds
	}
	var w lazyWriter
	merge(streams, &w)
	enc := newUpdateEncoder(v2)
	w.finish(enc)
	mergeDeleteSets(dss...).write(enc)
	return enc.Bytes()
}

// randomUpdateSets returns sets of updates to merge: the updates of random concurrent edits in
// their order, shuffled, with duplicates, a random subset (gaps, so Skips), and merges of
// overlapping parts mixed with plain updates.
func randomUpdateSets(t *testing.T, seed uint64) (v1Sets, v2Sets [][][]byte) {
	v1, v2, _ := randomEdits(t, seed, 1+int(seed%4), 30+int(seed%50))
	r := rand.New(rand.NewPCG(seed, 2))
	for _, all := range []struct {
		updates [][]byte
		merge   func([][]byte) ([]byte, error)
		out     *[][][]byte
	}{{v1, MergeUpdates, &v1Sets}, {v2, MergeUpdatesV2, &v2Sets}} {
		us := all.updates
		shuffled := slices.Clone(us)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		dup := append(slices.Clone(us), us[:len(us)/2]...)
		r.Shuffle(len(dup), func(i, j int) { dup[i], dup[j] = dup[j], dup[i] })
		var subset [][]byte
		for _, u := range us {
			if r.IntN(2) == 0 {
				subset = append(subset, u)
			}
		}
		a, b := r.IntN(len(us)), r.IntN(len(us))
		lo, hi := min(a, b), max(a, b)+1
		m1, err := all.merge(us[:hi])
		if err != nil {
			t.Fatal(err)
		}
		m2, err := all.merge(us[lo:])
		if err != nil {
			t.Fatal(err)
		}
		mixed := append([][]byte{m2}, us[lo:hi]...)
		mixed = append(mixed, m1)
		*all.out = append(*all.out, us, shuffled, dup, subset, mixed)
	}
	return v1Sets, v2Sets
}

// TestMergeUpdatesHeapMatchesSort: the heap-ordered merge writes the same bytes as the sorted
// reference (which follows Yjs line by line) on random update sets, in both formats.
func TestMergeUpdatesHeapMatchesSort(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 60; seed++ {
		v1Sets, v2Sets := randomUpdateSets(t, seed)
		for _, f := range []struct {
			sets [][][]byte
			v2   bool
		}{{v1Sets, false}, {v2Sets, true}} {
			for i, set := range f.sets {
				want := mergeWith(t, mergeStructStreamsSorted, set, f.v2)
				got := mergeWith(t, mergeStructStreams, set, f.v2)
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d set %d v2=%v: heap merge differs from the sorted reference", seed, i, f.v2)
				}
			}
		}
	}
}

// applyOneByOne applies updates with ApplyUpdate to a fresh document.
func applyOneByOne(t *testing.T, updates [][]byte) *Doc {
	t.Helper()
	d := NewDoc(DocOptions{ClientID: 1000})
	for _, u := range updates {
		mustApply(t, d, u)
	}
	return d
}

// TestApplyUpdatesEquivalence: ApplyUpdates gives the document applying the updates one by one
// gives, in order and shuffled (so that some wait as pending structs), and its observers see one
// update that rebuilds it.
func TestApplyUpdatesEquivalence(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 30; seed++ {
		v1Sets, _ := randomUpdateSets(t, seed)
		for i, set := range v1Sets {
			want := applyOneByOne(t, set)
			d := NewDoc(DocOptions{ClientID: 1000})
			var seen [][]byte
			d.ObserveUpdate(func(u []byte, _ any, _ *Transaction) { seen = append(seen, bytes.Clone(u)) })
			skipped, err := ApplyUpdates(d, set, "load")
			if err != nil || len(skipped) != 0 {
				t.Fatalf("seed %d set %d: ApplyUpdates: %v, skipped %v", seed, i, err, skipped)
			}
			if got, w := jsonOf(t, d.ToJSON()), jsonOf(t, want.ToJSON()); got != w {
				t.Fatalf("seed %d set %d: content %s, want %s", seed, i, got, w)
			}
			if got, w := stateOf(t, d), stateOf(t, want); !bytes.Equal(got, w) {
				// Struct boundaries may differ; the content and state must not.
				if !sameState(t, got, w) {
					t.Fatalf("seed %d set %d: encoded state differs from one-by-one", seed, i)
				}
			}
			if len(seen) > 1 {
				t.Fatalf("seed %d set %d: observers saw %d updates, want at most 1", seed, i, len(seen))
			}
			if len(seen) == 1 {
				if got, w := jsonOf(t, applyOneByOne(t, seen).ToJSON()), jsonOf(t, want.ToJSON()); got != w {
					t.Fatalf("seed %d set %d: the observed update rebuilds %s, want %s", seed, i, got, w)
				}
			}
		}
	}
}

// sameState reports whether two encoded states hold the same document: each applied to a
// document holding the other changes nothing.
func sameState(t *testing.T, a, b []byte) bool {
	t.Helper()
	da, db := applyOneByOne(t, [][]byte{a}), applyOneByOne(t, [][]byte{b})
	before := stateOf(t, da)
	mustApply(t, da, b)
	mustApply(t, db, a)
	return bytes.Equal(stateOf(t, da), before) && bytes.Equal(stateOf(t, db), stateOf(t, applyOneByOne(t, [][]byte{b})))
}

// TestApplyUpdatesSkipsMalformed: a malformed update in the middle is reported and left out;
// the others apply as if it were not there.
func TestApplyUpdatesSkipsMalformed(t *testing.T) {
	t.Parallel()
	v1, _, _ := randomEdits(t, 11, 3, 40)
	bad := [][]byte{{0xff, 0xff, 0xff}, v1[3][:len(v1[3])/2]}
	withBad := slices.Clone(v1)
	withBad = slices.Insert(withBad, 5, bad[0])
	withBad = slices.Insert(withBad, 9, bad[1])
	d := NewDoc(DocOptions{ClientID: 1000})
	skipped, err := ApplyUpdates(d, withBad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 2 || skipped[0].Index != 5 || skipped[1].Index != 9 {
		t.Fatalf("skipped %v, want indexes 5 and 9", skipped)
	}
	for _, s := range skipped {
		if !errors.Is(s.Err, ErrMalformedUpdate) {
			t.Fatalf("skipped %d: %v, want ErrMalformedUpdate", s.Index, s.Err)
		}
	}
	if got, want := jsonOf(t, d.ToJSON()), jsonOf(t, applyOneByOne(t, v1).ToJSON()); got != want {
		t.Fatalf("content %s, want %s", got, want)
	}
}

// typingUpdates returns n small updates of clients typing into one text (mostly at their
// cursor, sometimes elsewhere, with some deletions), as a document's log holds them when it was
// never compacted.
func typingUpdates(tb testing.TB, n, clients int) [][]byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(clients)))
	docs := make([]*Doc, clients)
	seen := make([]int, clients) // how much of out each client has applied
	cursor := make([]int, clients)
	var out [][]byte
	for i := range docs {
		docs[i] = NewDoc(DocOptions{ClientID: uint64(100 + i)})
		docs[i].ObserveUpdate(func(u []byte, origin any, _ *Transaction) {
			if origin == nil {
				out = append(out, bytes.Clone(u))
			}
		})
	}
	for len(out) < n {
		i := r.IntN(clients)
		d := docs[i]
		if r.IntN(4) == 0 {
			// The typist sees what the others wrote.
			for _, u := range out[seen[i]:] {
				if err := ApplyUpdate(d, u, "sync"); err != nil {
					tb.Fatal(err)
				}
			}
			seen[i] = len(out)
		}
		txt := d.GetText("text")
		if r.IntN(20) == 0 || cursor[i] > txt.Len() {
			cursor[i] = r.IntN(txt.Len() + 1)
		}
		var err error
		if cursor[i] > 0 && r.IntN(8) == 0 {
			cursor[i]--
			err = txt.Delete(cursor[i], 1)
		} else {
			err = txt.Insert(cursor[i], string(rune('a'+r.IntN(26))), nil)
			cursor[i]++
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out[:n]
}

func BenchmarkMergeUpdates(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		updates := typingUpdates(b, n, 3)
		b.Run(fmt.Sprintf("%dk/heap", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := MergeUpdates(updates); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dk/sorted-reference", n/1000), func(b *testing.B) {
			for b.Loop() {
				mergeWith(b, mergeStructStreamsSorted, updates, false)
			}
		})
	}
}

// BenchmarkApplyUpdates compares ways to replay a log of small updates into a fresh document:
// one ApplyUpdate per update (one transaction each), ApplyUpdates (one transaction), merging
// first then applying the merged update, and, for reference, applying the merged state.
func BenchmarkApplyUpdates(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		updates := typingUpdates(b, n, 3)
		merged, err := MergeUpdates(updates)
		if err != nil {
			b.Fatal(err)
		}
		ref := NewDoc(DocOptions{})
		if _, err := ApplyUpdates(ref, updates, nil); err != nil {
			b.Fatal(err)
		}
		state, err := EncodeStateAsUpdate(ref, nil)
		if err != nil {
			b.Fatal(err)
		}
		name := fmt.Sprintf("%dk", n/1000)
		b.Run(name+"/one-by-one", func(b *testing.B) {
			for b.Loop() {
				d := NewDoc(DocOptions{})
				for _, u := range updates {
					if err := ApplyUpdate(d, u, nil); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(name+"/one-transaction", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ApplyUpdates(NewDoc(DocOptions{}), updates, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/merge-then-apply", func(b *testing.B) {
			for b.Loop() {
				m, err := MergeUpdates(updates)
				if err != nil {
					b.Fatal(err)
				}
				if err := ApplyUpdate(NewDoc(DocOptions{}), m, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/state", func(b *testing.B) {
			b.ReportMetric(float64(len(merged)), "merged-bytes")
			b.ReportMetric(float64(len(state)), "state-bytes")
			for b.Loop() {
				if err := ApplyUpdate(NewDoc(DocOptions{}), state, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
