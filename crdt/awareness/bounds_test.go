package awareness

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/encoding"
	"github.com/ysync/ysync/crdt/internal/allocbound"
)

// manyIDs is an update of n null entries for distinct clients: the frame that once left 3.5 GB
// behind (1.5M ids in 15 MB).
func manyIDs(n int, state string) []byte {
	e := encoding.NewEncoder()
	e.WriteVarUint(uint64(n))
	for i := 0; i < n; i++ {
		e.WriteVarUint(uint64(1_000_000 + i))
		e.WriteVarUint(1)
		e.WriteVarString(state)
	}
	return e.Bytes()
}

func TestForgetDropsRemovedClientsAfterTimeout(t *testing.T) {
	a := New()
	mustApply(t, a, enc(ent{1, 1, `{"a":1}`}, ent{2, 3, `null`}), t0)
	if a.Known() != 2 || a.Len() != 1 {
		t.Fatalf("known %d len %d", a.Known(), a.Len())
	}
	a.Remove(ids(1), t0.Add(10*time.Second))
	if n := a.Forget(t0.Add(OutdatedTimeout - time.Nanosecond)); n != 0 {
		t.Fatalf("forgot %d before the timeout", n)
	}
	// Client 2 (only announced null at t0) goes first; client 1 was removed 10 s later.
	if n := a.Forget(t0.Add(OutdatedTimeout)); n != 1 || a.Known() != 1 {
		t.Fatalf("forgot %d, known %d", n, a.Known())
	}
	if _, _, ok := a.Get(2); ok {
		t.Fatal("client 2 still known")
	}
	// Until forgotten, a replay of client 1's old clock stays rejected...
	if ch := mustApply(t, a, enc(ent{1, 1, `{"a":1}`}), t0.Add(20*time.Second)); !ch.Empty() {
		t.Fatalf("replay accepted before forgetting: %+v", ch)
	}
	if n := a.Forget(t0.Add(10*time.Second + OutdatedTimeout)); n != 1 || a.Known() != 0 {
		t.Fatalf("forgot %d, known %d", n, a.Known())
	}
	// ...and once forgotten any clock is new again.
	if ch := mustApply(t, a, enc(ent{1, 1, `{"a":1}`}), t0.Add(time.Minute)); len(ch.Added) != 1 {
		t.Fatalf("after forgetting: %+v", ch)
	}
	// A client with a state is never forgotten, however old.
	if n := a.Forget(t0.Add(time.Hour)); n != 0 || a.Len() != 1 {
		t.Fatalf("forgot %d of a live state", n)
	}
	checkInvariants(t, a)
}

func TestManyRemovedIDsForgotten(t *testing.T) {
	a := New()
	mustApply(t, a, manyIDs(100_000, "null"), t0)
	if a.Known() != 100_000 || a.Len() != 0 {
		t.Fatalf("known %d len %d", a.Known(), a.Len())
	}
	a.Forget(t0.Add(OutdatedTimeout))
	if a.Known() != 0 {
		t.Fatalf("known %d after forgetting", a.Known())
	}
}

func TestVersionChangesWithEveryChange(t *testing.T) {
	a := New()
	v := a.Version()
	step := func(what string, fn func(), wantChange bool) {
		t.Helper()
		fn()
		if changed := a.Version() != v; changed != wantChange {
			t.Fatalf("%s: version changed %v, want %v", what, changed, wantChange)
		}
		v = a.Version()
	}
	step("add", func() { mustApply(t, a, enc(ent{1, 1, `{"a":1}`}), t0) }, true)
	step("renew", func() { mustApply(t, a, enc(ent{1, 2, `{"a":1}`}), t0) }, true)
	step("stale replay", func() { mustApply(t, a, enc(ent{1, 2, `{"a":2}`}), t0) }, false)
	step("encode", func() { a.EncodeAll() }, false)
	step("remove", func() { a.Remove(ids(1), t0) }, true)
	step("remove again", func() { a.Remove(ids(1), t0) }, false)
	step("forget", func() { a.Forget(t0.Add(time.Hour)) }, false) // no state, so EncodeAll is the same
}

func TestApplyFuncSkipsRefusedEntries(t *testing.T) {
	a := New()
	var seen []uint64
	ch, err := a.ApplyFunc(enc(ent{1, 1, `{"a":1}`}, ent{2, 1, `{"big":"xxxxxxxx"}`}, ent{3, 1, `null`}), t0,
		func(e Entry) bool {
			seen = append(seen, e.ClientID)
			return len(e.State) < 10
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 {
		t.Fatalf("admit saw %v", seen)
	}
	if len(ch.Added) != 1 || ch.Added[0] != 1 || a.Known() != 2 {
		t.Fatalf("change %+v known %d", ch, a.Known())
	}
	if _, _, ok := a.Get(2); ok {
		t.Fatal("refused entry was stored")
	}
	// admit is not asked about entries the clock rule rejects anyway.
	seen = nil
	if _, err := a.ApplyFunc(enc(ent{1, 1, `{"a":2}`}), t0, func(Entry) bool { seen = append(seen, 1); return true }); err != nil || len(seen) != 0 {
		t.Fatalf("admit called for a stale entry: %v %v", seen, err)
	}
	// A malformed update never reaches admit.
	if _, err := a.ApplyFunc([]byte{2, 1, 1, 1, '0', 2}, t0, func(Entry) bool { t.Fatal("admit called"); return true }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v", err)
	}
	checkInvariants(t, a)
}

func TestValidateAllocatesNothing(t *testing.T) {
	valid := [][]byte{manyIDs(10_000, "null"), manyIDs(10_000, `{"user":{"name":"x"}}`)}
	for i, in := range valid {
		if n := allocbound.Bytes(func() { _ = Validate(in) }); n > racePerByte*uint64(len(in))+4<<10 {
			t.Errorf("valid input %d: Validate of %d bytes allocated %d bytes", i, len(in), n)
		}
		if racePerByte == 0 {
			if n := testing.AllocsPerRun(10, func() { _ = Validate(in) }); n != 0 {
				t.Errorf("valid input %d: Validate allocated %v times", i, n)
			}
		}
	}
	// Malformed: only the error value, however many entries the input claims.
	bad := [][]byte{
		{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1, '0'}, // claims 4G entries
		append(manyIDs(1000, "null")[:len(manyIDs(1000, "null"))-1], 'x'),
		append([]byte{0x80, 0x80, 0x04}, manyIDs(1000, "null")[2:]...), // claims 65536
	}
	for i, in := range bad {
		if Validate(in) == nil {
			t.Fatalf("bad input %d validated", i)
		}
		if n := allocbound.Bytes(func() { _ = Validate(in) }); n > racePerByte*uint64(len(in))+4<<10 {
			t.Errorf("bad input %d: Validate of %d bytes allocated %d bytes", i, len(in), n)
		}
		if racePerByte == 0 {
			if n := testing.AllocsPerRun(10, func() { _ = Validate(in) }); n > 12 {
				t.Errorf("bad input %d: Validate allocated %v times", i, n)
			}
		}
	}
}

// maxAllocPerByte bounds what Apply may allocate per byte of input when it admits everything:
// a 4-byte entry for a new client costs its map slot (key + clock, state header, time), its
// state copy and its place in the Change. With an owner refusing new ids, almost nothing stays.
const (
	maxAllocPerByte = 64
	allocSlack      = 64 << 10
)

func TestApplyAllocationBoundedByInput(t *testing.T) {
	for _, in := range [][]byte{manyIDs(200_000, "0"), manyIDs(200_000, "null"), manyIDs(50_000, `{"cursor":{"anchor":1234}}`)} {
		a := New()
		n := allocbound.Bytes(func() { _, _ = a.Apply(in, t0) })
		if n > (maxAllocPerByte+racePerByte)*uint64(len(in))+allocSlack {
			t.Errorf("%d input bytes allocated %d bytes (%.1f per byte)", len(in), n, float64(n)/float64(len(in)))
		}
		t.Logf("%d input bytes: %d allocated (%.1f per byte)", len(in), n, float64(n)/float64(len(in)))
		b := New()
		n = allocbound.Bytes(func() { _, _ = b.ApplyFunc(in, t0, func(Entry) bool { return false }) })
		if n > racePerByte*uint64(len(in))+allocSlack {
			t.Errorf("refusing every entry still allocated %d bytes for %d input bytes", n, len(in))
		}
		t.Logf("%d input bytes, every entry refused: %d allocated", len(in), n)
	}
}

// FuzzApplyAllocation checks that no input makes Validate allocate, nor Apply allocate more than
// maxAllocPerByte per input byte, whatever counts and lengths it claims.
func FuzzApplyAllocation(f *testing.F) {
	f.Add(manyIDs(100, "null"))
	f.Add(manyIDs(10, `{"a":[1,2,3]}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1, '0'})
	f.Add([]byte{1, 1, 1, 0xff, 0xff, 0xff, 0x7f, '{'})
	f.Add(enc(ent{1, 1, "\xff\xfe\"x\""}))
	f.Fuzz(func(t *testing.T, update []byte) {
		// TotalAlloc counts the whole process (under -fuzz, the worker's own traffic too), hence
		// the slack; TestValidateAllocatesNothing counts exactly.
		if n := allocbound.Bytes(func() { _ = Validate(update) }); n > racePerByte*uint64(len(update))+allocSlack {
			t.Fatalf("Validate of %d bytes allocated %d", len(update), n)
		}
		a := New()
		var err error
		n := allocbound.Bytes(func() { _, err = a.Apply(update, t0) })
		if n > (maxAllocPerByte+racePerByte)*uint64(len(update))+allocSlack {
			t.Fatalf("Apply of %d bytes allocated %d", len(update), n)
		}
		if (err == nil) != (Validate(update) == nil) {
			t.Fatalf("Apply err %v but Validate disagrees", err)
		}
		checkInvariants(t, a)
		// What the applying pass relies on to skip its own JSON check.
		if json.Valid(update) != json.Valid([]byte(encoding.ToValidUTF8(update))) {
			t.Fatalf("%q: JSON validity changes with UTF-8 replacement", update)
		}
	})
}

// Invalid UTF-8 never changes whether a state is valid JSON, so the applying pass need not check
// again what the validating pass checked.
func TestUTF8ReplacementKeepsJSONValidity(t *testing.T) {
	for _, s := range []string{"\"\xff\"", "\xff", "[\"a\xc3\"]", "{\"\xe2\x82\":1}", "\"\xed\xa0\x80\"", "1\xff", "\"ok\""} {
		if json.Valid([]byte(s)) != json.Valid([]byte(encoding.ToValidUTF8([]byte(s)))) {
			t.Errorf("%q: validity changes with replacement", s)
		}
	}
}

// BenchmarkApplyRefusedFlood is the 15 MB / 1.5M-id frame as the server sees it: every entry
// validated, every new id refused by the owner's per-connection limit.
func BenchmarkApplyRefusedFlood(b *testing.B) {
	in := manyIDs(1_500_000, "{}")
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		a := New()
		n := 0
		if _, err := a.ApplyFunc(in, t0, func(Entry) bool { n++; return n <= 4 }); err != nil {
			b.Fatal(err)
		}
	}
}
