// Package awareness keeps the awareness states of a document's clients — cursors, user names,
// presence — as the y-protocols awareness protocol (y-protocols/awareness.js) defines them, from
// the point of view of a relay server that has no state of its own.
//
// # Wire format
//
// An awareness update (encodeAwarenessUpdate) is
//
//	count: var-uint
//	count times:
//	    clientID: var-uint
//	    clock:    var-uint
//	    state:    var-string holding JSON; the text "null" means "this client is gone"
//
// and travels inside a y-websocket awareness message (package crdt/syncproto, type 1).
//
// # Rules
//
// Every client owns a clock it increments whenever it publishes its state. Apply mirrors
// applyAwarenessUpdate: an entry is accepted when its clock is greater than the known clock of that
// client (0 for an unknown client), or when the clocks are equal, the entry's state is null and a
// state is currently known — so any peer can mark another one offline without knowing a newer
// clock. Accepted entries store the clock and the state (or drop the state for null) and stamp
// the time. Known clients keep their clock after their state is dropped, so replays of old
// messages stay rejected — but only for OutdatedTimeout: Forget then drops them (see Forget for
// why a relay server must not remember every id it ever saw).
//
// # Bounded by the input
//
// Apply never allocates from the entry count on the wire: it validates the whole update in one
// pass that allocates nothing, then applies it in a second pass, so what it allocates is what it
// keeps (the accepted states, one map entry per new client) plus the Change lists. ApplyFunc
// lets the owner refuse single entries (too many clients per connection, states too large,
// client ids owned by someone else) before they are stored.
//
// # No timers
//
// An Awareness is a plain data structure for a single owner goroutine; it is not safe for
// concurrent use. It reads no clock of its own: every method that records time takes now, and
// Outdated tells the owner which clients went silent for OutdatedTimeout, the 30 s after which
// y-protocols drops a remote state (clients renew their state every 15 s).
package awareness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/ysync/ysync/crdt/encoding"
)

// OutdatedTimeout is y-protocols' outdatedTimeout: a client whose state was not renewed for this
// long is considered gone.
const OutdatedTimeout = 30 * time.Second

// ErrMalformed is wrapped by every error Apply returns.
var ErrMalformed = errors.New("awareness: malformed update")

// minEntrySize is the smallest encoded entry: one byte each for the client ID, the clock and the
// string length, and a one-byte JSON text such as "0".
const minEntrySize = 4

var nullJSON = json.RawMessage("null")

// Change reports what an Apply or Remove did, in the terms of y-protocols' events. A client may
// appear in more than one list (and more than once) when one update carries several entries for
// it, exactly as in the JavaScript events.
//
// To track which clients a connection controls (so that closing it can Remove them), add the
// clients of Added, Updated and Renewed and drop those of Removed. The reference server adds only
// Added, so a client that comes back after a removal (reported as Updated) is not cleaned up when
// its new connection closes; there is no need to copy that.
type Change struct {
	// Added lists clients seen for the first time with a non-null state.
	Added []uint64
	// Updated lists already known clients that got a non-null state deeply different from their
	// previous one (a client coming back after its state was dropped counts here, not in Added,
	// as in y-protocols).
	Updated []uint64
	// Renewed lists already known clients whose clock advanced with a state deeply equal to the
	// previous one: a keep-alive. y-protocols reports these in the 'update' event's updated list
	// but not in the 'change' event.
	Renewed []uint64
	// Removed lists known clients that got a null state accepted (whether or not a state was
	// still present, as in y-protocols).
	Removed []uint64
}

// Changed reports whether y-protocols would emit a 'change' event: something other than a
// renewal happened.
func (c Change) Changed() bool { return len(c.Added)+len(c.Updated)+len(c.Removed) > 0 }

// Empty reports whether nothing was accepted at all; y-protocols emits no 'update' event then.
func (c Change) Empty() bool { return !c.Changed() && len(c.Renewed) == 0 }

// Clients returns Added, Updated, Renewed and Removed in one slice: the clients the reference
// server re-broadcasts after an update (pass them to EncodeUpdate).
func (c Change) Clients() []uint64 {
	out := make([]uint64, 0, len(c.Added)+len(c.Updated)+len(c.Renewed)+len(c.Removed))
	out = append(out, c.Added...)
	out = append(out, c.Updated...)
	out = append(out, c.Renewed...)
	return append(out, c.Removed...)
}

type client struct {
	clock       uint64
	state       json.RawMessage // nil: no state (removed, or only ever announced null)
	lastUpdated time.Time
}

// Awareness holds the clock and state of every client seen within OutdatedTimeout, and of every
// client that has a state. The zero value is not usable; call New.
type Awareness struct {
	clients map[uint64]client
	states  int // clients with a non-nil state
	// version counts changes of clocks or states.
	version uint64
}

// New returns an empty Awareness.
func New() *Awareness { return &Awareness{clients: make(map[uint64]client)} }

// Len returns the number of clients that currently have a state (y-protocols getStates().size).
func (a *Awareness) Len() int { return a.states }

// Known returns the number of clients remembered: those with a state and those removed less than
// OutdatedTimeout ago (until Forget drops them).
func (a *Awareness) Known() int { return len(a.clients) }

// Version changes whenever a clock or a state changes, so whenever EncodeAll's result may
// change; owners use it to cache frames built from EncodeAll.
func (a *Awareness) Version() uint64 { return a.version }

// Get returns the state and clock of client. ok is false for a client never seen; state is nil
// for a known client without a state. The state must not be modified.
func (a *Awareness) Get(clientID uint64) (state json.RawMessage, clock uint64, ok bool) {
	c, ok := a.clients[clientID]
	return c.state, c.clock, ok
}

// States returns the current states by client ID (getStates). The map is new; the JSON values are
// shared and must not be modified.
func (a *Awareness) States() map[uint64]json.RawMessage {
	out := make(map[uint64]json.RawMessage, a.states)
	for id, c := range a.clients {
		if c.state != nil {
			out[id] = c.state
		}
	}
	return out
}

// Entry is one entry of an awareness update, as ApplyFunc's admit sees it.
type Entry struct {
	ClientID uint64
	Clock    uint64
	// State is the JSON text of the state, nil for null. It aliases the update: copy it to keep
	// it.
	State []byte
}

// decoder walks the entries of an update in place. It allocates nothing but the replacement copy
// of a state that is not valid UTF-8.
type decoder struct {
	d    encoding.Decoder
	n, i uint64
}

// init starts the walk; a value receiver on the caller's stack keeps Validate allocation-free.
func (dc *decoder) init(update []byte) error {
	dc.d = *encoding.NewDecoder(update)
	dc.n = dc.d.ReadVarUint()
	if err := dc.d.Err(); err != nil {
		return fmt.Errorf("%w: count: %v", ErrMalformed, err)
	}
	// A cheap early refusal; the walk checks every entry anyway.
	if dc.n > uint64(dc.d.Remaining()/minEntrySize) {
		return fmt.Errorf("%w: %d entries cannot fit in %d bytes", ErrMalformed, dc.n, dc.d.Remaining())
	}
	return nil
}

// next decodes the next entry; ok is false after the last one. The validating pass (applying
// false) checks that the state is JSON; the applying pass, over bytes already validated, skips
// that and replaces invalid UTF-8 instead (lib0 decodes strings with a replacing TextDecoder
// before JSON.parse sees them), which keeps JSON validity as it is: encoding/json accepts any
// byte inside a string, and U+FFFD outside one is as invalid as the byte it replaces.
func (dc *decoder) next(applying bool) (e Entry, ok bool, err error) {
	if dc.i >= dc.n {
		return e, false, nil
	}
	i := dc.i
	dc.i++
	d := &dc.d
	e.ClientID = d.ReadVarUint()
	e.Clock = d.ReadVarUint()
	s := d.ReadVarUint8Array()
	if err := d.Err(); err != nil {
		return e, false, fmt.Errorf("%w: entry %d: %v", ErrMalformed, i, err)
	}
	if applying && !utf8.Valid(s) {
		s = []byte(encoding.ToValidUTF8(s))
	}
	if !applying && !json.Valid(s) {
		return e, false, fmt.Errorf("%w: entry %d (client %d): state is not valid JSON", ErrMalformed, i, e.ClientID)
	}
	if !isNull(s) {
		e.State = s
	}
	return e, true, nil
}

// Validate reports whether update is a well-formed awareness update, with Apply's error. It
// allocates nothing, whatever the update claims.
func Validate(update []byte) error {
	var dc decoder
	if err := dc.init(update); err != nil {
		return err
	}
	for {
		_, ok, err := dc.next(false)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
}

// isNull reports whether the valid JSON text s is null.
func isNull(s []byte) bool {
	if len(s) < len(nullJSON) {
		return false // the common case of small states, without a Trim per entry
	}
	return bytes.Equal(bytes.Trim(s, " \t\r\n"), nullJSON)
}

// Apply applies an awareness update received from a peer, with the rules of y-protocols'
// applyAwarenessUpdate (see the package comment), stamping accepted entries with now. The whole
// update is validated first: a truncated update, an entry count larger than the bytes can hold,
// or a state that is not valid JSON fails with an error wrapping ErrMalformed and leaves a
// unchanged. Entries are applied in order, so later entries for the same client see earlier ones.
//
// A server has no local state, so y-protocols' special case — a peer marking the local client
// offline — does not arise here. States are stored as received, copied and stripped of
// insignificant white space but not re-serialized (so escapes and number spellings survive).
func (a *Awareness) Apply(update []byte, now time.Time) (Change, error) {
	return a.ApplyFunc(update, now, nil)
}

// ApplyFunc is Apply with a say of the owner: admit (nil admits all) is called, in order, for
// every entry the rules would accept, just before it is applied, and the entry is skipped when
// it returns false. admit may read a (Get) but must not change it. A skipped entry changes
// nothing, as if it had not been sent.
func (a *Awareness) ApplyFunc(update []byte, now time.Time, admit func(Entry) bool) (Change, error) {
	var ch Change
	if err := Validate(update); err != nil {
		return ch, err
	}
	var dc decoder
	_ = dc.init(update)
	for {
		e, ok, err := dc.next(true)
		if err != nil || !ok {
			break // err is impossible: Validate walked the same bytes
		}
		prev, known := a.clients[e.ClientID]
		if !(prev.clock < e.Clock || (prev.clock == e.Clock && e.State == nil && prev.state != nil)) {
			continue
		}
		if admit != nil && !admit(e) {
			continue
		}
		next := client{clock: e.Clock, lastUpdated: now}
		if e.State != nil {
			next.state = compact(e.State)
		}
		a.set(e.ClientID, prev, next)
		switch {
		case !known && e.State != nil:
			ch.Added = append(ch.Added, e.ClientID)
		case known && e.State == nil:
			ch.Removed = append(ch.Removed, e.ClientID)
		case e.State != nil:
			if equalJSON(e.State, prev.state) {
				ch.Renewed = append(ch.Renewed, e.ClientID)
			} else {
				ch.Updated = append(ch.Updated, e.ClientID)
			}
		}
		// !known && state == nil: the clock is recorded silently, as y-protocols does (and
		// forgotten after OutdatedTimeout, see Forget).
	}
	return ch, nil
}

func (a *Awareness) set(id uint64, prev, next client) {
	if prev.state != nil {
		a.states--
	}
	if next.state != nil {
		a.states++
	}
	a.clients[id] = next
	a.version++
}

// compact returns a copy of the valid JSON text s without insignificant white space, closer to
// what JSON.stringify would re-encode.
func compact(s []byte) json.RawMessage {
	b := bytes.NewBuffer(make([]byte, 0, len(s))) // Grow would round small states up to 64 bytes
	if json.Compact(b, s) != nil {
		return bytes.Clone(s) // unreachable: s was validated
	}
	return b.Bytes()
}

// equalJSON reports whether two JSON texts hold deeply equal values, like lib0's equalityDeep on
// their JSON.parse results (object key order does not matter, numbers compare as float64). A nil
// b (no previous state) is never equal.
func equalJSON(a, b []byte) bool {
	if b == nil {
		return false
	}
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false // e.g. numbers beyond float64; JavaScript would see Infinity
	}
	return reflect.DeepEqual(va, vb)
}

// Remove drops the states of the given clients, as the reference server does with
// removeAwarenessStates for the clients a closed connection controlled, and as the owner should do
// for the clients Outdated reports. Clients without a state are skipped. It returns the awareness
// update to broadcast to the remaining peers (nil when nothing was removed) and the Change.
//
// As removeAwarenessStates does for remote clients, the clock is not incremented: the broadcast
// carries each client's current clock with a null state, which peers accept through the
// equal-clock-null rule. Keeping the clock means the client's own next message (clock+1, sent
// when it reconnects or renews) is accepted again; a bumped clock would make the server reject
// that renewal and hide the client for another renewal period.
func (a *Awareness) Remove(clients []uint64, now time.Time) ([]byte, Change) {
	var ch Change
	for _, id := range clients {
		prev, ok := a.clients[id]
		if !ok || prev.state == nil {
			continue
		}
		a.set(id, prev, client{clock: prev.clock, lastUpdated: now})
		ch.Removed = append(ch.Removed, id)
	}
	if len(ch.Removed) == 0 {
		return nil, ch
	}
	return a.EncodeUpdate(ch.Removed), ch
}

// Outdated returns, in ascending order, the clients that have a state last updated
// OutdatedTimeout or more before now. y-protocols' Awareness checks this every 3 s and removes
// them; the owner should call Outdated periodically and pass the result to Remove.
func (a *Awareness) Outdated(now time.Time) []uint64 {
	var out []uint64
	for id, c := range a.clients {
		if c.state != nil && now.Sub(c.lastUpdated) >= OutdatedTimeout {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Forget drops the clients that have no state and whose state was removed (or who only ever
// announced null) OutdatedTimeout or more before now, and returns how many it dropped. Call it
// periodically, as with Outdated.
//
// y-protocols remembers the clock of every client it ever saw, so that a replay of an older
// message (a delayed frame from a client that already left) cannot bring a removed state back.
// That costs memory for every id anyone ever sent, for as long as the document is loaded: one
// frame can name 1.5M ids. A relay server forgets them after OutdatedTimeout instead: by then a
// live client has renewed (every 15 s) or is gone for good, and the replay window of a message
// relayed through this server is closed; a replay arriving later is an attack, and the owner's
// per-connection limits bound what it can add.
func (a *Awareness) Forget(now time.Time) int {
	n := 0
	for id, c := range a.clients {
		if c.state == nil && now.Sub(c.lastUpdated) >= OutdatedTimeout {
			delete(a.clients, id)
			n++
		}
	}
	return n
}

// EncodeUpdate encodes the current clock and state of the given clients, in the given order, as
// an awareness update (encodeAwarenessUpdate). A known client without a state is written with its
// clock and "null". Clients never seen are left out (y-protocols would throw).
//
// Unlike encodeAwarenessUpdate, which writes `states.get(id) || null`, a falsy JSON state such as
// 0, false or "" is written as stored rather than as null.
func (a *Awareness) EncodeUpdate(clients []uint64) []byte {
	n := 0
	for _, id := range clients {
		if _, ok := a.clients[id]; ok {
			n++
		}
	}
	e := encoding.NewEncoder()
	e.WriteVarUint(uint64(n))
	for _, id := range clients {
		c, ok := a.clients[id]
		if !ok {
			continue
		}
		e.WriteVarUint(id)
		e.WriteVarUint(c.clock)
		if c.state == nil {
			e.WriteVarUint8Array(nullJSON)
		} else {
			e.WriteVarUint8Array(c.state)
		}
	}
	return e.Bytes()
}

// EncodeAll encodes every client that has a state, in ascending client ID order: what the
// reference server sends a new connection after its SyncStep1. With no states it returns the
// one-byte update of zero entries; the reference server sends nothing then (check Len).
//
// An owner answering many requests (query-awareness floods) should cache what it builds from the
// result until Version changes, rather than encode it again per request.
func (a *Awareness) EncodeAll() []byte {
	ids := make([]uint64, 0, a.states)
	for id, c := range a.clients {
		if c.state != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return a.EncodeUpdate(ids)
}
