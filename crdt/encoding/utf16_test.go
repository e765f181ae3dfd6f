package encoding

import (
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

func TestUTF16Len(t *testing.T) {
	for _, tc := range []struct {
		s string
		n int
	}{
		{"", 0}, {"abc", 3}, {"ü", 1}, {"€", 1}, {"😀", 2}, {"a😀b", 4}, {"𝄞𝄞", 4}, {"\uFFFD", 1},
		{"\xff", 1}, // an invalid byte counts as the U+FFFD it becomes
	} {
		if got := UTF16Len(tc.s); got != tc.n {
			t.Errorf("UTF16Len(%q) = %d, want %d", tc.s, got, tc.n)
		}
	}
}

func TestUTF16Offset(t *testing.T) {
	s := "a😀bü"
	for _, tc := range []struct {
		n      int
		off    int
		inside bool
	}{
		{-1, 0, false}, {0, 0, false}, {1, 1, false}, {2, 1, true}, {3, 5, false}, {4, 6, false}, {5, 8, false}, {6, 8, false},
	} {
		off, inside := UTF16Offset(s, tc.n)
		if off != tc.off || inside != tc.inside {
			t.Errorf("UTF16Offset(%q, %d) = %d, %v; want %d, %v", s, tc.n, off, inside, tc.off, tc.inside)
		}
	}
}

func TestUTF16SplitSliceTable(t *testing.T) {
	l, r := UTF16Split("a😀b", 2)
	if l != "a\uFFFD" || r != "\uFFFDb" {
		t.Errorf("split inside pair: %q %q", l, r)
	}
	l, r = UTF16Split("a😀b", 3)
	if l != "a😀" || r != "b" {
		t.Errorf("split after pair: %q %q", l, r)
	}
	if got := UTF16Slice("a😀b", 2, 4); got != "\uFFFDb" {
		t.Errorf("slice from inside pair: %q", got)
	}
	if got := UTF16Slice("a😀b", 0, 2); got != "a\uFFFD" {
		t.Errorf("slice to inside pair: %q", got)
	}
	if got := UTF16Slice("😀", 1, 2); got != "\uFFFD" {
		t.Errorf("slice low half: %q", got)
	}
	if got := UTF16Slice("abc", -2, 10); got != "bc" {
		t.Errorf("negative from: %q", got)
	}
}

// TestUTF16Golden compares against ContentString.splice and String#slice run by Node.
func TestUTF16Golden(t *testing.T) {
	var cases []struct {
		S      string `json:"s"`
		Len    int    `json:"len"`
		Splits []struct {
			N     int    `json:"n"`
			Left  string `json:"left"`
			Right string `json:"right"`
		} `json:"splits"`
		Slices []struct {
			From int    `json:"from"`
			To   int    `json:"to"`
			Out  string `json:"out"`
		} `json:"slices"`
	}
	loadFixture(t, "utf16.json", &cases)
	for _, c := range cases {
		s := string(unb64(t, c.S))
		if got := UTF16Len(s); got != c.Len {
			t.Errorf("UTF16Len(%q) = %d, want %d", s, got, c.Len)
		}
		for _, sp := range c.Splits {
			l, r := UTF16Split(s, sp.N)
			if l != string(unb64(t, sp.Left)) || r != string(unb64(t, sp.Right)) {
				t.Errorf("UTF16Split(%q, %d) = %q, %q; want %q, %q", s, sp.N, l, r, unb64(t, sp.Left), unb64(t, sp.Right))
			}
		}
		for _, sl := range c.Slices {
			if got := UTF16Slice(s, sl.From, sl.To); got != string(unb64(t, sl.Out)) {
				t.Errorf("UTF16Slice(%q, %d, %d) = %q, want %q", s, sl.From, sl.To, got, unb64(t, sl.Out))
			}
		}
	}
}

func TestToValidUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abc", "abc"},
		{"\xE2\x82A", "\uFFFDA"},               // truncated 3-byte sequence: one U+FFFD (WHATWG)
		{"\xF0\x9F\x98", "\uFFFD"},             // truncated emoji
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"}, // encoded surrogate: ED then two stray bytes
		{"\xC0\xAF", "\uFFFD\uFFFD"},
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"a\xffb", "a\uFFFDb"},
	} {
		if got := ToValidUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("ToValidUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// ToValidUTF8 allocates its result once, whatever the mix of valid runs and replacements (it
// grew by appends, so a long run of invalid bytes allocated several times the output).
func TestToValidUTF8AllocatesOnce(t *testing.T) {
	in := append([]byte("ok\xE2\x82A"), make([]byte, 0, 3000)...)
	for range 3000 {
		in = append(in, 0xF7)
	}
	in = append(in, "\u00e9 end"...)
	want := "ok\uFFFDA" + strings.Repeat("\uFFFD", 3000) + "\u00e9 end"
	if got := ToValidUTF8(in); got != want {
		t.Fatalf("ToValidUTF8: %d bytes, want %d", len(got), len(want))
	}
	if n := testing.AllocsPerRun(20, func() { _ = ToValidUTF8(in) }); n != 1 {
		t.Fatalf("ToValidUTF8 allocated %v times, want 1", n)
	}
}

// utf16Ref converts through real UTF-16 as JavaScript would (lone surrogates -> U+FFFD).
func utf16Ref(units []uint16) string {
	var out []rune
	for i := 0; i < len(units); i++ {
		u := units[i]
		if utf16.IsSurrogate(rune(u)) {
			if u < 0xDC00 && i+1 < len(units) && units[i+1] >= 0xDC00 && units[i+1] <= 0xDFFF {
				out = append(out, utf16.DecodeRune(rune(u), rune(units[i+1])))
				i++
				continue
			}
			out = append(out, utf8.RuneError)
			continue
		}
		out = append(out, rune(u))
	}
	return string(out)
}

func FuzzUTF16(f *testing.F) {
	f.Add("a😀b", 2, 3)
	f.Add("😀😀", 1, -1)
	f.Add("héllo", 0, 9)
	f.Fuzz(func(t *testing.T, s string, a, b int) {
		if !utf8.ValidString(s) {
			s = ToValidUTF8([]byte(s))
		}
		units := utf16.Encode([]rune(s))
		n := len(units)
		if got := UTF16Len(s); got != n {
			t.Fatalf("UTF16Len = %d, want %d", got, n)
		}
		cl := func(i int) int { return min(max(i, 0), n) }
		sa := cl(a)
		l, r := UTF16Split(s, sa)
		if UTF16Len(l) != sa || UTF16Len(l)+UTF16Len(r) != n {
			t.Fatalf("split lengths %d+%d at %d of %d", UTF16Len(l), UTF16Len(r), sa, n)
		}
		// Reference slice on real UTF-16 units.
		norm := func(i int) int {
			if i < 0 {
				return max(n+i, 0)
			}
			return min(i, n)
		}
		from, to := norm(a), norm(b)
		want := ""
		if from < to {
			want = utf16Ref(units[from:to])
		}
		if got := UTF16Slice(s, a, b); got != want {
			t.Fatalf("UTF16Slice(%q, %d, %d) = %q, want %q", s, a, b, got, want)
		}
	})
}
