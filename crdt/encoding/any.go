package encoding

import (
	"math"
)

// Undefined is JavaScript's undefined as an Any value. It is distinct from nil (null): lib0 gives
// them different tags and JSON.stringify treats them differently.
type Undefined struct{}

// MaxNestingDepth bounds how deeply arrays and objects may nest in Any values and JSON. Decoders
// reject deeper input so a few bytes of hostile input cannot exhaust the stack.
const MaxNestingDepth = 1000

// Any tags, as lib0 writes them (127 - index into its reader table).
const (
	tagUndefined = 127
	tagNull      = 126
	tagInteger   = 125
	tagFloat32   = 124
	tagFloat64   = 123
	tagBigInt    = 122
	tagFalse     = 121
	tagTrue      = 120
	tagString    = 119
	tagObject    = 118
	tagArray     = 117
	tagBytes     = 116
)

// WriteAny appends v in lib0's Any format (encoding.writeAny), byte for byte as lib0 writes the
// JavaScript value that v stands for:
//
//   - nil is null, Undefined{} is undefined, bool, string;
//   - float64, float32 and the integer types int, int8-int32, uint, uint8-uint32 are JavaScript
//     numbers: integers up to 2^31-1 in magnitude (including -0) as var-ints, values a float32
//     holds exactly as float32, everything else as float64 (NaN as the canonical quiet NaN that
//     JavaScript engines write, whatever its payload);
//   - int64 and uint64 are BigInts (a uint64 above 2^63-1 wraps, as BigInt64 storage does);
//   - []byte is a Uint8Array, []any an array;
//   - *Object and Object are objects in their key order; map[string]any is an object with array
//     index keys ascending, then the other keys sorted.
//
// Any other type is written as undefined, the way lib0 treats functions and symbols. Nesting
// beyond MaxNestingDepth is written as undefined too, so a cyclic value cannot loop forever.
func (e *Encoder) WriteAny(v any) { e.writeAny(v, 0) }

func (e *Encoder) writeAny(v any, depth int) {
	if depth > MaxNestingDepth {
		e.WriteUint8(tagUndefined)
		return
	}
	switch x := v.(type) {
	case nil:
		e.WriteUint8(tagNull)
	case Undefined:
		e.WriteUint8(tagUndefined)
	case bool:
		if x {
			e.WriteUint8(tagTrue)
		} else {
			e.WriteUint8(tagFalse)
		}
	case string:
		e.WriteUint8(tagString)
		e.WriteVarString(x)
	case float64:
		e.writeNumber(x)
	case float32:
		e.writeNumber(float64(x))
	case int:
		e.writeNumber(float64(x))
	case int8:
		e.writeNumber(float64(x))
	case int16:
		e.writeNumber(float64(x))
	case int32:
		e.writeNumber(float64(x))
	case uint:
		e.writeNumber(float64(x))
	case uint8:
		e.writeNumber(float64(x))
	case uint16:
		e.writeNumber(float64(x))
	case uint32:
		e.writeNumber(float64(x))
	case int64:
		e.WriteUint8(tagBigInt)
		e.WriteBigInt64(x)
	case uint64:
		e.WriteUint8(tagBigInt)
		e.WriteBigInt64(int64(x))
	case []byte:
		e.WriteUint8(tagBytes)
		e.WriteVarUint8Array(x)
	case []any:
		e.WriteUint8(tagArray)
		e.WriteVarUint(uint64(len(x)))
		for _, el := range x {
			e.writeAny(el, depth+1)
		}
	case *Object:
		if x == nil {
			e.WriteUint8(tagNull)
			return
		}
		e.WriteUint8(tagObject)
		e.WriteVarUint(uint64(x.Len()))
		x.Range(func(k string, el any) bool {
			e.WriteVarString(k)
			e.writeAny(el, depth+1)
			return true
		})
	case Object:
		e.writeAny(&x, depth)
	case map[string]any:
		if x == nil {
			// A nil map is still an (empty) object: the Go zero value should not turn into null.
			e.WriteUint8(tagObject)
			e.WriteVarUint(0)
			return
		}
		e.WriteUint8(tagObject)
		e.WriteVarUint(uint64(len(x)))
		for _, k := range mapKeysJSOrder(x) {
			e.WriteVarString(k)
			e.writeAny(x[k], depth+1)
		}
	default:
		e.WriteUint8(tagUndefined)
	}
}

// writeNumber writes a JavaScript number the way lib0's writeAny picks its representation.
func (e *Encoder) writeNumber(f float64) {
	switch {
	case f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32: // false for NaN and ±Inf
		e.WriteUint8(tagInteger)
		e.writeVarIntSign(uint64(math.Abs(f)), math.Signbit(f))
	case float64(float32(f)) == f: // includes ±Inf, excludes NaN
		e.WriteUint8(tagFloat32)
		e.WriteFloat32(float32(f))
	case f != f:
		// Go's math.NaN() has a payload bit set; JavaScript engines write the canonical quiet NaN.
		e.WriteUint8(tagFloat64)
		e.WriteFloat64(math.Float64frombits(canonicalNaN))
	default:
		e.WriteUint8(tagFloat64)
		e.WriteFloat64(f)
	}
}

// canonicalNaN is the bit pattern V8 writes for NaN.
const canonicalNaN = 0x7FF8000000000000

// ReadAny reads one lib0 Any value (decoding.readAny). Numbers come back as float64 (-0
// preserved), BigInts as int64, objects as *Object, Uint8Arrays as a copied []byte, null as nil
// and undefined as Undefined{}. A "__proto__" key is dropped, as assigning it on a JavaScript
// object sets the prototype instead of adding a key, so no JavaScript peer would see it.
//
// Unknown tags, truncated input and nesting deeper than MaxNestingDepth set the decoder's error
// and return nil.
func (d *Decoder) ReadAny() any { return d.readAny(0) }

func (d *Decoder) readAny(depth int) any {
	v := d.readAnyValue(depth)
	if d.err != nil {
		return nil
	}
	return v
}

func (d *Decoder) readAnyValue(depth int) any {
	tag := d.ReadUint8()
	if d.err != nil {
		return nil
	}
	switch tag {
	case tagUndefined:
		return Undefined{}
	case tagNull:
		return nil
	case tagInteger:
		n, negZero := d.ReadVarIntSign()
		if negZero {
			return math.Copysign(0, -1)
		}
		return float64(n)
	case tagFloat32:
		return float64(d.ReadFloat32())
	case tagFloat64:
		return d.ReadFloat64()
	case tagBigInt:
		return d.ReadBigInt64()
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagString:
		return d.ReadVarString()
	case tagObject:
		if depth >= MaxNestingDepth {
			d.Failf("encoding: Any value nested deeper than %d", MaxNestingDepth)
			return nil
		}
		n := d.ReadVarUint()
		// Each entry takes at least two bytes (key length, value tag).
		if d.err == nil && n > uint64(d.Remaining())/2 {
			d.Fail(ErrUnexpectedEOF)
		}
		if d.err != nil {
			return nil
		}
		o := &Object{}
		for i := uint64(0); i < n; i++ {
			k := d.ReadVarString()
			v := d.readAny(depth + 1)
			if d.err != nil {
				return nil
			}
			if k != "__proto__" {
				o.Set(k, v)
			}
		}
		return o
	case tagArray:
		if depth >= MaxNestingDepth {
			d.Failf("encoding: Any value nested deeper than %d", MaxNestingDepth)
			return nil
		}
		n := d.ReadVarUint()
		if d.err == nil && n > uint64(d.Remaining()) {
			d.Fail(ErrUnexpectedEOF)
		}
		if d.err != nil {
			return nil
		}
		// Grow by append rather than trusting n: nested arrays that each claim the whole input
		// would otherwise allocate quadratically before failing. The first capacity is small
		// too: at 64 slots, arrays nested to the depth limit, each claiming the rest of the
		// input, allocated 1.1 MB from 3 KB.
		arr := make([]any, 0, min(n, 8))
		for i := uint64(0); i < n; i++ {
			v := d.readAny(depth + 1)
			if d.err != nil {
				return nil
			}
			arr = append(arr, v)
		}
		return arr
	case tagBytes:
		b := d.ReadVarUint8Array()
		if d.err != nil {
			return nil
		}
		return append(make([]byte, 0, len(b)), b...)
	default:
		d.Failf("encoding: unknown Any tag %d at offset %d", tag, d.pos-1)
		return nil
	}
}
