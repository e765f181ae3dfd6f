package encoding

import (
	"errors"
	"fmt"
)

// The V2 update format (Yjs's UpdateEncoderV2/UpdateDecoderV2). Struct fields go to separate
// run-length-coded columns; the update is a feature byte (0), the nine columns as var-uint8-arrays,
// then the "rest" stream (client and struct counts, Any values, buffers, the delete set) appended
// without a length. Delete sets store clocks as differences from the end of the previous range
// and lengths minus one.

// errDsLenZero is recorded by V2 delete-set encoders for a zero length, which the format cannot
// express (Yjs throws).
var errDsLenZero = errors.New("encoding: V2 delete set range of length 0")

// DSEncoderV2 writes a V2 delete set.
type DSEncoderV2 struct {
	rest   Encoder
	dsCurr uint64
	encErr error
}

// NewDSEncoderV2 returns an empty encoder.
func NewDSEncoderV2() *DSEncoderV2 { return &DSEncoderV2{} }

// RestEncoder returns the plain stream client ids and counts go to.
func (e *DSEncoderV2) RestEncoder() *Encoder { return &e.rest }

// ResetDsCurVal starts a new client's ranges.
func (e *DSEncoderV2) ResetDsCurVal() { e.dsCurr = 0 }

// WriteDsClock writes a range's clock as the distance from the end of the previous range.
// Ranges must come sorted and disjoint; a clock before the previous range's end is recorded in Err
// (Yjs would write a corrupt number) and written as 0.
func (e *DSEncoderV2) WriteDsClock(clock uint64) {
	if clock < e.dsCurr {
		if e.encErr == nil {
			e.encErr = fmt.Errorf("encoding: V2 delete set clock %d before previous range end %d", clock, e.dsCurr)
		}
		e.rest.WriteVarUint(0)
		return
	}
	e.rest.WriteVarUint(clock - e.dsCurr)
	e.dsCurr = clock
}

// WriteDsLen writes a range's length minus one. A zero length is recorded in Err (Yjs throws) and
// written as length 1 so the stream stays readable.
func (e *DSEncoderV2) WriteDsLen(n uint64) {
	if n == 0 {
		if e.encErr == nil {
			e.encErr = errDsLenZero
		}
		n = 1
	}
	e.rest.WriteVarUint(n - 1)
	e.dsCurr += n
}

// Err reports misuse that Yjs would have thrown for (see WriteDsClock and WriteDsLen). It is not
// part of the DSEncoder interface; the output is still well-formed when it is set.
func (e *DSEncoderV2) Err() error { return e.encErr }

// Bytes returns the encoding. For a DSEncoderV2 the slice aliases the encoder's buffer.
func (e *DSEncoderV2) Bytes() []byte { return e.rest.Bytes() }

// UpdateEncoderV2 writes a V2 update.
type UpdateEncoderV2 struct {
	DSEncoderV2
	keyClock     int64
	keyClockEnc  IntDiffOptRleEncoder
	clientEnc    UintOptRleEncoder
	leftClockEnc IntDiffOptRleEncoder
	rightClock   IntDiffOptRleEncoder
	infoEnc      RleEncoder
	stringEnc    StringEncoder
	parentInfo   RleEncoder
	typeRefEnc   UintOptRleEncoder
	lenEnc       UintOptRleEncoder
}

// NewUpdateEncoderV2 returns an empty encoder.
func NewUpdateEncoderV2() *UpdateEncoderV2 { return &UpdateEncoderV2{} }

// Bytes returns the update: feature flag 0, the columns, then the rest stream. It may be called
// more than once; each call returns a new slice.
func (e *UpdateEncoderV2) Bytes() []byte {
	cols := [...][]byte{
		e.keyClockEnc.Bytes(),
		e.clientEnc.Bytes(),
		e.leftClockEnc.Bytes(),
		e.rightClock.Bytes(),
		e.infoEnc.Bytes(),
		e.stringEnc.Bytes(),
		e.parentInfo.Bytes(),
		e.typeRefEnc.Bytes(),
		e.lenEnc.Bytes(),
	}
	size := 1 + len(e.rest.buf)
	for _, c := range cols {
		size += len(c) + 8
	}
	out := Encoder{buf: make([]byte, 0, size)}
	out.WriteVarUint(0) // feature flag, reserved by Yjs
	for _, c := range cols {
		out.WriteVarUint8Array(c)
	}
	out.WriteUint8Array(e.rest.buf)
	return out.buf
}

// WriteLeftID writes an origin: client to the client column, clock to the left-clock column.
func (e *UpdateEncoderV2) WriteLeftID(client, clock uint64) {
	e.clientEnc.Write(client)
	e.leftClockEnc.Write(int64(clock))
}

// WriteRightID writes a right origin: client to the client column, clock to the right-clock
// column.
func (e *UpdateEncoderV2) WriteRightID(client, clock uint64) {
	e.clientEnc.Write(client)
	e.rightClock.Write(int64(clock))
}

// WriteClient writes a client id to the client column.
func (e *UpdateEncoderV2) WriteClient(client uint64) { e.clientEnc.Write(client) }

// WriteInfo writes a struct's info byte.
func (e *UpdateEncoderV2) WriteInfo(info uint8) { e.infoEnc.Write(info) }

// WriteString writes a string to the string column.
func (e *UpdateEncoderV2) WriteString(s string) { e.stringEnc.Write(s) }

// WriteParentInfo writes 1 if the parent is a root type named by key, else 0.
func (e *UpdateEncoderV2) WriteParentInfo(isYKey bool) {
	if isYKey {
		e.parentInfo.Write(1)
	} else {
		e.parentInfo.Write(0)
	}
}

// WriteTypeRef writes a type's kind.
func (e *UpdateEncoderV2) WriteTypeRef(ref uint8) { e.typeRefEnc.Write(uint64(ref)) }

// WriteLen writes a length.
func (e *UpdateEncoderV2) WriteLen(n uint64) { e.lenEnc.Write(n) }

// WriteAny writes an Any value to the rest stream.
func (e *UpdateEncoderV2) WriteAny(v any) { e.rest.WriteAny(v) }

// WriteBuf writes a length-prefixed byte array to the rest stream.
func (e *UpdateEncoderV2) WriteBuf(b []byte) { e.rest.WriteVarUint8Array(b) }

// WriteJSON writes v as an Any value: V2 replaced V1's JSON text with the Any encoding.
func (e *UpdateEncoderV2) WriteJSON(v any) { e.rest.WriteAny(v) }

// WriteKey writes a key. Yjs's key cache is disabled on the writing side (its keyMap is never
// filled, for compatibility with older readers), so every key gets the next key clock and goes to
// the string column; the reader still honours references to earlier keys.
func (e *UpdateEncoderV2) WriteKey(key string) {
	e.keyClockEnc.Write(e.keyClock)
	e.keyClock++
	e.stringEnc.Write(key)
}

// DSDecoderV2 reads a V2 delete set.
type DSDecoderV2 struct {
	rest   *Decoder
	dsCurr uint64
}

// NewDSDecoderV2 returns a decoder over b (not copied).
func NewDSDecoderV2(b []byte) *DSDecoderV2 { return &DSDecoderV2{rest: NewDecoder(b)} }

// NewDSDecoderV2From returns a decoder that reads from d, for a delete set embedded in a larger
// message.
func NewDSDecoderV2From(d *Decoder) *DSDecoderV2 { return &DSDecoderV2{rest: d} }

// RestDecoder returns the underlying stream.
func (d *DSDecoderV2) RestDecoder() *Decoder { return d.rest }

// ResetDsCurVal starts a new client's ranges.
func (d *DSDecoderV2) ResetDsCurVal() { d.dsCurr = 0 }

// ReadDsClock reads a range's clock. Clocks beyond 2^53 are an error.
func (d *DSDecoderV2) ReadDsClock() uint64 {
	d.dsCurr += d.rest.ReadVarUint()
	if d.dsCurr > maxSafeInt {
		d.rest.Fail(ErrOverflow)
		return 0
	}
	return d.dsCurr
}

// ReadDsLen reads a range's length (at least 1).
func (d *DSDecoderV2) ReadDsLen() uint64 {
	n := d.rest.ReadVarUint() + 1
	if d.rest.Err() != nil {
		return 0
	}
	d.dsCurr += n
	if d.dsCurr > maxSafeInt {
		d.rest.Fail(ErrOverflow)
		return 0
	}
	return n
}

// Err returns the first error met.
func (d *DSDecoderV2) Err() error { return d.rest.Err() }

// UpdateDecoderV2 reads a V2 update. The constructor reads the header and the columns; the
// remaining bytes are the rest stream, available through RestDecoder (client and struct counts
// and the delete set are read from it directly, as Yjs does).
type UpdateDecoderV2 struct {
	DSDecoderV2
	keys       []string
	keyClock   *IntDiffOptRleDecoder
	client     *UintOptRleDecoder
	leftClock  *IntDiffOptRleDecoder
	rightClock *IntDiffOptRleDecoder
	info       *RleDecoder
	str        *StringDecoder
	parentInfo *RleDecoder
	typeRef    *UintOptRleDecoder
	length     *UintOptRleDecoder
}

// NewUpdateDecoderV2 parses the header and columns of the V2 update b (not copied). Malformed
// input is reported by Err.
func NewUpdateDecoderV2(b []byte) *UpdateDecoderV2 { return NewUpdateDecoderV2From(NewDecoder(b)) }

// NewUpdateDecoderV2From parses a V2 header and columns from d, which is left positioned at the
// rest stream.
func NewUpdateDecoderV2From(d *Decoder) *UpdateDecoderV2 {
	u := &UpdateDecoderV2{DSDecoderV2: DSDecoderV2{rest: d}}
	d.ReadVarUint() // feature flag, unused by Yjs so far
	u.keyClock = NewIntDiffOptRleDecoder(d.ReadVarUint8Array())
	u.client = NewUintOptRleDecoder(d.ReadVarUint8Array())
	u.leftClock = NewIntDiffOptRleDecoder(d.ReadVarUint8Array())
	u.rightClock = NewIntDiffOptRleDecoder(d.ReadVarUint8Array())
	u.info = NewRleDecoder(d.ReadVarUint8Array())
	u.str = NewStringDecoder(d.ReadVarUint8Array())
	u.parentInfo = NewRleDecoder(d.ReadVarUint8Array())
	u.typeRef = NewUintOptRleDecoder(d.ReadVarUint8Array())
	u.length = NewUintOptRleDecoder(d.ReadVarUint8Array())
	return u
}

// Err returns the first error of the rest stream or, failing that, of a column.
func (u *UpdateDecoderV2) Err() error {
	if err := u.rest.Err(); err != nil {
		return err
	}
	cols := [...]struct {
		name string
		err  error
	}{
		{"key clock", u.keyClock.Err()},
		{"client", u.client.Err()},
		{"left clock", u.leftClock.Err()},
		{"right clock", u.rightClock.Err()},
		{"info", u.info.Err()},
		{"string", u.str.Err()},
		{"parent info", u.parentInfo.Err()},
		{"type ref", u.typeRef.Err()},
		{"length", u.length.Err()},
	}
	for _, c := range cols {
		if c.err != nil {
			return fmt.Errorf("%s column: %w", c.name, c.err)
		}
	}
	return nil
}

// clock converts a clock column value, rejecting negative ones.
func (u *UpdateDecoderV2) clock(v int64) uint64 {
	if v < 0 {
		u.rest.Failf("encoding: negative clock %d", v)
		return 0
	}
	return uint64(v)
}

// ReadLeftID reads an origin.
func (u *UpdateDecoderV2) ReadLeftID() (client, clock uint64) {
	client = u.client.Read()
	return client, u.clock(u.leftClock.Read())
}

// ReadRightID reads a right origin.
func (u *UpdateDecoderV2) ReadRightID() (client, clock uint64) {
	client = u.client.Read()
	return client, u.clock(u.rightClock.Read())
}

// ReadClient reads a client id.
func (u *UpdateDecoderV2) ReadClient() uint64 { return u.client.Read() }

// ReadInfo reads a struct's info byte.
func (u *UpdateDecoderV2) ReadInfo() uint8 { return u.info.Read() }

// ReadString reads from the string column.
func (u *UpdateDecoderV2) ReadString() string { return u.str.Read() }

// ReadParentInfo reads whether the parent is a root type named by key.
func (u *UpdateDecoderV2) ReadParentInfo() bool { return u.parentInfo.Read() == 1 }

// ReadTypeRef reads a type's kind. Values above 255 are an error.
func (u *UpdateDecoderV2) ReadTypeRef() uint8 { return readTypeRef(u.rest, u.typeRef.Read()) }

// ReadLen reads a length.
func (u *UpdateDecoderV2) ReadLen() uint64 { return u.length.Read() }

// ReadAny reads an Any value from the rest stream.
func (u *UpdateDecoderV2) ReadAny() any { return u.rest.ReadAny() }

// ReadBuf reads a byte array from the rest stream. The result aliases the input.
func (u *UpdateDecoderV2) ReadBuf() []byte { return u.rest.ReadVarUint8Array() }

// ReadJSON reads an Any value (V2 stores embeds and format values as Any, not JSON text).
func (u *UpdateDecoderV2) ReadJSON() any { return u.rest.ReadAny() }

// ReadKey reads a key: a key clock below the number of keys seen so far refers to an earlier key,
// anything else reads a new key from the string column.
func (u *UpdateDecoderV2) ReadKey() string {
	kc := u.keyClock.Read()
	if u.keyClock.Err() != nil {
		return ""
	}
	if kc < 0 {
		// Yjs would index keys[-n] and get undefined; that is never valid.
		u.rest.Failf("encoding: negative key clock %d", kc)
		return ""
	}
	if kc < int64(len(u.keys)) {
		return u.keys[kc]
	}
	key := u.str.Read()
	if u.str.Err() != nil {
		return ""
	}
	u.keys = append(u.keys, key)
	return key
}

var (
	_ UpdateEncoder = (*UpdateEncoderV2)(nil)
	_ UpdateDecoder = (*UpdateDecoderV2)(nil)
	_ DSEncoder     = (*DSEncoderV2)(nil)
	_ DSDecoder     = (*DSDecoderV2)(nil)
)
