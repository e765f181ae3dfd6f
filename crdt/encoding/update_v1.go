package encoding

import "fmt"

// The V1 update format (Yjs's UpdateEncoderV1/UpdateDecoderV1): every field goes, in order, to one
// plain lib0 stream. Embeds and format values are JSON text.

// DSEncoderV1 writes a V1 delete set: clocks and lengths as plain var-uints.
type DSEncoderV1 struct {
	rest Encoder
}

// NewDSEncoderV1 returns an empty encoder.
func NewDSEncoderV1() *DSEncoderV1 { return &DSEncoderV1{} }

// RestEncoder returns the underlying stream.
func (e *DSEncoderV1) RestEncoder() *Encoder { return &e.rest }

// ResetDsCurVal does nothing: V1 clocks are absolute.
func (e *DSEncoderV1) ResetDsCurVal() {}

// WriteDsClock writes the clock of a deleted range.
func (e *DSEncoderV1) WriteDsClock(clock uint64) { e.rest.WriteVarUint(clock) }

// WriteDsLen writes the length of a deleted range.
func (e *DSEncoderV1) WriteDsLen(n uint64) { e.rest.WriteVarUint(n) }

// Bytes returns the encoding. The slice aliases the encoder's buffer.
func (e *DSEncoderV1) Bytes() []byte { return e.rest.Bytes() }

// UpdateEncoderV1 writes a V1 update.
type UpdateEncoderV1 struct {
	DSEncoderV1
}

// NewUpdateEncoderV1 returns an empty encoder.
func NewUpdateEncoderV1() *UpdateEncoderV1 { return &UpdateEncoderV1{} }

// WriteLeftID writes an origin as client then clock.
func (e *UpdateEncoderV1) WriteLeftID(client, clock uint64) {
	e.rest.WriteVarUint(client)
	e.rest.WriteVarUint(clock)
}

// WriteRightID writes a right origin as client then clock.
func (e *UpdateEncoderV1) WriteRightID(client, clock uint64) {
	e.rest.WriteVarUint(client)
	e.rest.WriteVarUint(clock)
}

// WriteClient writes a client id.
func (e *UpdateEncoderV1) WriteClient(client uint64) { e.rest.WriteVarUint(client) }

// WriteInfo writes a struct's info byte.
func (e *UpdateEncoderV1) WriteInfo(info uint8) { e.rest.WriteUint8(info) }

// WriteString writes a var-string.
func (e *UpdateEncoderV1) WriteString(s string) { e.rest.WriteVarString(s) }

// WriteParentInfo writes 1 if the parent is a root type named by key, else 0.
func (e *UpdateEncoderV1) WriteParentInfo(isYKey bool) {
	if isYKey {
		e.rest.WriteVarUint(1)
	} else {
		e.rest.WriteVarUint(0)
	}
}

// WriteTypeRef writes a type's kind.
func (e *UpdateEncoderV1) WriteTypeRef(ref uint8) { e.rest.WriteVarUint(uint64(ref)) }

// WriteLen writes a length.
func (e *UpdateEncoderV1) WriteLen(n uint64) { e.rest.WriteVarUint(n) }

// WriteAny writes an Any value.
func (e *UpdateEncoderV1) WriteAny(v any) { e.rest.WriteAny(v) }

// WriteBuf writes a length-prefixed byte array.
func (e *UpdateEncoderV1) WriteBuf(b []byte) { e.rest.WriteVarUint8Array(b) }

// WriteJSON writes JSON.stringify(v) as a var-string. Where JavaScript would throw (a BigInt, a
// top-level undefined, a cycle) the encoder cannot fail, so it writes "null", the value a reader
// can still parse.
func (e *UpdateEncoderV1) WriteJSON(v any) {
	s, err := StringifyJSON(v)
	if err != nil {
		s = "null"
	}
	e.rest.WriteVarString(s)
}

// WriteKey writes a key as a var-string (V1 has no key cache).
func (e *UpdateEncoderV1) WriteKey(key string) { e.rest.WriteVarString(key) }

// DSDecoderV1 reads a V1 delete set.
type DSDecoderV1 struct {
	rest *Decoder
}

// NewDSDecoderV1 returns a decoder over b (not copied).
func NewDSDecoderV1(b []byte) *DSDecoderV1 { return &DSDecoderV1{rest: NewDecoder(b)} }

// NewDSDecoderV1From returns a decoder that reads from d, for a delete set embedded in a larger
// message.
func NewDSDecoderV1From(d *Decoder) *DSDecoderV1 { return &DSDecoderV1{rest: d} }

// RestDecoder returns the underlying stream.
func (d *DSDecoderV1) RestDecoder() *Decoder { return d.rest }

// ResetDsCurVal does nothing: V1 clocks are absolute.
func (d *DSDecoderV1) ResetDsCurVal() {}

// ReadDsClock reads the clock of a deleted range.
func (d *DSDecoderV1) ReadDsClock() uint64 { return d.rest.ReadVarUint() }

// ReadDsLen reads the length of a deleted range.
func (d *DSDecoderV1) ReadDsLen() uint64 { return d.rest.ReadVarUint() }

// Err returns the first error met.
func (d *DSDecoderV1) Err() error { return d.rest.Err() }

// UpdateDecoderV1 reads a V1 update.
type UpdateDecoderV1 struct {
	DSDecoderV1
}

// NewUpdateDecoderV1 returns a decoder over b (not copied).
func NewUpdateDecoderV1(b []byte) *UpdateDecoderV1 {
	return &UpdateDecoderV1{DSDecoderV1{rest: NewDecoder(b)}}
}

// NewUpdateDecoderV1From returns a decoder that reads from d.
func NewUpdateDecoderV1From(d *Decoder) *UpdateDecoderV1 {
	return &UpdateDecoderV1{DSDecoderV1{rest: d}}
}

// ReadLeftID reads an origin.
func (d *UpdateDecoderV1) ReadLeftID() (client, clock uint64) {
	client = d.rest.ReadVarUint()
	clock = d.rest.ReadVarUint()
	return client, clock
}

// ReadRightID reads a right origin.
func (d *UpdateDecoderV1) ReadRightID() (client, clock uint64) {
	client = d.rest.ReadVarUint()
	clock = d.rest.ReadVarUint()
	return client, clock
}

// ReadClient reads a client id.
func (d *UpdateDecoderV1) ReadClient() uint64 { return d.rest.ReadVarUint() }

// ReadInfo reads a struct's info byte.
func (d *UpdateDecoderV1) ReadInfo() uint8 { return d.rest.ReadUint8() }

// ReadString reads a var-string.
func (d *UpdateDecoderV1) ReadString() string { return d.rest.ReadVarString() }

// ReadParentInfo reads whether the parent is a root type named by key (Yjs compares with 1).
func (d *UpdateDecoderV1) ReadParentInfo() bool { return d.rest.ReadVarUint() == 1 }

// ReadTypeRef reads a type's kind. Values above 255, which no Yjs type has, are an error.
func (d *UpdateDecoderV1) ReadTypeRef() uint8 { return readTypeRef(d.rest, d.rest.ReadVarUint()) }

func readTypeRef(d *Decoder, n uint64) uint8 {
	if n > 255 {
		d.Failf("encoding: type ref %d out of range", n)
		return 0
	}
	return uint8(n)
}

// ReadLen reads a length.
func (d *UpdateDecoderV1) ReadLen() uint64 { return d.rest.ReadVarUint() }

// ReadAny reads an Any value.
func (d *UpdateDecoderV1) ReadAny() any { return d.rest.ReadAny() }

// ReadBuf reads a length-prefixed byte array. The result aliases the input; copy it to keep it.
func (d *UpdateDecoderV1) ReadBuf() []byte { return d.rest.ReadVarUint8Array() }

// ReadJSON reads a var-string and parses it as JSON.parse would. Invalid JSON sets the error.
func (d *UpdateDecoderV1) ReadJSON() any {
	s := d.rest.ReadVarString()
	if d.rest.Err() != nil {
		return nil
	}
	v, err := ParseJSON(s)
	if err != nil {
		d.rest.Fail(fmt.Errorf("encoding: embedded JSON: %w", err))
		return nil
	}
	return v
}

// ReadKey reads a key.
func (d *UpdateDecoderV1) ReadKey() string { return d.rest.ReadVarString() }

var (
	_ UpdateEncoder = (*UpdateEncoderV1)(nil)
	_ UpdateDecoder = (*UpdateDecoderV1)(nil)
	_ DSEncoder     = (*DSEncoderV1)(nil)
	_ DSDecoder     = (*DSDecoderV1)(nil)
)
