// Package encoding implements the lib0 binary encoding used by Yjs and y-protocols: variable-length
// integers, strings, byte arrays, floats, the Any value format, the run-length encoders of the V2
// update format, and the V1/V2 update encoders and decoders that the crdt package writes structs
// with.
//
// Decoders keep a sticky error: once a read fails every later read returns a zero value and Err
// reports the first failure, so hot decoding loops stay branch-light. Callers must check Err inside
// any loop whose trip count came from the input.
package encoding

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrUnexpectedEOF is reported when input ends in the middle of a value.
var ErrUnexpectedEOF = errors.New("encoding: unexpected end of input")

// ErrOverflow is reported when a variable-length integer does not fit in 53 bits (the largest
// integer a JavaScript number holds exactly) or an encoded length exceeds the remaining input.
var ErrOverflow = errors.New("encoding: integer overflow")

// Encoder appends lib0-encoded values to a growing byte slice.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an empty encoder.
func NewEncoder() *Encoder { return &Encoder{buf: make([]byte, 0, 64)} }

// Bytes returns the encoded bytes. The slice aliases the encoder's buffer.
func (e *Encoder) Bytes() []byte { return e.buf }

// Grow makes room for n more bytes, so that writing a large update of a known size does not
// reallocate (and leave behind) a growing buffer at every step.
func (e *Encoder) Grow(n int) { e.buf = slices.Grow(e.buf, n) }

// Len returns the number of bytes written so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the encoder, keeping its buffer.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// WriteUint8 appends one byte.
func (e *Encoder) WriteUint8(b uint8) { e.buf = append(e.buf, b) }

// WriteVarUint appends an unsigned LEB128 integer (7 bits a byte, high bit = more follows).
func (e *Encoder) WriteVarUint(n uint64) {
	for n > 0x7f {
		e.buf = append(e.buf, byte(n)|0x80)
		n >>= 7
	}
	e.buf = append(e.buf, byte(n))
}

// WriteVarInt appends a signed lib0 var-int: the first byte holds a continuation bit, a sign bit and
// 6 value bits; the following bytes hold 7 value bits each. negative distinguishes -0 from 0, as
// lib0 does for JavaScript's negative zero.
func (e *Encoder) WriteVarInt(n int64) { e.writeVarIntSign(absU(n), n < 0) }

func absU(n int64) uint64 {
	if n < 0 {
		return uint64(-n)
	}
	return uint64(n)
}

func (e *Encoder) writeVarIntSign(abs uint64, negative bool) {
	b := byte(abs & 0x3f)
	if negative {
		b |= 0x40
	}
	if abs > 0x3f {
		b |= 0x80
	}
	e.buf = append(e.buf, b)
	abs >>= 6
	for abs > 0 {
		b := byte(abs & 0x7f)
		abs >>= 7
		if abs > 0 {
			b |= 0x80
		}
		e.buf = append(e.buf, b)
	}
}

// WriteVarIntNegZero writes JavaScript's -0 the way lib0 does (sign bit set, value zero).
func (e *Encoder) WriteVarIntNegZero() { e.writeVarIntSign(0, true) }

// WriteVarString appends a length-prefixed UTF-8 string.
func (e *Encoder) WriteVarString(s string) {
	e.WriteVarUint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// WriteVarUint8Array appends a length-prefixed byte array.
func (e *Encoder) WriteVarUint8Array(b []byte) {
	e.WriteVarUint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

// WriteUint8Array appends raw bytes without a length prefix.
func (e *Encoder) WriteUint8Array(b []byte) { e.buf = append(e.buf, b...) }

// WriteFloat32 appends a big-endian IEEE-754 float32.
func (e *Encoder) WriteFloat32(f float32) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, math.Float32bits(f))
}

// WriteFloat64 appends a big-endian IEEE-754 float64.
func (e *Encoder) WriteFloat64(f float64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

// WriteBigInt64 appends a big-endian signed 64-bit integer.
func (e *Encoder) WriteBigInt64(n int64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(n))
}

// Decoder reads lib0-encoded values from a byte slice. See the package comment for its sticky
// error.
type Decoder struct {
	buf []byte
	pos int
	err error
}

// NewDecoder returns a decoder over b. b is not copied; byte slices returned by the decoder alias
// it.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes d read b from its start, with no error, so that one decoder reads many inputs.
func (d *Decoder) Reset(b []byte) { d.buf, d.pos, d.err = b, 0, nil }

// Err returns the first error the decoder met, or nil.
func (d *Decoder) Err() error { return d.err }

// Fail records err as the decoder's error unless one is already recorded. Use it to report
// semantic errors (an unknown tag, say) so that they stop the surrounding loops too.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Failf is Fail with a formatted error.
func (d *Decoder) Failf(format string, args ...any) { d.Fail(fmt.Errorf(format, args...)) }

// Remaining returns how many unread bytes are left (0 after an error).
func (d *Decoder) Remaining() int {
	if d.err != nil {
		return 0
	}
	return len(d.buf) - d.pos
}

// HasContent reports whether unread bytes remain and no error occurred.
func (d *Decoder) HasContent() bool { return d.err == nil && d.pos < len(d.buf) }

// Pos returns the read offset.
func (d *Decoder) Pos() int { return d.pos }

// ReadUint8 reads one byte.
func (d *Decoder) ReadUint8() uint8 {
	if d.err != nil {
		return 0
	}
	if d.pos >= len(d.buf) {
		d.err = ErrUnexpectedEOF
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

// ReadVarUint reads an unsigned LEB128 integer of at most 53 bits.
func (d *Decoder) ReadVarUint() uint64 {
	if d.err != nil {
		return 0
	}
	var n uint64
	var shift uint
	for {
		if d.pos >= len(d.buf) {
			d.err = ErrUnexpectedEOF
			return 0
		}
		b := d.buf[d.pos]
		d.pos++
		n |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return n
		}
		shift += 7
		if shift > 53 {
			d.err = ErrOverflow
			return 0
		}
	}
}

// ReadVarIntSign reads a signed lib0 var-int. negZero reports JavaScript's -0 (sign bit with
// value 0).
func (d *Decoder) ReadVarIntSign() (n int64, negZero bool) {
	if d.err != nil {
		return 0, false
	}
	if d.pos >= len(d.buf) {
		d.err = ErrUnexpectedEOF
		return 0, false
	}
	b := d.buf[d.pos]
	d.pos++
	v := uint64(b & 0x3f)
	neg := b&0x40 != 0
	shift := uint(6)
	for b&0x80 != 0 {
		if d.pos >= len(d.buf) {
			d.err = ErrUnexpectedEOF
			return 0, false
		}
		b = d.buf[d.pos]
		d.pos++
		v |= uint64(b&0x7f) << shift
		shift += 7
		if shift > 53+7 {
			d.err = ErrOverflow
			return 0, false
		}
	}
	if v > 1<<53 {
		d.err = ErrOverflow
		return 0, false
	}
	if neg {
		return -int64(v), v == 0
	}
	return int64(v), false
}

// ReadVarInt reads a signed lib0 var-int (-0 reads as 0).
func (d *Decoder) ReadVarInt() int64 {
	n, _ := d.ReadVarIntSign()
	return n
}

// ReadUint8Array reads n raw bytes. The result aliases the input.
func (d *Decoder) ReadUint8Array(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)-d.pos) {
		d.err = ErrUnexpectedEOF
		return nil
	}
	b := d.buf[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return b
}

// ReadVarUint8Array reads a length-prefixed byte array. The result aliases the input.
func (d *Decoder) ReadVarUint8Array() []byte { return d.ReadUint8Array(d.ReadVarUint()) }

// ReadTail returns all unread bytes.
func (d *Decoder) ReadTail() []byte {
	if d.err != nil {
		return nil
	}
	b := d.buf[d.pos:]
	d.pos = len(d.buf)
	return b
}

// ReadVarString reads a length-prefixed UTF-8 string. Invalid UTF-8 is replaced with U+FFFD, as
// the TextDecoder that lib0 uses does.
func (d *Decoder) ReadVarString() string {
	b := d.ReadVarUint8Array()
	if utf8.Valid(b) {
		return string(b)
	}
	return ToValidUTF8(b)
}

// ReadFloat32 reads a big-endian float32.
func (d *Decoder) ReadFloat32() float32 {
	b := d.ReadUint8Array(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b))
}

// ReadFloat64 reads a big-endian float64.
func (d *Decoder) ReadFloat64() float64 {
	b := d.ReadUint8Array(8)
	if b == nil {
		return 0
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b))
}

// ReadBigInt64 reads a big-endian signed 64-bit integer.
func (d *Decoder) ReadBigInt64() int64 {
	b := d.ReadUint8Array(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// ToValidUTF8 decodes b the way a WHATWG TextDecoder (what lib0 reads strings with) does in
// replacement mode: each maximal subpart of an ill-formed sequence becomes one U+FFFD. That is not
// what utf8.DecodeRune's one-error-per-byte gives: "\xE2\x82A" is one U+FFFD then "A" for a
// TextDecoder. Matching it keeps string lengths (and so UTF-16 positions) equal to a JavaScript
// peer's for the same bytes.
func ToValidUTF8(b []byte) string {
	// Two passes: the first sizes the result, so that it is allocated once (at most three bytes
	// per input byte, when every byte is a lone invalid one) rather than grown by appends.
	n := 0
	walkUTF8(b, func(valid []byte) { n += len(valid) }, func() { n += len(string(utf8.RuneError)) })
	var out strings.Builder
	out.Grow(n)
	walkUTF8(b, func(valid []byte) { out.Write(valid) }, func() { out.WriteRune(utf8.RuneError) })
	return out.String()
}

// walkUTF8 splits b into runs of valid UTF-8, passed to valid, and maximal subparts of
// ill-formed sequences, each reported by one call of invalid.
func walkUTF8(b []byte, valid func([]byte), invalid func()) {
	start := 0 // of the valid run not yet passed on
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		// Ill-formed: skip the lead byte and as many continuation bytes as could still have
		// completed a valid sequence (the WHATWG UTF-8 decoder's bounds).
		if start < i {
			valid(b[start:i])
		}
		i += invalidSubpartLen(b[i:])
		start = i
		invalid()
	}
	if start < len(b) {
		valid(b[start:])
	}
}

// invalidSubpartLen returns the length (>= 1) of the maximal subpart of an ill-formed UTF-8
// sequence at the start of b.
func invalidSubpartLen(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c >= 0xE0 && c <= 0xEF:
		need = 2
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F
		}
	case c >= 0xF0 && c <= 0xF4:
		need = 3
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
