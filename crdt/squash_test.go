package crdt

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// typingLog returns the updates of clients typing concurrently into one text, as a log holds
// them: mostly a character (ASCII, accented, emoji) at the cursor, sometimes a jump, a deletion,
// a word at once, a formatted insert or a map entry (updates fast does not take), with the
// typists seeing each other's updates only now and then.
func typingLog(t *testing.T, seed uint64, n, clients int) [][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 77))
	docs := make([]*Doc, clients)
	seen := make([]int, clients)
	cursor := make([]int, clients)
	var out [][]byte
	for i := range docs {
		docs[i] = NewDoc(DocOptions{ClientID: uint64(10 + i)})
		docs[i].ObserveUpdate(func(u []byte, origin any, _ *Transaction) {
			if origin == nil {
				out = append(out, bytes.Clone(u))
			}
		})
	}
	chars := []string{"a", "b", "c", "é", "ß", "😀", "中", " "}
	for len(out) < n {
		i := r.IntN(clients)
		d := docs[i]
		if r.IntN(6) == 0 {
			for _, u := range out[seen[i]:] {
				mustApply(t, d, u)
			}
			seen[i] = len(out)
		}
		txt := d.GetText("text")
		if r.IntN(25) == 0 || cursor[i] > txt.Len() {
			cursor[i] = r.IntN(txt.Len() + 1)
		}
		var err error
		switch op := r.IntN(40); {
		case op < 5 && cursor[i] > 0:
			k := min(cursor[i], 1+r.IntN(3))
			cursor[i] -= k
			err = txt.Delete(cursor[i], k)
		case op == 5:
			err = txt.Insert(cursor[i], "word", nil)
			cursor[i] += 4
		case op == 6:
			err = txt.Insert(cursor[i], "bold", map[string]any{"bold": true})
			cursor[i] += 4
		case op == 7:
			err = d.GetMap("m").Set(fmt.Sprint("k", r.IntN(3)), float64(len(out)))
		default:
			s := chars[r.IntN(len(chars))]
			err = txt.Insert(cursor[i], s, nil)
			cursor[i] += len([]rune(s)) + len([]rune(s))*bool2int(s == "😀")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out[:n]
}

func bool2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

// logVariants returns the log as written, in batches whose order within is shuffled (as
// concurrent appends store them), shuffled entirely, with duplicates, and with malformed rows.
func logVariants(seed uint64, log [][]byte) [][][]byte {
	r := rand.New(rand.NewPCG(seed, 78))
	batched := slices.Clone(log)
	for i := 0; i < len(batched); i += 16 {
		b := batched[i:min(i+16, len(batched))]
		r.Shuffle(len(b), func(x, y int) { b[x], b[y] = b[y], b[x] })
	}
	shuffled := slices.Clone(log)
	r.Shuffle(len(shuffled), func(x, y int) { shuffled[x], shuffled[y] = shuffled[y], shuffled[x] })
	dup := slices.Clone(log)
	for i := 0; i < len(log)/5; i++ {
		at := r.IntN(len(dup) + 1)
		dup = slices.Insert(dup, at, log[r.IntN(len(log))])
	}
	// Rows that do not parse. (A row mutated into another well-formed update contradicts the
	// log: two contents for one id. No replay is right then; ApplyUpdates keeps whichever it
	// integrates first, and which that is depends on how the rows were grouped.)
	bad := slices.Clone(log)
	for i := 0; i < 1+len(log)/20; {
		u := log[r.IntN(len(log))]
		var m []byte
		switch r.IntN(3) {
		case 0:
			m = u[:r.IntN(len(u))]
		case 1:
			m = slices.Clone(u)
			m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
		default:
			m = append(slices.Clone(u), byte(r.IntN(256)))
		}
		if _, _, err := readUpdate(m, false); err == nil {
			continue
		}
		bad = slices.Insert(bad, r.IntN(len(bad)+1), m)
		i++
	}
	return [][][]byte{log, batched, shuffled, dup, bad}
}

// applyBoth replays set with ApplyUpdates with and without fast, and one by one.
func applyBoth(t *testing.T, set [][]byte) (fast, general, oneByOne *Doc, skippedFast, skippedGeneral []SkippedUpdate) {
	t.Helper()
	var err error
	fast = NewDoc(DocOptions{ClientID: 1000})
	if skippedFast, err = applyUpdates(fast, set, nil, true); err != nil {
		t.Fatal(err)
	}
	general = NewDoc(DocOptions{ClientID: 1000})
	if skippedGeneral, err = applyUpdates(general, set, nil, false); err != nil {
		t.Fatal(err)
	}
	oneByOne = NewDoc(DocOptions{ClientID: 1000})
	for _, u := range set {
		_ = ApplyUpdate(oneByOne, u, nil) // malformed ones change nothing
	}
	return
}

// TestApplyUpdatesFastMatchesGeneral: replaying typing logs (in order, batch-shuffled,
// shuffled, with duplicates, with malformed rows) with the fast reader's runs gives the same
// skipped rows, the same structs (boundaries, contents, links) and the same encoded state as
// the general reader, and the content applying the rows one by one gives.
func TestApplyUpdatesFastMatchesGeneral(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 40; seed++ {
		log := typingLog(t, seed, 100+int(seed*13%400), 1+int(seed%4))
		for vi, set := range logVariants(seed, log) {
			f, g, one, sf, sg := applyBoth(t, set)
			if len(sf) != len(sg) {
				t.Fatalf("seed %d variant %d: skipped %v, general skipped %v", seed, vi, sf, sg)
			}
			for i := range sf {
				if sf[i].Index != sg[i].Index || sf[i].Err.Error() != sg[i].Err.Error() {
					t.Fatalf("seed %d variant %d: skipped %v, general skipped %v", seed, vi, sf[i], sg[i])
				}
			}
			if got, want := dumpStore(f), dumpStore(g); got != want {
				t.Fatalf("seed %d variant %d: structs differ from the general reader's:\n%s\nwant\n%s", seed, vi, got, want)
			}
			if got, want := stateOf(t, f), stateOf(t, g); !bytes.Equal(got, want) {
				t.Fatalf("seed %d variant %d: state differs from the general reader's", seed, vi)
			}
			if got, want := jsonOf(t, f.ToJSON()), jsonOf(t, one.ToJSON()); got != want {
				t.Fatalf("seed %d variant %d: content %s, one by one %s", seed, vi, got, want)
			}
			if got, want := f.GetText("text").ToDelta(), one.GetText("text").ToDelta(); jsonOf(t, got) != jsonOf(t, want) {
				t.Fatalf("seed %d variant %d: delta differs from one by one", seed, vi)
			}
		}
	}
}

// TestLogReaderFastTakesWhatGeneralReads: on typing updates and on mutations of them (cut,
// flipped bytes, extra bytes), fast either takes an update, and then adds exactly what general
// adds for it, or adds nothing. And it does take most of a typing log.
func TestLogReaderFastTakesWhatGeneralReads(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	taken, total := 0, 0
	for seed := uint64(0); seed < 10; seed++ {
		log := typingLog(t, seed, 300, 1+int(seed%3))
		for _, u := range log {
			inputs := [][]byte{u, u[:r.IntN(len(u))], append(slices.Clone(u), 0, 1)}
			for k := 0; k < 4; k++ {
				m := slices.Clone(u)
				m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
				inputs = append(inputs, m)
			}
			for i, in := range inputs {
				fr, gr := newLogReader(), newLogReader()
				ok := fr.fast(in)
				if i == 0 {
					total++
					if ok {
						taken++
					}
				}
				if !ok {
					if len(fr.refs) != 0 || !fr.ds.empty() {
						t.Fatalf("fast refused %x but added to the reader", in)
					}
					continue
				}
				if err := gr.general(in); err != nil {
					t.Fatalf("fast took %x, which general refuses: %v", in, err)
				}
				if got, want := dumpReader(fr), dumpReader(gr); got != want {
					t.Fatalf("fast read %x as\n%s\ngeneral as\n%s", in, got, want)
				}
			}
		}
	}
	if taken*10 < total*7 {
		t.Fatalf("fast took %d of %d typing updates, want most", taken, total)
	}
}

// dumpReader describes what a reader collected.
func dumpReader(r *logReader) string {
	refs, ds := r.finish()
	d := &Doc{store: &structStore{clients: refs}}
	var b bytes.Buffer
	b.WriteString(dumpStore(d))
	for _, client := range sortedClientsDesc(ds.clients) {
		fmt.Fprintf(&b, "del %d %v\n", client, ds.clients[client])
	}
	for _, list := range refs {
		for _, st := range list {
			if it, ok := st.(*Item); ok {
				fmt.Fprintf(&b, "%v %v %v %v %v %v %v\n", it.ID, it.origin, it.hasOrigin(), it.rightOrigin, it.hasRightOrigin(), it.info, it.ref)
			}
		}
	}
	return b.String()
}
