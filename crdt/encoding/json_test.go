package encoding

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

func TestFormatNumberTable(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {0.1, "0.1"}, {1e21, "1e+21"}, {1e20, "100000000000000000000"},
		{1e-7, "1e-7"}, {1.5e-7, "1.5e-7"}, {1e-6, "0.000001"}, {123456789012, "123456789012"}, {math.Float64frombits(0x3FD3333333333334), "0.30000000000000004"},
		{math.MaxFloat64, "1.7976931348623157e+308"}, {5e-324, "5e-324"}, {math.NaN(), "NaN"}, {math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"}, {-1.5e300, "-1.5e+300"}, {123.456, "123.456"}, {1 << 53, "9007199254740992"},
	} {
		if got := FormatNumber(tc.f); got != tc.want {
			t.Errorf("FormatNumber(%g) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestFormatNumberGolden compares with String(x) in Node for ~10000 doubles of all magnitudes.
func TestFormatNumberGolden(t *testing.T) {
	var cases [][2]string
	loadFixture(t, "numbers.json", &cases)
	if len(cases) < 5000 {
		t.Fatalf("only %d numbers", len(cases))
	}
	for _, c := range cases {
		bits, _ := strconv.ParseUint(c[0], 16, 64)
		f := math.Float64frombits(bits)
		if got := FormatNumber(f); got != c[1] {
			t.Errorf("FormatNumber(%x) = %q, JavaScript %q", bits, got, c[1])
		}
	}
}

func TestStringifyJSONTable(t *testing.T) {
	o := NewObject()
	o.Set("b", Undefined{})
	o.Set("a", []any{Undefined{}, math.NaN(), math.Inf(1), math.Copysign(0, -1), []byte{1, 2}})
	o.Set("1", "x\"\\\b\f\n\r\t\x01\x1f\x7f<>&\u2028")
	for _, tc := range []struct {
		v    any
		want string
		err  error
	}{
		{nil, "null", nil},
		{true, "true", nil},
		{"😀", `"😀"`, nil},
		{o, `{"1":"x\"\\\b\f\n\r\t\u0001\u001f` + "\x7f<>&\u2028" + `","a":[null,null,null,0,{"0":1,"1":2}]}`, nil},
		{[]byte{}, "{}", nil},
		{map[string]any{"z": 1, "a": Undefined{}, "2": 2}, `{"2":2,"z":1}`, nil},
		{Undefined{}, "", ErrJSONUndefined},
		{int64(1), "", ErrJSONBigInt},
		{[]any{uint64(1)}, "", ErrJSONBigInt},
		{"bad \xff utf8", "\"bad \uFFFD utf8\"", nil},
	} {
		got, err := StringifyJSON(tc.v)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("StringifyJSON(%#v) = %q, %v; want %q, %v", tc.v, got, err, tc.want, tc.err)
		}
	}
	if s, err := StringifyContentJSON(Undefined{}); s != "undefined" || err != nil {
		t.Errorf("StringifyContentJSON(undefined) = %q, %v", s, err)
	}
	cyc := make([]any, 1)
	cyc[0] = cyc
	if _, err := StringifyJSON(cyc); !errors.Is(err, ErrJSONDepth) {
		t.Errorf("cyclic value: %v", err)
	}
}

type jsonFixture struct {
	Stringify []struct {
		Value json.RawMessage `json:"value"`
		Out   *string         `json:"out"`
		Error *string         `json:"error"`
	} `json:"stringify"`
	Parse []struct {
		Text  string          `json:"text"`
		Value json.RawMessage `json:"value"`
		Error bool            `json:"error"`
	} `json:"parse"`
}

func TestJSONGolden(t *testing.T) {
	var fx jsonFixture
	loadFixture(t, "json.json", &fx)
	for i, c := range fx.Stringify {
		v := untag(t, c.Value)
		got, err := StringifyJSON(v)
		switch {
		case c.Error != nil && *c.Error == "undefined":
			if !errors.Is(err, ErrJSONUndefined) {
				t.Errorf("stringify %d: got %q, %v; want ErrJSONUndefined", i, got, err)
			}
		case c.Error != nil && *c.Error == "bigint":
			if !errors.Is(err, ErrJSONBigInt) {
				t.Errorf("stringify %d: got %q, %v; want ErrJSONBigInt", i, got, err)
			}
		case c.Error != nil:
			t.Errorf("stringify %d: JavaScript failed with %s", i, *c.Error)
		default:
			if err != nil || got != *c.Out {
				t.Errorf("stringify %d: got %q, %v; JavaScript %q", i, got, err, *c.Out)
			}
		}
	}
	for i, c := range fx.Parse {
		text := string(unb64(t, c.Text))
		got, err := ParseJSON(text)
		if c.Error {
			if err == nil {
				t.Errorf("parse %d: ParseJSON(%q) = %s, JavaScript throws", i, text, show(got))
			}
			continue
		}
		if err != nil {
			t.Errorf("parse %d: ParseJSON(%q): %v", i, text, err)
			continue
		}
		if want := untag(t, c.Value); !equalAny(got, want) {
			t.Errorf("parse %d: ParseJSON(%q) = %s, want %s", i, text, show(got), show(want))
		}
	}
}

func TestParseJSONTable(t *testing.T) {
	v, err := ParseJSON(`{"b":1,"a":{"x":[1,"\ud83d\ude00",null]},"b":2,"1":0}`)
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	if got := strings.Join(o.Keys(), ","); got != "1,b,a" {
		t.Errorf("keys %s", got)
	}
	if b, _ := o.Get("b"); b != 2.0 {
		t.Errorf("duplicate key: b = %v", b)
	}
	if s, _ := StringifyJSON(v); s != `{"1":0,"b":2,"a":{"x":[1,"😀",null]}}` {
		t.Errorf("stringify %s", s)
	}
	if v, _ := ParseJSON("-0"); !math.Signbit(v.(float64)) {
		t.Errorf("-0 lost its sign")
	}
	if _, err := ParseJSON(strings.Repeat("[", MaxNestingDepth+1) + strings.Repeat("]", MaxNestingDepth+1)); !errors.Is(err, ErrJSONDepth) {
		t.Errorf("deep nesting: %v", err)
	}
	if _, err := ParseJSON(strings.Repeat("[", MaxNestingDepth) + strings.Repeat("]", MaxNestingDepth)); err != nil {
		t.Errorf("nesting %d: %v", MaxNestingDepth, err)
	}
	var se *JSONSyntaxError
	if _, err := ParseJSON(`{"a":1,}`); !errors.As(err, &se) || se.Offset != 7 {
		t.Errorf("syntax error: %v", err)
	}
}

func FuzzParseJSON(f *testing.F) {
	var fx jsonFixture
	loadFixture(f, "json.json", &fx)
	for _, c := range fx.Parse {
		f.Add(string(unb64(f, c.Text)))
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		var err error
		allocbound.Check(t, "ParseJSON", len(s), jsonBound, func() { v, err = ParseJSON(s) })
		if err != nil {
			if v != nil {
				t.Fatalf("value with error")
			}
			return
		}
		// Anything JSON.parse accepts is JSON for encoding/json too (modulo the depth cap).
		if !json.Valid([]byte(ToValidUTF8([]byte(s)))) {
			t.Fatalf("ParseJSON accepted invalid JSON %q", s)
		}
		s1, err := StringifyJSON(v)
		if err != nil {
			t.Fatalf("stringify parsed value: %v", err)
		}
		v2, err := ParseJSON(s1)
		if err != nil {
			t.Fatalf("reparse %q: %v", s1, err)
		}
		s2, err := StringifyJSON(v2)
		if err != nil || s1 != s2 {
			t.Fatalf("unstable: %q then %q (%v)", s1, s2, err)
		}
	})
}
