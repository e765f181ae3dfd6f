package encoding

// DSEncoder writes delete sets (client, then runs of clock + length).
type DSEncoder interface {
	// RestEncoder is the plain encoder that client ids and counts go to.
	RestEncoder() *Encoder
	ResetDsCurVal()
	WriteDsClock(clock uint64)
	WriteDsLen(n uint64)
	// Bytes finishes the encoding and returns the result.
	Bytes() []byte
}

// UpdateEncoder writes structs of an update; implemented by UpdateEncoderV1 and UpdateEncoderV2.
// Method names follow Yjs's UpdateEncoderV1/V2 so the two can be read side by side.
type UpdateEncoder interface {
	DSEncoder
	WriteLeftID(client, clock uint64)
	WriteRightID(client, clock uint64)
	WriteClient(client uint64)
	WriteInfo(info uint8)
	WriteString(s string)
	WriteParentInfo(isYKey bool)
	WriteTypeRef(ref uint8)
	WriteLen(n uint64)
	WriteAny(v any)
	WriteBuf(b []byte)
	WriteJSON(v any)
	WriteKey(key string)
}

// DSDecoder reads delete sets. Errors are sticky on the underlying decoder; see Err.
type DSDecoder interface {
	RestDecoder() *Decoder
	ResetDsCurVal()
	ReadDsClock() uint64
	ReadDsLen() uint64
	// Err returns the first error met by this decoder or any of its column decoders.
	Err() error
}

// UpdateDecoder reads structs of an update; implemented by UpdateDecoderV1 and UpdateDecoderV2.
type UpdateDecoder interface {
	DSDecoder
	ReadLeftID() (client, clock uint64)
	ReadRightID() (client, clock uint64)
	ReadClient() uint64
	ReadInfo() uint8
	ReadString() string
	ReadParentInfo() bool
	ReadTypeRef() uint8
	ReadLen() uint64
	ReadAny() any
	ReadBuf() []byte
	ReadJSON() any
	ReadKey() string
}
