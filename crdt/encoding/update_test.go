package encoding

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

// op is one call on an UpdateEncoder / UpdateDecoder, so a sequence can be replayed on an encoder
// and read back from a decoder.
type op struct {
	name   string
	u1, u2 uint64
	b      bool
	s      string
	v      any
	buf    []byte
}

func (o op) String() string {
	return fmt.Sprintf("%s(%d,%d,%v,%q,%s,%x)", o.name, o.u1, o.u2, o.b, o.s, show(o.v), o.buf)
}

func replay(enc UpdateEncoder, ops []op) {
	for _, o := range ops {
		switch o.name {
		case "restUint":
			enc.RestEncoder().WriteVarUint(o.u1)
		case "leftID":
			enc.WriteLeftID(o.u1, o.u2)
		case "rightID":
			enc.WriteRightID(o.u1, o.u2)
		case "client":
			enc.WriteClient(o.u1)
		case "info":
			enc.WriteInfo(uint8(o.u1))
		case "string":
			enc.WriteString(o.s)
		case "parentInfo":
			enc.WriteParentInfo(o.b)
		case "typeRef":
			enc.WriteTypeRef(uint8(o.u1))
		case "len":
			enc.WriteLen(o.u1)
		case "any":
			enc.WriteAny(o.v)
		case "buf":
			enc.WriteBuf(o.buf)
		case "json":
			enc.WriteJSON(o.v)
		case "key":
			enc.WriteKey(o.s)
		case "dsReset":
			enc.ResetDsCurVal()
		case "dsClock":
			enc.WriteDsClock(o.u1)
		case "dsLen":
			enc.WriteDsLen(o.u1)
		default:
			panic("unknown op " + o.name)
		}
	}
}

// readOp performs the read matching o's kind and returns what was read.
func readOp(dec UpdateDecoder, o op) op {
	r := op{name: o.name}
	switch o.name {
	case "restUint":
		r.u1 = dec.RestDecoder().ReadVarUint()
	case "leftID":
		r.u1, r.u2 = dec.ReadLeftID()
	case "rightID":
		r.u1, r.u2 = dec.ReadRightID()
	case "client":
		r.u1 = dec.ReadClient()
	case "info":
		r.u1 = uint64(dec.ReadInfo())
	case "string":
		r.s = dec.ReadString()
	case "parentInfo":
		r.b = dec.ReadParentInfo()
	case "typeRef":
		r.u1 = uint64(dec.ReadTypeRef())
	case "len":
		r.u1 = dec.ReadLen()
	case "any":
		r.v = dec.ReadAny()
	case "buf":
		r.buf = dec.ReadBuf()
	case "json":
		r.v = dec.ReadJSON()
	case "key":
		r.s = dec.ReadKey()
	case "dsReset":
		dec.ResetDsCurVal()
	case "dsClock":
		r.u1 = dec.ReadDsClock()
	case "dsLen":
		r.u1 = dec.ReadDsLen()
	}
	return r
}

func equalOp(a, b op) bool {
	return a.name == b.name && a.u1 == b.u1 && a.u2 == b.u2 && a.b == b.b && a.s == b.s &&
		equalAny(a.v, b.v) && bytes.Equal(a.buf, b.buf)
}

// walkUpdate reads a whole update the way Yjs's readClientsStructRefs and readDeleteSet do and
// returns the reads as ops. It stops after limit ops (complete=false) or at the first error.
func walkUpdate(dec UpdateDecoder, limit int) (ops []op, complete bool, err error) {
	rest := dec.RestDecoder()
	ok := func() bool { return dec.Err() == nil && len(ops) < limit }
	read := func(o op) op {
		r := readOp(dec, o)
		ops = append(ops, r)
		return r
	}
	restUint := func() uint64 { return read(op{name: "restUint"}).u1 }
	numClients := restUint()
	for i := uint64(0); i < numClients && ok(); i++ {
		n := restUint()
		read(op{name: "client"})
		restUint() // clock
		for j := uint64(0); j < n && ok(); j++ {
			info := uint8(read(op{name: "info"}).u1)
			switch info & 0x1f {
			case 0: // GC
				read(op{name: "len"})
				continue
			case 10: // Skip
				restUint()
				continue
			}
			if info&0x80 != 0 {
				read(op{name: "leftID"})
			}
			if info&0x40 != 0 {
				read(op{name: "rightID"})
			}
			if info&0xc0 == 0 {
				if read(op{name: "parentInfo"}).b {
					read(op{name: "string"})
				} else {
					read(op{name: "leftID"})
				}
				if info&0x20 != 0 {
					read(op{name: "string"})
				}
			}
			switch info & 0x1f {
			case 1: // deleted
				read(op{name: "len"})
			case 2: // JSON
				n := read(op{name: "len"}).u1
				for k := uint64(0); k < n && ok(); k++ {
					s := read(op{name: "string"}).s
					if s != "undefined" {
						if _, err := ParseJSON(s); err != nil {
							rest.Fail(err)
						}
					}
				}
			case 3:
				read(op{name: "buf"})
			case 4:
				read(op{name: "string"})
			case 5:
				read(op{name: "json"})
			case 6:
				read(op{name: "key"})
				read(op{name: "json"})
			case 7:
				ref := read(op{name: "typeRef"}).u1
				if ref == 3 || ref == 5 {
					read(op{name: "key"})
				}
			case 8:
				n := read(op{name: "len"}).u1
				for k := uint64(0); k < n && ok(); k++ {
					read(op{name: "any"})
				}
			case 9:
				read(op{name: "string"})
				read(op{name: "any"})
			default:
				rest.Failf("unknown content ref %d", info&0x1f)
			}
		}
	}
	numClients = restUint()
	for i := uint64(0); i < numClients && ok(); i++ {
		read(op{name: "dsReset"})
		restUint() // client
		n := restUint()
		for j := uint64(0); j < n && ok(); j++ {
			read(op{name: "dsClock"})
			read(op{name: "dsLen"})
		}
	}
	if err := dec.Err(); err != nil {
		return ops, false, err
	}
	return ops, len(ops) < limit, nil
}

type updatesFixture struct {
	Ops []struct {
		Ops []json.RawMessage `json:"ops"`
		V1  string            `json:"v1"`
		V2  string            `json:"v2"`
	} `json:"ops"`
	Docs []struct {
		Name string `json:"name"`
		V1   string `json:"v1"`
		V2   string `json:"v2"`
	} `json:"docs"`
}

func parseOps(t testing.TB, raw []json.RawMessage) []op {
	var ops []op
	for _, r := range raw {
		var parts []json.RawMessage
		if err := json.Unmarshal(r, &parts); err != nil {
			t.Fatal(err)
		}
		var o op
		_ = json.Unmarshal(parts[0], &o.name)
		num := func(i int) uint64 {
			var n uint64
			if err := json.Unmarshal(parts[i], &n); err != nil {
				t.Fatalf("op %s: %v", r, err)
			}
			return n
		}
		str := func(i int) string {
			var s string
			_ = json.Unmarshal(parts[i], &s)
			return s
		}
		switch o.name {
		case "leftID", "rightID":
			o.u1, o.u2 = num(1), num(2)
		case "client", "info", "typeRef", "len", "dsClock", "dsLen":
			o.u1 = num(1)
		case "parentInfo":
			_ = json.Unmarshal(parts[1], &o.b)
		case "string", "key":
			o.s = string(unb64(t, str(1)))
		case "any", "json":
			o.v = untag(t, parts[1])
		case "buf":
			o.buf = unb64(t, str(1))
		case "dsReset":
		default:
			t.Fatalf("unknown op %s", r)
		}
		ops = append(ops, o)
	}
	return ops
}

// TestUpdateCodersGolden replays op sequences recorded with yjs's UpdateEncoderV1/V2 on the Go
// encoders (bytes must match) and reads them back with the Go decoders.
func TestUpdateCodersGolden(t *testing.T) {
	var fx updatesFixture
	loadFixture(t, "updates.json", &fx)
	for i, c := range fx.Ops {
		ops := parseOps(t, c.Ops)
		for _, v := range []struct {
			name string
			enc  UpdateEncoder
			want []byte
			dec  func([]byte) UpdateDecoder
		}{
			{"v1", NewUpdateEncoderV1(), unb64(t, c.V1), func(b []byte) UpdateDecoder { return NewUpdateDecoderV1(b) }},
			{"v2", NewUpdateEncoderV2(), unb64(t, c.V2), func(b []byte) UpdateDecoder { return NewUpdateDecoderV2(b) }},
		} {
			replay(v.enc, ops)
			if got := v.enc.Bytes(); !bytes.Equal(got, v.want) {
				t.Errorf("ops %d %s: encoded %x, yjs %x", i, v.name, got, v.want)
			}
			dec := v.dec(v.want)
			for j, o := range ops {
				want := o
				if o.name == "json" && v.name == "v1" {
					// V1 stores JSON text: compare with what JSON.parse(JSON.stringify(x)) gives.
					s, _ := StringifyJSON(o.v)
					want.v, _ = ParseJSON(s)
				}
				if got := readOp(dec, o); !equalOp(got, want) || dec.Err() != nil {
					t.Errorf("ops %d %s: read %d: %v (%v), want %v", i, v.name, j, got, dec.Err(), want)
					break
				}
			}
		}
	}
}

// TestUpdateDocsGolden walks real Yjs updates (all struct and content kinds, V1 and V2) with the
// Go decoders, then replays what was read on the Go encoders: the bytes must be Yjs's exactly.
func TestUpdateDocsGolden(t *testing.T) {
	var fx updatesFixture
	loadFixture(t, "updates.json", &fx)
	for _, d := range fx.Docs {
		for _, v2 := range []bool{false, true} {
			var in []byte
			var dec UpdateDecoder
			var enc UpdateEncoder
			if v2 {
				in = unb64(t, d.V2)
				dec, enc = NewUpdateDecoderV2(in), NewUpdateEncoderV2()
			} else {
				in = unb64(t, d.V1)
				dec, enc = NewUpdateDecoderV1(in), NewUpdateEncoderV1()
			}
			ops, complete, err := walkUpdate(dec, 1<<20)
			if err != nil || !complete {
				t.Errorf("%s v2=%v: walk: %v (complete %v)", d.Name, v2, err, complete)
				continue
			}
			if dec.RestDecoder().HasContent() {
				t.Errorf("%s v2=%v: %d bytes left", d.Name, v2, dec.RestDecoder().Remaining())
			}
			replay(enc, ops)
			if got := enc.Bytes(); !bytes.Equal(got, in) {
				t.Errorf("%s v2=%v: re-encoded\n%x\nyjs\n%x", d.Name, v2, got, in)
			}
		}
	}
}

func TestUpdateDecoderV2Malformed(t *testing.T) {
	for _, in := range [][]byte{nil, {0}, {0, 5, 1}, {0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}} {
		if d := NewUpdateDecoderV2(in); d.Err() == nil {
			t.Errorf("header %x accepted", in)
		}
	}
	// A valid header with empty columns: reading a column is an error, not a panic.
	e := NewUpdateEncoderV2()
	e.RestEncoder().WriteVarUint(0)
	d := NewUpdateDecoderV2(e.Bytes())
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
	if d.RestDecoder().ReadVarUint() != 0 || d.RestDecoder().HasContent() {
		t.Errorf("rest stream")
	}
	d.ReadKey()
	d.ReadLeftID()
	if d.Err() == nil {
		t.Errorf("reading empty columns succeeded")
	}
	// Negative clocks in a clock column are rejected.
	var col Encoder
	col.WriteVarInt(-6) // diff -3
	var hdr Encoder
	hdr.WriteVarUint(0)
	hdr.WriteVarUint8Array(nil)
	hdr.WriteVarUint8Array([]byte{1}) // client 1
	hdr.WriteVarUint8Array(col.Bytes())
	for range 6 {
		hdr.WriteVarUint8Array(nil)
	}
	d = NewUpdateDecoderV2(hdr.Bytes())
	if c, k := d.ReadLeftID(); d.Err() == nil {
		t.Errorf("negative clock read as %d,%d", c, k)
	}
}

// TestReadKeyCache: Yjs's writer never reuses key clocks, but its reader resolves a key clock
// below the number of keys read so far to that earlier key; so must ours.
func TestReadKeyCache(t *testing.T) {
	kc := NewIntDiffOptRleEncoder()
	for _, c := range []int64{0, 1, 0, 1, 2} {
		kc.Write(c)
	}
	strs := NewStringEncoder()
	for _, s := range []string{"bold", "italic", "href"} {
		strs.Write(s)
	}
	var hdr Encoder
	hdr.WriteVarUint(0)
	hdr.WriteVarUint8Array(kc.Bytes())
	for range 4 {
		hdr.WriteVarUint8Array(nil)
	}
	hdr.WriteVarUint8Array(strs.Bytes())
	for range 3 {
		hdr.WriteVarUint8Array(nil)
	}
	d := NewUpdateDecoderV2(hdr.Bytes())
	for i, want := range []string{"bold", "italic", "bold", "italic", "href"} {
		if got := d.ReadKey(); got != want || d.Err() != nil {
			t.Errorf("key %d = %q (%v), want %q", i, got, d.Err(), want)
		}
	}
}

func TestDSEncoderV2Misuse(t *testing.T) {
	e := NewDSEncoderV2()
	e.WriteDsClock(5)
	e.WriteDsLen(0)
	if e.Err() == nil {
		t.Errorf("zero length not reported")
	}
	e = NewDSEncoderV2()
	e.WriteDsClock(5)
	e.WriteDsLen(2)
	e.WriteDsClock(6)
	if e.Err() == nil {
		t.Errorf("overlapping range not reported")
	}
	// Round trip of a proper delete set through both formats.
	for _, v2 := range []bool{false, true} {
		var enc DSEncoder = NewDSEncoderV1()
		if v2 {
			enc = NewDSEncoderV2()
		}
		ranges := [][2]uint64{{0, 3}, {5, 1}, {100, 20}}
		enc.RestEncoder().WriteVarUint(1)
		enc.ResetDsCurVal()
		enc.RestEncoder().WriteVarUint(42)
		enc.RestEncoder().WriteVarUint(uint64(len(ranges)))
		for _, r := range ranges {
			enc.WriteDsClock(r[0])
			enc.WriteDsLen(r[1])
		}
		var dec DSDecoder = NewDSDecoderV1(enc.Bytes())
		if v2 {
			dec = NewDSDecoderV2(enc.Bytes())
		}
		rest := dec.RestDecoder()
		if rest.ReadVarUint() != 1 {
			t.Fatal("clients")
		}
		dec.ResetDsCurVal()
		if rest.ReadVarUint() != 42 || rest.ReadVarUint() != 3 {
			t.Fatal("client header")
		}
		for _, r := range ranges {
			if c, l := dec.ReadDsClock(), dec.ReadDsLen(); c != r[0] || l != r[1] {
				t.Errorf("v2=%v: range %d,%d want %v", v2, c, l, r)
			}
		}
		if dec.Err() != nil || rest.HasContent() {
			t.Errorf("v2=%v: %v", v2, dec.Err())
		}
	}
}

func updateSeeds(f *testing.F, v2 bool) {
	var fx updatesFixture
	loadFixture(f, "updates.json", &fx)
	for _, d := range fx.Docs {
		if v2 {
			f.Add(unb64(f, d.V2))
		} else {
			f.Add(unb64(f, d.V1))
		}
	}
}

// fuzzUpdate: reading never panics; whatever reads completely re-encodes to bytes that read back
// to the same ops and re-encode identically.
func fuzzUpdate(t *testing.T, in []byte, v2 bool) {
	newDec := func(b []byte) UpdateDecoder {
		if v2 {
			return NewUpdateDecoderV2(b)
		}
		return NewUpdateDecoderV1(b)
	}
	newEnc := func() UpdateEncoder {
		if v2 {
			return NewUpdateEncoderV2()
		}
		return NewUpdateEncoderV1()
	}
	const limit = 20000
	// Setting up the decoder reads the V2 columns: no more than the string column's text.
	allocbound.Check(t, "decoder", len(in), stringColumnBound, func() { _ = newDec(in) })
	ops, complete, err := walkUpdate(newDec(in), limit)
	if err != nil || !complete {
		return
	}
	enc := newEnc()
	replay(enc, ops)
	b1 := enc.Bytes()
	ops2, complete, err := walkUpdate(newDec(b1), limit)
	if err != nil || !complete {
		t.Fatalf("re-encoded update unreadable: %v (complete %v)\nin  %x\nout %x", err, complete, in, b1)
	}
	if len(ops2) != len(ops) {
		t.Fatalf("%d ops, then %d", len(ops), len(ops2))
	}
	enc2 := newEnc()
	replay(enc2, ops2)
	if b2 := enc2.Bytes(); !bytes.Equal(b1, b2) {
		t.Fatalf("unstable encoding:\n%x\n%x", b1, b2)
	}
}

func FuzzUpdateDecoderV1(f *testing.F) {
	updateSeeds(f, false)
	f.Fuzz(func(t *testing.T, in []byte) { fuzzUpdate(t, in, false) })
}

func FuzzUpdateDecoderV2(f *testing.F) {
	updateSeeds(f, true)
	f.Fuzz(func(t *testing.T, in []byte) { fuzzUpdate(t, in, true) })
}
