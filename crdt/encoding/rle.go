package encoding

import (
	"fmt"
	"unicode/utf8"
)

// The column coders of lib0 that Yjs's V2 update format stores each struct field in. Encoders
// produce exactly lib0's toUint8Array output. Bytes does not consume pending state (lib0's
// toUint8Array may only be called once; here it may be called any number of times, and writing
// may continue afterwards).
//
// Decoders are stricter than lib0's, which read past the end of a column as zeros (or undefined):
// a Yjs encoder never writes fewer values than its decoder reads, so running out is reported as
// an error. The one exception lib0's format itself relies on is RleDecoder: the last run has no
// count and repeats forever. Run counts are kept as numbers, never expanded, so a count of 2^53
// costs nothing; callers bound their own loops (see the crdt package's struct budget).

// maxSafeInt is JavaScript's Number.MAX_SAFE_INTEGER + 1; larger values lose precision in a
// JavaScript peer, so decoders reject them rather than disagree about them.
const maxSafeInt = 1 << 53

// RleEncoder is lib0's RleEncoder with writeUint8: each value is written once, followed by
// (repeat count - 1) as a var-uint when a different value comes along. The last run's count is
// never written.
type RleEncoder struct {
	enc   Encoder
	s     uint8
	count uint64
}

// NewRleEncoder returns an empty encoder.
func NewRleEncoder() *RleEncoder { return &RleEncoder{} }

// Write appends v.
func (e *RleEncoder) Write(v uint8) {
	if e.count > 0 && e.s == v {
		e.count++
		return
	}
	if e.count > 0 {
		e.enc.WriteVarUint(e.count - 1)
	}
	e.count = 1
	e.enc.WriteUint8(v)
	e.s = v
}

// Bytes returns the encoding (lib0 toUint8Array). The slice aliases the encoder's buffer.
func (e *RleEncoder) Bytes() []byte { return e.enc.Bytes() }

// RleDecoder reads what RleEncoder writes.
type RleDecoder struct {
	dec   Decoder
	s     uint8
	count uint64
	last  bool // reading the final, count-less run
}

// NewRleDecoder returns a decoder over b (not copied).
func NewRleDecoder(b []byte) *RleDecoder { return &RleDecoder{dec: Decoder{buf: b}} }

// Read returns the next value.
func (d *RleDecoder) Read() uint8 {
	if d.count == 0 && !d.last {
		d.s = d.dec.ReadUint8()
		if d.dec.HasContent() {
			d.count = d.dec.ReadVarUint() + 1
		} else {
			d.last = true // the last value repeats forever
		}
		if d.dec.err != nil {
			return 0
		}
	}
	if !d.last {
		d.count--
	}
	return d.s
}

// Err returns the first error met.
func (d *RleDecoder) Err() error { return d.dec.err }

// UintOptRleEncoder is lib0's UintOptRleEncoder: a value seen once is written as a var-int; a run
// is written as the negated value (-0 for 0) followed by count - 2 as a var-uint.
type UintOptRleEncoder struct {
	enc   Encoder
	s     uint64
	count uint64
}

// NewUintOptRleEncoder returns an empty encoder.
func NewUintOptRleEncoder() *UintOptRleEncoder { return &UintOptRleEncoder{} }

// Write appends v. Like lib0 (which starts with s = 0, count = 0), leading zeros simply open a
// run of zeros.
func (e *UintOptRleEncoder) Write(v uint64) {
	if e.s == v {
		e.count++
		return
	}
	flushUintOptRle(&e.enc, e.s, e.count)
	e.count = 1
	e.s = v
}

func flushUintOptRle(enc *Encoder, s, count uint64) {
	if count == 0 {
		return
	}
	enc.writeVarIntSign(s, count > 1)
	if count > 1 {
		enc.WriteVarUint(count - 2)
	}
}

// Bytes returns the encoding including the pending run (lib0 toUint8Array), as a new slice.
func (e *UintOptRleEncoder) Bytes() []byte {
	out := Encoder{buf: append(make([]byte, 0, len(e.enc.buf)+20), e.enc.buf...)}
	flushUintOptRle(&out, e.s, e.count)
	return out.buf
}

// UintOptRleDecoder reads what UintOptRleEncoder writes.
type UintOptRleDecoder struct {
	dec   Decoder
	s     uint64
	count uint64
}

// NewUintOptRleDecoder returns a decoder over b (not copied).
func NewUintOptRleDecoder(b []byte) *UintOptRleDecoder {
	return &UintOptRleDecoder{dec: Decoder{buf: b}}
}

// Read returns the next value. Reading past the end is an error (ErrUnexpectedEOF).
func (d *UintOptRleDecoder) Read() uint64 {
	if d.count == 0 {
		n, negZero := d.dec.ReadVarIntSign()
		if d.dec.err != nil {
			return 0
		}
		d.count = 1
		if n < 0 || negZero {
			d.s = uint64(-n)
			d.count = d.dec.ReadVarUint() + 2
			if d.dec.err != nil {
				return 0
			}
		} else {
			d.s = uint64(n)
		}
	}
	d.count--
	return d.s
}

// Err returns the first error met.
func (d *UintOptRleDecoder) Err() error { return d.dec.err }

// IntDiffOptRleEncoder is lib0's IntDiffOptRleEncoder: it writes differences between consecutive
// values, diff*2 + (1 if a run count follows) as a var-int, then count - 2 for runs of equal
// differences.
type IntDiffOptRleEncoder struct {
	enc   Encoder
	s     int64
	diff  int64
	count uint64
}

// NewIntDiffOptRleEncoder returns an empty encoder (previous value 0).
func NewIntDiffOptRleEncoder() *IntDiffOptRleEncoder { return &IntDiffOptRleEncoder{} }

// Write appends v.
func (e *IntDiffOptRleEncoder) Write(v int64) {
	if e.diff == v-e.s {
		e.s = v
		e.count++
		return
	}
	flushIntDiffOptRle(&e.enc, e.diff, e.count)
	e.count = 1
	e.diff = v - e.s
	e.s = v
}

func flushIntDiffOptRle(enc *Encoder, diff int64, count uint64) {
	if count == 0 {
		return
	}
	encoded := diff * 2
	if count > 1 {
		encoded++
	}
	enc.WriteVarInt(encoded)
	if count > 1 {
		enc.WriteVarUint(count - 2)
	}
}

// Bytes returns the encoding including the pending run (lib0 toUint8Array), as a new slice.
func (e *IntDiffOptRleEncoder) Bytes() []byte {
	out := Encoder{buf: append(make([]byte, 0, len(e.enc.buf)+20), e.enc.buf...)}
	flushIntDiffOptRle(&out, e.diff, e.count)
	return out.buf
}

// IntDiffOptRleDecoder reads what IntDiffOptRleEncoder writes.
type IntDiffOptRleDecoder struct {
	dec   Decoder
	s     int64
	diff  int64
	count uint64
}

// NewIntDiffOptRleDecoder returns a decoder over b (not copied).
func NewIntDiffOptRleDecoder(b []byte) *IntDiffOptRleDecoder {
	return &IntDiffOptRleDecoder{dec: Decoder{buf: b}}
}

// Read returns the next value. Reading past the end, or a running value beyond ±2^53 (where a
// JavaScript peer would lose precision), is an error.
func (d *IntDiffOptRleDecoder) Read() int64 {
	if d.dec.err != nil {
		return 0
	}
	if d.count == 0 {
		v := d.dec.ReadVarInt()
		if d.dec.err != nil {
			return 0
		}
		d.diff = v >> 1 // floor(v / 2), as lib0 computes it
		d.count = 1
		if v&1 != 0 {
			d.count = d.dec.ReadVarUint() + 2
			if d.dec.err != nil {
				return 0
			}
		}
	}
	s := d.s + d.diff
	if s > maxSafeInt || s < -maxSafeInt {
		d.dec.Fail(ErrOverflow)
		return 0
	}
	d.s = s
	d.count--
	return d.s
}

// Err returns the first error met.
func (d *IntDiffOptRleDecoder) Err() error { return d.dec.err }

// StringEncoder is lib0's StringEncoder: all strings concatenated into one var-string, followed by
// their lengths in UTF-16 units through a UintOptRleEncoder.
type StringEncoder struct {
	s    []byte
	lens UintOptRleEncoder
}

// NewStringEncoder returns an empty encoder.
func NewStringEncoder() *StringEncoder { return &StringEncoder{} }

// Write appends s. Invalid UTF-8 is first replaced as a JavaScript peer would see it, so that the
// recorded UTF-16 length matches the bytes written.
func (e *StringEncoder) Write(s string) {
	if !utf8.ValidString(s) {
		s = ToValidUTF8([]byte(s))
	}
	e.s = append(e.s, s...)
	e.lens.Write(uint64(UTF16Len(s)))
}

// Bytes returns the encoding (lib0 toUint8Array) as a new slice.
func (e *StringEncoder) Bytes() []byte {
	lens := e.lens.Bytes()
	var out Encoder
	out.buf = make([]byte, 0, len(e.s)+len(lens)+10)
	out.WriteVarUint(uint64(len(e.s)))
	out.buf = append(out.buf, e.s...)
	out.buf = append(out.buf, lens...)
	return out.buf
}

// StringDecoder reads what StringEncoder writes. Pieces are cut from the concatenation by UTF-16
// length; a cut through a surrogate pair yields U+FFFD on both sides, as a JavaScript peer's
// lone surrogates would be encoded.
type StringDecoder struct {
	lens UintOptRleDecoder
	cur  utf16Cursor
	err  error
}

// NewStringDecoder returns a decoder over b. The concatenated string is read (and copied) at
// once; its errors show in Err.
func NewStringDecoder(b []byte) *StringDecoder {
	d := &StringDecoder{}
	d.lens.dec.buf = b
	d.cur.s = d.lens.dec.ReadVarString()
	return d
}

// Read returns the next string. Asking for more units than are left is an error.
func (d *StringDecoder) Read() string {
	if d.Err() != nil {
		return ""
	}
	n := d.lens.Read()
	if d.lens.Err() != nil {
		return ""
	}
	if n > uint64(len(d.cur.s)-d.cur.off)*2 { // cheap bound before walking the string
		d.err = fmt.Errorf("encoding: string column: length %d exceeds the remaining text", n)
		return ""
	}
	s, ok := d.cur.next(int(n))
	if !ok {
		d.err = fmt.Errorf("encoding: string column: length %d exceeds the remaining text", n)
		return ""
	}
	return s
}

// Err returns the first error met.
func (d *StringDecoder) Err() error {
	if d.err != nil {
		return d.err
	}
	return d.lens.Err()
}
