package encoding

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// Golden vectors made by scripts/gen-encoding-fixtures.mjs with the reference lib0/yjs.
const fixtureDir = "../../testdata/encoding"

func loadFixture(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("read fixture (regenerate with node scripts/gen-encoding-fixtures.mjs): %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("parse fixture %s: %v", name, err)
	}
}

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// tagged is the fixture form of a JavaScript value (see the generator).
type tagged struct {
	T    string            `json:"t"`
	V    json.RawMessage   `json:"v"`
	Bits string            `json:"bits"`
	S    string            `json:"s"`
	UTF8 string            `json:"utf8"`
	Set  []json.RawMessage `json:"set"`
	Keys []string          `json:"keys"`
}

// untag rebuilds the Go value for a tagged JavaScript value. Objects are built by setting their
// keys in the order JavaScript set them, and their resulting key order is checked against
// JavaScript's Object.keys.
func untag(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	var tv tagged
	if err := json.Unmarshal(raw, &tv); err != nil {
		t.Fatalf("tagged value %s: %v", raw, err)
	}
	switch tv.T {
	case "undef":
		return Undefined{}
	case "null":
		return nil
	case "bool":
		var b bool
		_ = json.Unmarshal(tv.V, &b)
		return b
	case "num":
		u, err := strconv.ParseUint(tv.Bits, 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		return math.Float64frombits(u)
	case "bigint":
		var s string
		_ = json.Unmarshal(tv.V, &s)
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	case "str":
		return string(unb64(t, tv.UTF8))
	case "bytes":
		var s string
		_ = json.Unmarshal(tv.V, &s)
		return unb64(t, s)
	case "arr":
		var els []json.RawMessage
		_ = json.Unmarshal(tv.V, &els)
		arr := make([]any, 0, len(els))
		for _, e := range els {
			arr = append(arr, untag(t, e))
		}
		return arr
	case "obj":
		o := NewObject()
		for _, pair := range tv.Set {
			var kv []json.RawMessage
			_ = json.Unmarshal(pair, &kv)
			var k string
			_ = json.Unmarshal(kv[0], &k)
			o.Set(string(unb64(t, k)), untag(t, kv[1]))
		}
		want := make([]string, 0, len(tv.Keys))
		for _, k := range tv.Keys {
			want = append(want, string(unb64(t, k)))
		}
		if got := o.Keys(); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("object key order: got %q, JavaScript has %q", got, want)
		}
		return o
	}
	t.Fatalf("unknown tag %q", tv.T)
	return nil
}

// equalAny compares Any values exactly: numbers by bits (but any NaN equals any NaN), objects
// including their key order.
func equalAny(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if math.IsNaN(x) || math.IsNaN(y) {
			return math.IsNaN(x) && math.IsNaN(y)
		}
		return math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalAny(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Object:
		y, ok := b.(*Object)
		if !ok || !slices.Equal(x.Keys(), y.Keys()) {
			return false
		}
		for _, k := range x.Keys() {
			xv, _ := x.Get(k)
			yv, _ := y.Get(k)
			if !equalAny(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

func show(v any) string {
	s, err := StringifyJSON(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return s
}
