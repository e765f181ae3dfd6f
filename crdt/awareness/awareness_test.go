package awareness

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ysync/ysync/crdt/encoding"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type ent struct {
	client, clock uint64
	state         string
}

func enc(entries ...ent) []byte {
	e := encoding.NewEncoder()
	e.WriteVarUint(uint64(len(entries)))
	for _, x := range entries {
		e.WriteVarUint(x.client)
		e.WriteVarUint(x.clock)
		e.WriteVarString(x.state)
	}
	return e.Bytes()
}

func dec(t testing.TB, u []byte) []ent {
	t.Helper()
	d := encoding.NewDecoder(u)
	n := d.ReadVarUint()
	var out []ent
	for i := uint64(0); i < n && d.Err() == nil; i++ {
		out = append(out, ent{d.ReadVarUint(), d.ReadVarUint(), d.ReadVarString()})
	}
	if d.Err() != nil {
		t.Fatalf("decode %x: %v", u, d.Err())
	}
	return out
}

func mustApply(t testing.TB, a *Awareness, u []byte, now time.Time) Change {
	t.Helper()
	ch, err := a.Apply(u, now)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return ch
}

func ids(v ...uint64) []uint64 { return v }

// decodeAll decodes every entry of an update (a test helper: Apply itself never collects them).
func decodeAll(update []byte) ([]Entry, error) {
	if err := Validate(update); err != nil {
		return nil, err
	}
	var dc decoder
	if err := dc.init(update); err != nil {
		return nil, err
	}
	var out []Entry
	for {
		e, ok, err := dc.next(true)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, e)
	}
}

func sameChange(a, b Change) bool {
	return slices.Equal(a.Added, b.Added) && slices.Equal(a.Updated, b.Updated) &&
		slices.Equal(a.Renewed, b.Renewed) && slices.Equal(a.Removed, b.Removed)
}

// TestApplyRules walks every branch of applyAwarenessUpdate.
func TestApplyRules(t *testing.T) {
	type step struct {
		update  []byte
		want    Change
		clock   uint64 // clock of client 1 afterwards
		state   string // state of client 1 afterwards ("" = none)
		present bool   // client 1 known afterwards
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"new client with state is added", []step{
			{enc(ent{1, 1, `{"a":1}`}), Change{Added: ids(1)}, 1, `{"a":1}`, true},
		}},
		{"new client at clock 0 is ignored (the clock must exceed the default 0)", []step{
			{enc(ent{1, 0, `{"a":1}`}), Change{}, 0, "", false},
		}},
		{"new client at clock 0 with null is ignored", []step{
			{enc(ent{1, 0, `null`}), Change{}, 0, "", false},
		}},
		{"new client at clock 3 with null records the clock silently", []step{
			{enc(ent{1, 3, `null`}), Change{}, 3, "", true},
			{enc(ent{1, 3, `{}`}), Change{}, 3, "", true},
			{enc(ent{1, 4, `{}`}), Change{Updated: ids(1)}, 4, `{}`, true},
		}},
		{"higher clock with different state is updated", []step{
			{enc(ent{1, 1, `{"a":1}`}), Change{Added: ids(1)}, 1, `{"a":1}`, true},
			{enc(ent{1, 2, `{"a":2}`}), Change{Updated: ids(1)}, 2, `{"a":2}`, true},
		}},
		{"higher clock with deep-equal state is a renewal", []step{
			{enc(ent{1, 1, `{"a":1,"b":[1,2]}`}), Change{Added: ids(1)}, 1, `{"a":1,"b":[1,2]}`, true},
			{enc(ent{1, 2, `{ "b" : [1.0, 2e0], "a":1 }`}), Change{Renewed: ids(1)}, 2, `{"b":[1.0,2e0],"a":1}`, true},
		}},
		{"equal clock with a state is ignored", []step{
			{enc(ent{1, 1, `{"a":1}`}), Change{Added: ids(1)}, 1, `{"a":1}`, true},
			{enc(ent{1, 1, `{"a":2}`}), Change{}, 1, `{"a":1}`, true},
		}},
		{"lower clock is ignored", []step{
			{enc(ent{1, 5, `{"a":1}`}), Change{Added: ids(1)}, 5, `{"a":1}`, true},
			{enc(ent{1, 4, `{"a":2}`}), Change{}, 5, `{"a":1}`, true},
			{enc(ent{1, 4, `null`}), Change{}, 5, `{"a":1}`, true},
		}},
		{"equal clock with null removes", []step{
			{enc(ent{1, 5, `{"a":1}`}), Change{Added: ids(1)}, 5, `{"a":1}`, true},
			{enc(ent{1, 5, `null`}), Change{Removed: ids(1)}, 5, "", true},
			{enc(ent{1, 5, ` null `}), Change{}, 5, "", true},
		}},
		{"higher clock with null removes, and removes again when already gone", []step{
			{enc(ent{1, 5, `{"a":1}`}), Change{Added: ids(1)}, 5, `{"a":1}`, true},
			{enc(ent{1, 6, `null`}), Change{Removed: ids(1)}, 6, "", true},
			{enc(ent{1, 7, `null`}), Change{Removed: ids(1)}, 7, "", true},
		}},
		{"coming back after removal is an update, not an add", []step{
			{enc(ent{1, 1, `{"a":1}`}), Change{Added: ids(1)}, 1, `{"a":1}`, true},
			{enc(ent{1, 2, `null`}), Change{Removed: ids(1)}, 2, "", true},
			{enc(ent{1, 3, `{"a":1}`}), Change{Updated: ids(1)}, 3, `{"a":1}`, true},
		}},
		{"entries apply in order within one update", []step{
			{enc(ent{1, 1, `{"v":1}`}, ent{1, 2, `{"v":2}`}, ent{1, 2, `{"v":3}`}, ent{1, 3, `{"v":2}`}),
				Change{Added: ids(1), Updated: ids(1), Renewed: ids(1)}, 3, `{"v":2}`, true},
		}},
		{"non-object states are states", []step{
			{enc(ent{1, 1, `0`}), Change{Added: ids(1)}, 1, `0`, true},
			{enc(ent{1, 2, `false`}), Change{Updated: ids(1)}, 2, `false`, true},
			{enc(ent{1, 3, `""`}), Change{Updated: ids(1)}, 3, `""`, true},
			{enc(ent{1, 4, `[]`}), Change{Updated: ids(1)}, 4, `[]`, true},
			{enc(ent{1, 5, `{}`}), Change{Updated: ids(1)}, 5, `{}`, true},
		}},
		{"max 53-bit client and clock", []step{
			{enc(ent{1, 1<<53 - 1, `{}`}), Change{Added: ids(1)}, 1<<53 - 1, `{}`, true},
		}},
		{"empty update", []step{{enc(), Change{}, 0, "", false}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := New()
			for i, s := range c.steps {
				ch := mustApply(t, a, s.update, t0.Add(time.Duration(i)*time.Second))
				if !sameChange(ch, s.want) {
					t.Fatalf("step %d: change %+v, want %+v", i, ch, s.want)
				}
				state, clock, ok := a.Get(1)
				if ok != s.present || clock != s.clock || string(state) != s.state {
					t.Fatalf("step %d: Get(1) = %s, %d, %v; want %s, %d, %v", i, state, clock, ok, s.state, s.clock, s.present)
				}
				wantLen := 0
				if s.state != "" {
					wantLen = 1
				}
				if a.Len() != wantLen || len(a.States()) != wantLen {
					t.Fatalf("step %d: Len %d, States %d, want %d", i, a.Len(), len(a.States()), wantLen)
				}
			}
		})
	}
}

func TestChangeHelpers(t *testing.T) {
	c := Change{Added: ids(1), Updated: ids(2), Renewed: ids(3), Removed: ids(4)}
	if !slices.Equal(c.Clients(), ids(1, 2, 3, 4)) || !c.Changed() || c.Empty() {
		t.Fatal(c.Clients(), c.Changed(), c.Empty())
	}
	r := Change{Renewed: ids(3)}
	if r.Changed() || r.Empty() {
		t.Fatal("renewal only")
	}
	if !(Change{}).Empty() {
		t.Fatal("empty")
	}
}

func TestApplyRejectsAndLeavesStateUnchanged(t *testing.T) {
	good := enc(ent{1, 1, `{"a":1}`}, ent{2, 1, `{"b":2}`})
	bad := map[string][]byte{
		"empty":               {},
		"count truncated":     {0x80},
		"count too large":     {0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1, '0'},
		"count exceeds bytes": {3, 1, 1, 1, '0'},
		"entry truncated":     enc(ent{1, 2, `{}`})[:4],
		"length too large":    {1, 1, 2, 0x80, 0x80, 0x80, 0x80, 0x10},
		"invalid json":        enc(ent{1, 9, `{"a":2}`}, ent{3, 1, `{bad}`}),
		"empty json":          enc(ent{1, 9, `{}`}, ent{3, 1, ``}, ent{4, 1, `{}`}),
		"two json values":     enc(ent{1, 9, `{} {}`}),
		"clock overflow":      {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, '0'},
	}
	for name, u := range bad {
		t.Run(name, func(t *testing.T) {
			a := New()
			mustApply(t, a, good, t0)
			before := a.EncodeUpdate(ids(1, 2, 3, 4))
			ch, err := a.Apply(u, t0.Add(time.Second))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v", err)
			}
			if !ch.Empty() {
				t.Fatalf("change %+v with error", ch)
			}
			if after := a.EncodeUpdate(ids(1, 2, 3, 4)); !bytes.Equal(before, after) || a.Len() != 2 {
				t.Fatalf("state changed: %x -> %x", before, after)
			}
		})
	}
}

func TestApplyIgnoresTrailingBytes(t *testing.T) {
	a := New()
	ch := mustApply(t, a, append(enc(ent{1, 1, `{}`}), 0xff, 0xff), t0)
	if !slices.Equal(ch.Added, ids(1)) {
		t.Fatal(ch)
	}
}

func TestApplyInvalidUTF8IsReplaced(t *testing.T) {
	a := New()
	mustApply(t, a, enc(ent{1, 1, "\"a\xffb\""}), t0)
	if s, _, _ := a.Get(1); string(s) != "\"a\uFFFDb\"" {
		t.Fatalf("state %q", s)
	}
}

func TestApplyCopiesState(t *testing.T) {
	a := New()
	u := enc(ent{1, 1, `{"a":1}`})
	mustApply(t, a, u, t0)
	for i := range u {
		u[i] = 'x'
	}
	if s, _, _ := a.Get(1); string(s) != `{"a":1}` {
		t.Fatalf("state aliases the update: %q", s)
	}
}

func TestEncodeUpdate(t *testing.T) {
	a := New()
	mustApply(t, a, enc(ent{1, 3, `{"a":1}`}, ent{2, 7, `{"b":2}`}, ent{3, 2, `null`}), t0)
	mustApply(t, a, enc(ent{2, 8, `null`}), t0)
	got := dec(t, a.EncodeUpdate(ids(2, 1, 3, 99, 1)))
	want := []ent{{2, 8, "null"}, {1, 3, `{"a":1}`}, {3, 2, "null"}, {1, 3, `{"a":1}`}}
	if !slices.Equal(got, want) {
		t.Fatalf("EncodeUpdate = %v, want %v", got, want)
	}
	if got := dec(t, a.EncodeAll()); !slices.Equal(got, []ent{{1, 3, `{"a":1}`}}) {
		t.Fatalf("EncodeAll = %v", got)
	}
	if got := New().EncodeAll(); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("empty EncodeAll = %x", got)
	}
	if got := a.EncodeUpdate(nil); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("EncodeUpdate(nil) = %x", got)
	}
}

func TestRemoveKeepsClock(t *testing.T) {
	a := New()
	mustApply(t, a, enc(ent{1, 3, `{"a":1}`}, ent{2, 7, `{"b":2}`}, ent{3, 2, `null`}), t0)
	u, ch := a.Remove(ids(1, 3, 99, 1), t0.Add(time.Second))
	if !slices.Equal(ch.Removed, ids(1)) || len(ch.Added)+len(ch.Updated)+len(ch.Renewed) != 0 {
		t.Fatalf("change %+v", ch)
	}
	if got := dec(t, u); !slices.Equal(got, []ent{{1, 3, "null"}}) {
		t.Fatalf("broadcast %v", got)
	}
	if a.Len() != 1 {
		t.Fatalf("Len %d", a.Len())
	}
	// A peer holding the old state accepts the broadcast (equal clock, null).
	peer := New()
	mustApply(t, peer, enc(ent{1, 3, `{"a":1}`}), t0)
	if ch := mustApply(t, peer, u, t0); !slices.Equal(ch.Removed, ids(1)) {
		t.Fatalf("peer change %+v", ch)
	}
	// The client's own renewal (clock+1) brings it back.
	if ch := mustApply(t, a, enc(ent{1, 4, `{"a":1}`}), t0); !slices.Equal(ch.Updated, ids(1)) {
		t.Fatalf("renewal after removal: %+v", ch)
	}
	if u, ch := a.Remove(ids(3, 99), t0); u != nil || !ch.Empty() {
		t.Fatalf("removing stateless clients: %x %+v", u, ch)
	}
}

func TestOutdated(t *testing.T) {
	a := New()
	mustApply(t, a, enc(ent{3, 1, `{}`}, ent{1, 1, `{}`}), t0)
	mustApply(t, a, enc(ent{2, 1, `{}`}, ent{4, 5, `null`}), t0.Add(10*time.Second))
	if got := a.Outdated(t0.Add(OutdatedTimeout - time.Nanosecond)); len(got) != 0 {
		t.Fatalf("early: %v", got)
	}
	if got := a.Outdated(t0.Add(OutdatedTimeout)); !slices.Equal(got, ids(1, 3)) {
		t.Fatalf("at timeout: %v", got)
	}
	mustApply(t, a, enc(ent{1, 2, `{}`}), t0.Add(20*time.Second)) // renewal resets the timer
	if got := a.Outdated(t0.Add(45 * time.Second)); !slices.Equal(got, ids(2, 3)) {
		t.Fatalf("after renewal: %v", got)
	}
	u, _ := a.Remove(a.Outdated(t0.Add(45*time.Second)), t0.Add(45*time.Second))
	if got := dec(t, u); !slices.Equal(got, []ent{{2, 1, "null"}, {3, 1, "null"}}) {
		t.Fatalf("removal %v", got)
	}
	if got := a.Outdated(t0.Add(time.Hour)); !slices.Equal(got, ids(1)) {
		t.Fatalf("later: %v", got)
	}
}

// ---- golden interop with y-protocols ----

type jsEvent struct {
	Added   []uint64 `json:"added"`
	Updated []uint64 `json:"updated"`
	Removed []uint64 `json:"removed"`
}

type fixtureEntry struct {
	Client uint64 `json:"client"`
	Clock  uint64 `json:"clock"`
	State  string `json:"state"`
}

type fixture struct {
	Updates []struct {
		Name    string         `json:"name"`
		Update  string         `json:"update"`
		Entries []fixtureEntry `json:"entries"`
	} `json:"updates"`
	Scenario []struct {
		Name        string            `json:"name"`
		Op          string            `json:"op"`
		Update      string            `json:"update"`
		Remove      []uint64          `json:"remove"`
		Broadcast   string            `json:"broadcast"`
		Change      jsEvent           `json:"change"`
		UpdateEvent jsEvent           `json:"updateEvent"`
		States      map[string]string `json:"states"`
		Clocks      map[string]uint64 `json:"clocks"`
	} `json:"scenario"`
}

func loadFixture(t testing.TB) fixture {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "protocol", "awareness.json"))
	if err != nil {
		t.Fatalf("read fixtures (regenerate with node scripts/gen-protocol-fixtures.mjs): %v", err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nz(v []uint64) []uint64 {
	if len(v) == 0 {
		return nil
	}
	return v
}

// TestGoldenUpdates re-encodes the awareness updates y-protocols produced, through a fresh
// Awareness, to the same entries.
func TestGoldenUpdates(t *testing.T) {
	for _, u := range loadFixture(t).Updates {
		t.Run(u.Name, func(t *testing.T) {
			raw := b64(t, u.Update)
			entries, err := decodeAll(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(u.Entries) {
				t.Fatalf("%d entries, want %d", len(entries), len(u.Entries))
			}
			for i, e := range entries {
				w := u.Entries[i]
				state := "null"
				if e.State != nil {
					state = string(e.State)
				}
				if e.ClientID != w.Client || e.Clock != w.Clock || state != w.State {
					t.Fatalf("entry %d = %d/%d/%s, want %+v", i, e.ClientID, e.Clock, state, w)
				}
			}
			// Distinct clients with canonical states re-encode byte for byte.
			a := New()
			mustApply(t, a, raw, t0)
			var order []uint64
			canonical := true
			for _, w := range u.Entries {
				order = append(order, w.Client)
				canonical = canonical && !bytes.ContainsAny([]byte(w.State), " ")
			}
			if len(slices.Compact(slices.Clone(order))) == len(order) && canonical && !hasNewNull(u.Entries) {
				if got := a.EncodeUpdate(order); !bytes.Equal(got, raw) {
					t.Fatalf("re-encoded %x, want %x", got, raw)
				}
			}
		})
	}
}

// hasNewNull reports a null entry at clock 0, which Apply ignores, so it cannot be re-encoded.
func hasNewNull(es []fixtureEntry) bool {
	for _, e := range es {
		if e.State == "null" && e.Clock == 0 {
			return true
		}
	}
	return false
}

// TestGoldenScenario replays the sequence of updates the fixture generator applied to a
// server-side y-protocols Awareness and compares events, states and clocks after every step.
func TestGoldenScenario(t *testing.T) {
	f := loadFixture(t)
	a := New()
	for i, s := range f.Scenario {
		now := t0.Add(time.Duration(i) * time.Second)
		var ch Change
		switch s.Op {
		case "apply":
			ch = mustApply(t, a, b64(t, s.Update), now)
		case "remove":
			var u []byte
			u, ch = a.Remove(s.Remove, now)
			if want := b64(t, s.Broadcast); !bytes.Equal(u, want) {
				t.Fatalf("%s: broadcast %x, want %x", s.Name, u, want)
			}
		default:
			t.Fatalf("unknown op %q", s.Op)
		}
		// 'change' event: added, updated (deep-different only), removed.
		if !slices.Equal(ch.Added, nz(s.Change.Added)) || !slices.Equal(ch.Updated, nz(s.Change.Updated)) ||
			!slices.Equal(ch.Removed, nz(s.Change.Removed)) {
			t.Fatalf("%s: change %+v, want %+v", s.Name, ch, s.Change)
		}
		// 'update' event: updated also holds the renewals.
		upd := slices.Sorted(slices.Values(append(slices.Clone(ch.Updated), ch.Renewed...)))
		if !slices.Equal(upd, nz(slices.Sorted(slices.Values(s.UpdateEvent.Updated)))) ||
			!slices.Equal(ch.Added, nz(s.UpdateEvent.Added)) || !slices.Equal(ch.Removed, nz(s.UpdateEvent.Removed)) {
			t.Fatalf("%s: update event %+v, want %+v", s.Name, ch, s.UpdateEvent)
		}
		states := a.States()
		if len(states) != len(s.States) || a.Len() != len(s.States) {
			t.Fatalf("%s: %d states, want %d", s.Name, len(states), len(s.States))
		}
		for k, want := range s.States {
			id, _ := strconv.ParseUint(k, 10, 64)
			if got, ok := states[id]; !ok || !equalJSON([]byte(want), got) {
				t.Fatalf("%s: state of %d = %s, want %s", s.Name, id, got, want)
			}
		}
		for k, want := range s.Clocks {
			id, _ := strconv.ParseUint(k, 10, 64)
			if _, clock, ok := a.Get(id); !ok || clock != want {
				t.Fatalf("%s: clock of %d = %d (%v), want %d", s.Name, id, clock, ok, want)
			}
		}
		if len(a.clients) != len(s.Clocks) {
			t.Fatalf("%s: %d known clients, want %d", s.Name, len(a.clients), len(s.Clocks))
		}
	}
	// What the reference server sends a new connection: same entries, in ID order, except that
	// encodeAwarenessUpdate writes falsy states (here `false`) as null.
	var all []ent
	for _, u := range f.Updates {
		if u.Name == "server-all" {
			for _, e := range u.Entries {
				st := e.State
				if st == "null" {
					st = string(states(a)[e.Client])
				}
				all = append(all, ent{e.Client, e.Clock, st})
			}
		}
	}
	slices.SortFunc(all, func(x, y ent) int { return cmp.Compare(x.client, y.client) })
	if got := dec(t, a.EncodeAll()); !slices.Equal(got, all) {
		t.Fatalf("EncodeAll = %v, want %v", got, all)
	}
}

func states(a *Awareness) map[uint64]json.RawMessage { return a.States() }

// ---- fuzzing ----

func checkInvariants(t *testing.T, a *Awareness) {
	t.Helper()
	n := 0
	for id, c := range a.clients {
		if c.state == nil {
			continue
		}
		n++
		if !json.Valid(c.state) || isNull(c.state) {
			t.Fatalf("client %d: bad stored state %q", id, c.state)
		}
	}
	if n != a.Len() || n != len(a.States()) {
		t.Fatalf("Len %d, counted %d", a.Len(), n)
	}
	// EncodeAll round-trips into a fresh Awareness.
	b := New()
	ch, err := b.Apply(a.EncodeAll(), t0)
	if err != nil {
		t.Fatalf("EncodeAll does not apply: %v", err)
	}
	if len(ch.Added) != n {
		t.Fatalf("EncodeAll applied %+v, want %d added", ch, n)
	}
	if !maps.EqualFunc(a.States(), b.States(), func(x, y json.RawMessage) bool { return bytes.Equal(x, y) }) {
		t.Fatal("EncodeAll round trip differs")
	}
}

func FuzzApply(f *testing.F) {
	for _, u := range loadFixture(f).Updates {
		f.Add(b64(f, u.Update), uint8(0))
	}
	f.Add(enc(ent{1, 1, `{"a":1}`}, ent{1, 1, `null`}), uint8(3))
	f.Add(enc(ent{1, 2, `null`}, ent{2, 1, `[1, 2]`}), uint8(1))
	f.Add([]byte{3, 1, 1, 1, '0'}, uint8(2))
	f.Fuzz(func(t *testing.T, update []byte, seed uint8) {
		a := New()
		mustApply(t, a, enc(ent{1, 2, `{"a":1}`}, ent{2, 1, `{"b":[1]}`}, ent{3, 5, `null`}), t0)
		if seed&1 != 0 {
			a.Remove(ids(2), t0)
		}
		before := a.EncodeUpdate(ids(1, 2, 3))
		knownBefore := len(a.clients)
		ch, err := a.Apply(update, t0.Add(time.Duration(seed)*time.Second))
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !ch.Empty() {
				t.Fatalf("err %v, change %+v", err, ch)
			}
			if after := a.EncodeUpdate(ids(1, 2, 3)); !bytes.Equal(before, after) || len(a.clients) != knownBefore {
				t.Fatal("rejected update changed the state")
			}
		}
		checkInvariants(t, a)
		// Applying the same update again changes nothing but equal-clock removals of states that
		// the update itself re-added (never an add or an update).
		if err == nil {
			ch2, err2 := a.Apply(update, t0)
			if err2 != nil || len(ch2.Added)+len(ch2.Updated)+len(ch2.Renewed) != 0 {
				t.Fatalf("replay: %+v, %v", ch2, err2)
			}
			checkInvariants(t, a)
		}
		out, rch := a.Remove(a.Outdated(t0.Add(time.Hour)), t0.Add(time.Hour))
		if a.Len() != 0 || (out == nil) != (len(rch.Removed) == 0) {
			t.Fatalf("after removing all outdated: Len %d, %x, %+v", a.Len(), out, rch)
		}
		checkInvariants(t, a)
	})
}
