package crdt

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ysync/ysync/crdt/encoding"
)

// Cutting text anywhere, halves of surrogate pairs included, and merging pieces back gives what
// cutting and joining the JavaScript-visible text (U+FFFD for lone halves) gives.
func TestContentStringSpliceMatchesUTF16Split(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	alphabet := []string{"a", "b", "é", "€", "😀", "𝄞"}
	for iter := range 2000 {
		var sb strings.Builder
		for range 1 + rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		pieces := []*ContentString{newContentString(sb.String())}
		want := []string{sb.String()}
		// Cut random pieces at random units a few times.
		for range 1 + rng.IntN(6) {
			i := rng.IntN(len(pieces))
			p := pieces[i]
			if p.Len() < 2 {
				continue
			}
			off := 1 + rng.IntN(p.Len()-1)
			l, r := encoding.UTF16Split(want[i], off)
			right := p.Splice(off).(*ContentString)
			if p.Text() != l || right.Text() != r || p.Len() != off || p.Len()+right.Len() != encoding.UTF16Len(want[i]) {
				t.Fatalf("iter %d: cut %q at %d: %q|%q (%d+%d), want %q|%q", iter, want[i], off, p.Text(), right.Text(), p.Len(), right.Len(), l, r)
			}
			if encoding.UTF16Len(p.Text()) != p.Len() || encoding.UTF16Len(right.Text()) != right.Len() {
				t.Fatalf("iter %d: lengths disagree with the text", iter)
			}
			want[i] = l
			pieces = append(pieces[:i+1], append([]*ContentString{right}, pieces[i+1:]...)...)
			want = append(want[:i+1], append([]string{r}, want[i+1:]...)...)
		}
		// Values and writes agree with the text; then merge everything back.
		for i, p := range pieces {
			var vs strings.Builder
			for _, v := range p.Values() {
				vs.WriteString(v.(string))
			}
			if len(p.Values()) != p.Len() {
				t.Fatalf("iter %d: %d values for %d units", iter, len(p.Values()), p.Len())
			}
			for off := 0; off < p.Len(); off++ {
				enc := encoding.NewUpdateEncoderV1()
				p.write(enc, off)
				dec := encoding.NewUpdateDecoderV1(enc.Bytes())
				if got, w := dec.ReadString(), encoding.UTF16Slice(want[i], off, p.Len()); got != w {
					t.Fatalf("iter %d: write(%d) of %q = %q, want %q", iter, off, want[i], got, w)
				}
			}
		}
		joined := strings.Join(want, "")
		m := pieces[0]
		for _, p := range pieces[1:] {
			if !m.mergeWith(p) {
				t.Fatal("merge refused")
			}
		}
		if m.Text() != joined || m.Len() != encoding.UTF16Len(joined) {
			t.Fatalf("iter %d: merged %q (%d), want %q", iter, m.Text(), m.Len(), joined)
		}
	}
}
