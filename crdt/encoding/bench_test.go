package encoding

import (
	"testing"
)

func benchValue() any {
	o := NewObject()
	o.Set("name", "paragraph")
	o.Set("bold", true)
	o.Set("size", 12.5)
	o.Set("count", 42)
	o.Set("tags", []any{"a", "b", "😀", nil, Undefined{}})
	o.Set("bytes", []byte{1, 2, 3, 4})
	inner := NewObject()
	inner.Set("x", 1.0)
	inner.Set("y", -3.25)
	o.Set("pos", inner)
	return o
}

func BenchmarkWriteAny(b *testing.B) {
	v := benchValue()
	e := NewEncoder()
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		e.WriteAny(v)
	}
	b.SetBytes(int64(e.Len()))
}

func BenchmarkReadAny(b *testing.B) {
	e := NewEncoder()
	e.WriteAny(benchValue())
	in := e.Bytes()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(in)
		if d.ReadAny(); d.Err() != nil {
			b.Fatal(d.Err())
		}
	}
}

// benchOps is a typical text-editing struct stream: runs of string items by one client.
func benchOps() []op {
	ops := []op{{name: "restUint", u1: 1}, {name: "restUint", u1: 1000}, {name: "client", u1: 12345}, {name: "restUint", u1: 0}}
	for i := range 1000 {
		ops = append(ops, op{name: "info", u1: 0x84}, op{name: "leftID", u1: 12345, u2: uint64(i)}, op{name: "string", s: "word "})
	}
	ops = append(ops, op{name: "restUint", u1: 1}, op{name: "dsReset"}, op{name: "restUint", u1: 12345}, op{name: "restUint", u1: 1},
		op{name: "dsClock", u1: 10}, op{name: "dsLen", u1: 5})
	return ops
}

func BenchmarkUpdateEncoderV2(b *testing.B) {
	ops := benchOps()
	b.ReportAllocs()
	var n int
	for b.Loop() {
		e := NewUpdateEncoderV2()
		replay(e, ops)
		n = len(e.Bytes())
	}
	b.SetBytes(int64(n))
}

func BenchmarkUpdateDecoderV2(b *testing.B) {
	e := NewUpdateEncoderV2()
	replay(e, benchOps())
	in := e.Bytes()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewUpdateDecoderV2(in)
		rest := d.RestDecoder()
		rest.ReadVarUint()
		n := rest.ReadVarUint()
		d.ReadClient()
		rest.ReadVarUint()
		for range n {
			d.ReadInfo()
			d.ReadLeftID()
			d.ReadString()
		}
		if d.Err() != nil {
			b.Fatal(d.Err())
		}
	}
}
