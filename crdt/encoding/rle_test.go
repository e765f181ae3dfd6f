package encoding

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/ysync/ysync/crdt/internal/allocbound"
)

type rleFixture struct {
	Cases []struct {
		Coder  string          `json:"coder"`
		Values json.RawMessage `json:"values"`
		Bytes  string          `json:"bytes"`
	} `json:"cases"`
	StringDecode []struct {
		Bytes  string   `json:"bytes"`
		Expect []string `json:"expect"`
	} `json:"stringDecode"`
}

func TestRleGolden(t *testing.T) {
	var fx rleFixture
	loadFixture(t, "rle.json", &fx)
	for i, c := range fx.Cases {
		want := unb64(t, c.Bytes)
		switch c.Coder {
		case "rle":
			var vals []uint8
			var raw []int
			_ = json.Unmarshal(c.Values, &raw)
			for _, v := range raw {
				vals = append(vals, uint8(v))
			}
			e := NewRleEncoder()
			for _, v := range vals {
				e.Write(v)
			}
			checkBytes(t, i, c.Coder, e.Bytes(), want)
			d := NewRleDecoder(want)
			for j, v := range vals {
				if got := d.Read(); got != v || d.Err() != nil {
					t.Errorf("case %d rle: value %d = %d (%v), want %d", i, j, got, d.Err(), v)
				}
			}
		case "uintOptRle":
			var vals []uint64
			_ = json.Unmarshal(c.Values, &vals)
			e := NewUintOptRleEncoder()
			for _, v := range vals {
				e.Write(v)
			}
			checkBytes(t, i, c.Coder, e.Bytes(), want)
			checkBytes(t, i, c.Coder+" (second Bytes)", e.Bytes(), want)
			d := NewUintOptRleDecoder(want)
			for j, v := range vals {
				if got := d.Read(); got != v || d.Err() != nil {
					t.Errorf("case %d: value %d = %d (%v), want %d", i, j, got, d.Err(), v)
				}
			}
			if d.Read(); len(vals) > 0 && d.Err() == nil && d.count == 0 {
				t.Errorf("case %d: reading past the end is not an error", i)
			}
		case "intDiffOptRle":
			var vals []int64
			_ = json.Unmarshal(c.Values, &vals)
			e := NewIntDiffOptRleEncoder()
			for _, v := range vals {
				e.Write(v)
			}
			checkBytes(t, i, c.Coder, e.Bytes(), want)
			d := NewIntDiffOptRleDecoder(want)
			for j, v := range vals {
				if got := d.Read(); got != v || d.Err() != nil {
					t.Errorf("case %d: value %d = %d (%v), want %d", i, j, got, d.Err(), v)
				}
			}
		case "string":
			var raw []string
			_ = json.Unmarshal(c.Values, &raw)
			e := NewStringEncoder()
			var vals []string
			for _, v := range raw {
				vals = append(vals, string(unb64(t, v)))
				e.Write(vals[len(vals)-1])
			}
			checkBytes(t, i, c.Coder, e.Bytes(), want)
			d := NewStringDecoder(want)
			for j, v := range vals {
				if got := d.Read(); got != v || d.Err() != nil {
					t.Errorf("case %d: string %d = %q (%v), want %q", i, j, got, d.Err(), v)
				}
			}
		default:
			t.Fatalf("unknown coder %q", c.Coder)
		}
	}
	for i, c := range fx.StringDecode {
		d := NewStringDecoder(unb64(t, c.Bytes))
		for j, w := range c.Expect {
			if got := d.Read(); got != string(unb64(t, w)) || d.Err() != nil {
				t.Errorf("string decode %d.%d: %q (%v), want %q", i, j, got, d.Err(), unb64(t, w))
			}
		}
	}
}

func checkBytes(t *testing.T, i int, coder string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("case %d %s: bytes %x, lib0 %x", i, coder, got, want)
	}
}

func TestRleDecoderEdges(t *testing.T) {
	// The last run of an RleEncoder has no count: it repeats forever.
	e := NewRleEncoder()
	e.Write(4)
	e.Write(4)
	e.Write(9)
	d := NewRleDecoder(e.Bytes())
	for i, want := range []uint8{4, 4, 9, 9, 9, 9} {
		if got := d.Read(); got != want || d.Err() != nil {
			t.Fatalf("read %d = %d, %v", i, got, d.Err())
		}
	}
	// An empty column is an error to read.
	if d := NewRleDecoder(nil); d.Read() != 0 || d.Err() == nil {
		t.Errorf("empty rle column read without error")
	}
	if d := NewUintOptRleDecoder(nil); d.Read() != 0 || d.Err() == nil {
		t.Errorf("empty uint column read without error")
	}
	if d := NewIntDiffOptRleDecoder(nil); d.Read() != 0 || d.Err() == nil {
		t.Errorf("empty int column read without error")
	}
	if d := NewStringDecoder(nil); d.Read() != "" || d.Err() == nil {
		t.Errorf("empty string column read without error")
	}
	// A run count of 2^53 costs nothing.
	var enc Encoder
	enc.WriteVarIntNegZero()
	enc.WriteVarUint(1<<53 - 1)
	u := NewUintOptRleDecoder(enc.Bytes())
	for range 1000 {
		if u.Read() != 0 || u.Err() != nil {
			t.Fatal("huge run")
		}
	}
	// A string column whose lengths exceed its text fails instead of slicing out of range.
	s := NewStringEncoder()
	s.Write("ab")
	b := s.Bytes()
	b[0] = 1 // text "a", lengths still [2]
	b = slices.Delete(b, 2, 3)
	if d := NewStringDecoder(b); d.Read() != "" || d.Err() == nil {
		t.Errorf("over-long string length accepted")
	}
	// Running sums past 2^53 are rejected.
	var big Encoder
	big.WriteVarInt(1 << 53)   // diff 2^52, once
	big.WriteVarInt(1<<53 + 1) // diff 2^52 with a count
	big.WriteVarUint(10)
	id := NewIntDiffOptRleDecoder(big.Bytes())
	for range 5 {
		id.Read()
	}
	if id.Err() == nil {
		t.Errorf("running value beyond 2^53 accepted")
	}
}

func TestStringEncoderInvalidUTF8(t *testing.T) {
	e := NewStringEncoder()
	e.Write("a\xE2\x82b")
	e.Write("c")
	d := NewStringDecoder(e.Bytes())
	if s := d.Read(); s != "a\uFFFDb" {
		t.Errorf("first = %q", s)
	}
	if s := d.Read(); s != "c" || d.Err() != nil {
		t.Errorf("second = %q, %v", s, d.Err())
	}
}

// readN reads up to n values from a column until it fails.
func fuzzColumnSeeds(f *testing.F, coder string) {
	var fx rleFixture
	loadFixture(f, "rle.json", &fx)
	for _, c := range fx.Cases {
		if c.Coder == coder {
			f.Add(unb64(f, c.Bytes))
		}
	}
	if coder == "string" {
		for _, c := range fx.StringDecode {
			f.Add(unb64(f, c.Bytes))
		}
	}
}

const fuzzReads = 2000

func FuzzRleDecoder(f *testing.F) {
	fuzzColumnSeeds(f, "rle")
	f.Fuzz(func(t *testing.T, in []byte) {
		// Reading allocates nothing per value read (the string column: its text, once).
		allocbound.Check(t, "read", len(in), columnBound, func() {
			d := NewRleDecoder(in)
			for range fuzzReads {
				if d.Read(); d.Err() != nil {
					break
				}
			}
		})
		d := NewRleDecoder(in)
		var vals []uint8
		for range fuzzReads {
			v := d.Read()
			if d.Err() != nil {
				break
			}
			vals = append(vals, v)
		}
		e := NewRleEncoder()
		for _, v := range vals {
			e.Write(v)
		}
		d2 := NewRleDecoder(e.Bytes())
		for i, v := range vals {
			if got := d2.Read(); got != v || d2.Err() != nil {
				t.Fatalf("value %d: %d then %d (%v)", i, v, got, d2.Err())
			}
		}
	})
}

func FuzzUintOptRleDecoder(f *testing.F) {
	fuzzColumnSeeds(f, "uintOptRle")
	f.Fuzz(func(t *testing.T, in []byte) {
		// Reading allocates nothing per value read (the string column: its text, once).
		allocbound.Check(t, "read", len(in), columnBound, func() {
			d := NewUintOptRleDecoder(in)
			for range fuzzReads {
				if d.Read(); d.Err() != nil {
					break
				}
			}
		})
		d := NewUintOptRleDecoder(in)
		var vals []uint64
		for range fuzzReads {
			v := d.Read()
			if d.Err() != nil {
				break
			}
			vals = append(vals, v)
		}
		e := NewUintOptRleEncoder()
		for _, v := range vals {
			e.Write(v)
		}
		b := e.Bytes()
		d2 := NewUintOptRleDecoder(b)
		for i, v := range vals {
			if got := d2.Read(); got != v || d2.Err() != nil {
				t.Fatalf("value %d: %d then %d (%v)", i, v, got, d2.Err())
			}
		}
		if d2.count != 0 || d2.dec.HasContent() {
			t.Fatalf("re-encoding has leftovers")
		}
	})
}

func FuzzIntDiffOptRleDecoder(f *testing.F) {
	fuzzColumnSeeds(f, "intDiffOptRle")
	f.Fuzz(func(t *testing.T, in []byte) {
		// Reading allocates nothing per value read (the string column: its text, once).
		allocbound.Check(t, "read", len(in), columnBound, func() {
			d := NewIntDiffOptRleDecoder(in)
			for range fuzzReads {
				if d.Read(); d.Err() != nil {
					break
				}
			}
		})
		d := NewIntDiffOptRleDecoder(in)
		var vals []int64
		for range fuzzReads {
			v := d.Read()
			if d.Err() != nil {
				break
			}
			vals = append(vals, v)
		}
		e := NewIntDiffOptRleEncoder()
		for _, v := range vals {
			e.Write(v)
		}
		d2 := NewIntDiffOptRleDecoder(e.Bytes())
		for i, v := range vals {
			if got := d2.Read(); got != v || d2.Err() != nil {
				t.Fatalf("value %d: %d then %d (%v)", i, v, got, d2.Err())
			}
		}
	})
}

func FuzzStringDecoder(f *testing.F) {
	fuzzColumnSeeds(f, "string")
	f.Fuzz(func(t *testing.T, in []byte) {
		// Reading allocates nothing per value read (the string column: its text, once).
		allocbound.Check(t, "read", len(in), stringColumnBound, func() {
			d := NewStringDecoder(in)
			for range fuzzReads {
				if d.Read(); d.Err() != nil {
					break
				}
			}
		})
		d := NewStringDecoder(in)
		var vals []string
		total := 0
		for range fuzzReads {
			v := d.Read()
			if d.Err() != nil {
				break
			}
			total += len(v)
			vals = append(vals, v)
		}
		// Pieces come from the text; only invalid bytes (each may become a 3-byte U+FFFD) and cut
		// pairs (U+FFFD on both sides of a 4-byte rune) add bytes.
		if total > 3*len(in)+3*len(vals) {
			t.Fatalf("%d bytes of strings from %d bytes of input", total, len(in))
		}
		e := NewStringEncoder()
		for _, v := range vals {
			e.Write(v)
		}
		d2 := NewStringDecoder(e.Bytes())
		for i, v := range vals {
			if got := d2.Read(); got != v || d2.Err() != nil {
				t.Fatalf("string %d: %q then %q (%v)", i, v, got, d2.Err())
			}
		}
	})
}
