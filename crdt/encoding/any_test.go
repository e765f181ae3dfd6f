package encoding

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

func TestVarIntGolden(t *testing.T) {
	var fx struct {
		Uints []struct {
			N     string `json:"n"`
			Bytes string `json:"bytes"`
		} `json:"uints"`
		Ints []struct {
			N       string `json:"n"`
			NegZero bool   `json:"negZero"`
			Bytes   string `json:"bytes"`
		} `json:"ints"`
	}
	loadFixture(t, "varint.json", &fx)
	for _, c := range fx.Uints {
		n, _ := strconv.ParseUint(c.N, 10, 64)
		want := unb64(t, c.Bytes)
		e := NewEncoder()
		e.WriteVarUint(n)
		if !bytes.Equal(e.Bytes(), want) {
			t.Errorf("WriteVarUint(%d) = %x, want %x", n, e.Bytes(), want)
		}
		d := NewDecoder(want)
		if got := d.ReadVarUint(); got != n || d.Err() != nil || d.HasContent() {
			t.Errorf("ReadVarUint(%x) = %d, %v", want, got, d.Err())
		}
	}
	for _, c := range fx.Ints {
		n, _ := strconv.ParseInt(c.N, 10, 64)
		want := unb64(t, c.Bytes)
		e := NewEncoder()
		if c.NegZero {
			e.WriteVarIntNegZero()
		} else {
			e.WriteVarInt(n)
		}
		if !bytes.Equal(e.Bytes(), want) {
			t.Errorf("WriteVarInt(%d) = %x, want %x", n, e.Bytes(), want)
		}
		d := NewDecoder(want)
		got, negZero := d.ReadVarIntSign()
		if got != n || negZero != c.NegZero || d.Err() != nil {
			t.Errorf("ReadVarIntSign(%x) = %d, %v, %v", want, got, negZero, d.Err())
		}
	}
}

type anyCase struct {
	Value json.RawMessage `json:"value"`
	Bytes string          `json:"bytes"`
}

// TestAnyGolden checks that Go writes every fixture value exactly as lib0 did and reads lib0's
// bytes back to an equal value.
func TestAnyGolden(t *testing.T) {
	var cases []anyCase
	loadFixture(t, "any.json", &cases)
	for i, c := range cases {
		v := untag(t, c.Value)
		want := unb64(t, c.Bytes)
		e := NewEncoder()
		e.WriteAny(v)
		if !bytes.Equal(e.Bytes(), want) {
			t.Errorf("case %d: WriteAny(%s) = %x, want %x", i, show(v), e.Bytes(), want)
		}
		d := NewDecoder(want)
		got := d.ReadAny()
		if d.Err() != nil || d.HasContent() {
			t.Errorf("case %d: ReadAny(%x): err %v, %d bytes left", i, want, d.Err(), d.Remaining())
			continue
		}
		if !equalAny(got, v) {
			t.Errorf("case %d: ReadAny(%x) = %s, want %s", i, want, show(got), show(v))
		}
	}
}

func TestWriteAnyGoTypes(t *testing.T) {
	enc := func(v any) []byte {
		e := NewEncoder()
		e.WriteAny(v)
		return e.Bytes()
	}
	same := func(a, b any) {
		t.Helper()
		if !bytes.Equal(enc(a), enc(b)) {
			t.Errorf("%T %v encodes as %x, %T %v as %x", a, a, enc(a), b, b, enc(b))
		}
	}
	same(int(5), float64(5))
	same(int8(-5), float64(-5))
	same(uint32(1<<31), float64(1<<31))
	same(float32(0.1), float64(float32(0.1)))
	same(uint(7), float64(7))
	same(uint64(1<<63), int64(math.MinInt64))
	same(Object{}, NewObject())
	same(map[string]any(nil), NewObject())
	same(struct{}{}, Undefined{})
	same((*Object)(nil), nil)
	same(math.NaN(), math.Float64frombits(canonicalNaN))
	o := NewObject()
	o.Set("1", 1)
	o.Set("b", 2)
	o.Set("a", 3)
	o2 := NewObject()
	o2.Set("1", 1)
	o2.Set("a", 3)
	o2.Set("b", 2)
	// map keys: indices first, then the others sorted.
	same(map[string]any{"b": 2, "a": 3, "1": 1}, o2)
	if got := mapKeysJSOrder(map[string]any{"b": 0, "10": 0, "a": 0, "2": 0, "01": 0}); !equalStrings(got, []string{"2", "10", "01", "a", "b"}) {
		t.Errorf("map key order %q", got)
	}

	if got := enc(math.Copysign(0, -1)); !bytes.Equal(got, []byte{tagInteger, 0x40}) {
		t.Errorf("-0 encodes as %x", got)
	}
	if got := enc(0.0); !bytes.Equal(got, []byte{tagInteger, 0}) {
		t.Errorf("0 encodes as %x", got)
	}
	// Cyclic slices stop at the depth cap instead of recursing forever.
	cyc := make([]any, 1)
	cyc[0] = cyc
	if n := len(enc(cyc)); n == 0 || n > 4*MaxNestingDepth {
		t.Errorf("cyclic value encoded to %d bytes", n)
	}
}

func TestReadAnyErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown tag", []byte{115}},
		{"tag 0", []byte{0}},
		{"truncated string", []byte{tagString, 5, 'a'}},
		{"truncated float64", []byte{tagFloat64, 1, 2}},
		{"huge array", []byte{tagArray, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"huge object", []byte{tagObject, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"array count beyond input", []byte{tagArray, 3, tagNull, tagNull}},
		{"varint overflow", []byte{tagInteger, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		d := NewDecoder(tc.in)
		if v := d.ReadAny(); d.Err() == nil {
			t.Errorf("%s: ReadAny(%x) = %v, want error", tc.name, tc.in, v)
		}
	}
	// Nesting: MaxNestingDepth arrays deep is fine, one more is not.
	deep := func(n int) []byte {
		b := bytes.Repeat([]byte{tagArray, 1}, n)
		return append(b, tagNull)
	}
	d := NewDecoder(deep(MaxNestingDepth))
	d.ReadAny()
	if d.Err() != nil {
		t.Errorf("depth %d: %v", MaxNestingDepth, d.Err())
	}
	d = NewDecoder(deep(MaxNestingDepth + 1))
	d.ReadAny()
	if d.Err() == nil {
		t.Errorf("depth %d accepted", MaxNestingDepth+1)
	}
	// The sticky error: later reads return zero values.
	d = NewDecoder([]byte{115, tagTrue})
	d.ReadAny()
	if v := d.ReadAny(); v != nil || d.Err() == nil {
		t.Errorf("read after error = %v, %v", v, d.Err())
	}
}

func TestReadAnyProtoKey(t *testing.T) {
	e := NewEncoder()
	o := NewObject()
	o.Set("__proto__", 1.0)
	o.Set("a", 2.0)
	e.WriteAny(o)
	d := NewDecoder(e.Bytes())
	got := d.ReadAny().(*Object)
	if got.Len() != 1 {
		t.Errorf("__proto__ kept: %v", got.Keys())
	}
}

func TestObject(t *testing.T) {
	var o Object // zero value usable
	for _, k := range []string{"b", "10", "a", "2", "01", "4294967295", "4294967294", "0", "b"} {
		o.Set(k, k)
	}
	want := []string{"0", "2", "10", "4294967294", "b", "a", "01", "4294967295"}
	if got := o.Keys(); !equalStrings(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	o.Delete("b")
	o.Delete("10")
	o.Set("b", 1)
	want = []string{"0", "2", "4294967294", "a", "01", "4294967295", "b"}
	if got := o.Keys(); !equalStrings(got, want) {
		t.Errorf("after delete: keys %q, want %q", got, want)
	}
	if v, ok := o.Get("b"); !ok || v != 1 {
		t.Errorf("Get(b) = %v, %v", v, ok)
	}
	if o.Len() != 7 || len(o.Map()) != 7 {
		t.Errorf("Len %d, Map %d", o.Len(), len(o.Map()))
	}
	js, err := json.Marshal(&o)
	if err != nil || string(js) != `{"0":"0","2":"2","4294967294":"4294967294","a":"a","01":"01","4294967295":"4294967295","b":1}` {
		t.Errorf("MarshalJSON = %s, %v", js, err)
	}
	inner := NewObject()
	inner.Set("x", []any{NewObject(), int64(5)})
	outer := NewObject()
	outer.Set("in", inner)
	plain := ToPlain([]any{outer}).([]any)[0].(map[string]any)
	if _, ok := plain["in"].(map[string]any)["x"].([]any)[0].(map[string]any); !ok {
		t.Errorf("ToPlain did not convert nested objects: %#v", plain)
	}
	if js, err := json.Marshal(outer); err != nil || string(js) != `{"in":{"x":[{},5]}}` {
		t.Errorf("MarshalJSON with bigint = %s, %v", js, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func FuzzReadAny(f *testing.F) {
	var cases []anyCase
	loadFixture(f, "any.json", &cases)
	for _, c := range cases {
		f.Add(unb64(f, c.Bytes))
	}
	f.Add([]byte{tagArray, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		var v any
		allocbound.Check(t, "ReadAny", len(in), anyBound, func() { v = d.ReadAny() })
		if d.Err() != nil {
			if v != nil {
				t.Fatalf("value %v with error %v", v, d.Err())
			}
			return
		}
		e := NewEncoder()
		e.WriteAny(v)
		b1 := bytes.Clone(e.Bytes())
		// Only invalid UTF-8 grows (one byte can become a 3-byte U+FFFD).
		if len(b1) > 3*d.Pos()+16 {
			t.Fatalf("re-encoding grew from %d to %d bytes", d.Pos(), len(b1))
		}
		d2 := NewDecoder(b1)
		v2 := d2.ReadAny()
		if d2.Err() != nil || d2.HasContent() {
			t.Fatalf("re-encoded %x unreadable: %v", b1, d2.Err())
		}
		if !equalAny(v, v2) {
			t.Fatalf("round trip changed %s to %s", show(v), show(v2))
		}
		e2 := NewEncoder()
		e2.WriteAny(v2)
		if !bytes.Equal(b1, e2.Bytes()) {
			t.Fatalf("encoding unstable: %x then %x", b1, e2.Bytes())
		}
	})
}

func FuzzVarInt(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0x40})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		u := d.ReadVarUint()
		if d.Err() == nil {
			if u >= 1<<56 {
				t.Fatalf("var-uint %d beyond 56 bits", u)
			}
			e := NewEncoder()
			e.WriteVarUint(u)
			d2 := NewDecoder(e.Bytes())
			if d2.ReadVarUint() != u || d2.Err() != nil || d2.HasContent() {
				t.Fatalf("var-uint %d round trip", u)
			}
		} else if !errors.Is(d.Err(), ErrUnexpectedEOF) && !errors.Is(d.Err(), ErrOverflow) {
			t.Fatalf("unexpected error %v", d.Err())
		}
		d = NewDecoder(in)
		n, negZero := d.ReadVarIntSign()
		if d.Err() == nil {
			if n > 1<<53 || n < -(1<<53) {
				t.Fatalf("var-int %d beyond 2^53", n)
			}
			e := NewEncoder()
			if negZero {
				e.WriteVarIntNegZero()
			} else {
				e.WriteVarInt(n)
			}
			d2 := NewDecoder(e.Bytes())
			n2, nz2 := d2.ReadVarIntSign()
			if n2 != n || nz2 != negZero || d2.Err() != nil || d2.HasContent() {
				t.Fatalf("var-int %d (negZero %v) round trip gave %d %v", n, negZero, n2, nz2)
			}
		}
	})
}
