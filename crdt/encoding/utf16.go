package encoding

import (
	"unicode/utf8"
)

// Yjs measures string content in UTF-16 code units (JavaScript's String#length): item lengths,
// text positions, the lengths in the V2 string column. Go strings are UTF-8, so every place that
// exchanges a position or a length with Yjs converts through the helpers below.
//
// The helpers expect valid UTF-8 (everything the decoders return is valid). An invalid byte is
// counted as one unit, the U+FFFD it becomes when encoded, so the helpers never fail.

// UTF16Len returns the length of s in UTF-16 code units: 1 per rune below U+10000, 2 per rune
// above (a surrogate pair).
func UTF16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n += runeUnits(r)
		i += size
	}
	return n
}

// runeUnits is the number of UTF-16 units that r takes.
func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// UTF16Offset returns the byte offset in s of UTF-16 unit index n. n is clamped to
// [0, UTF16Len(s)]. When n falls between the two halves of a surrogate pair, the offset of that
// rune's start is returned with insidePair set, so callers can apply Yjs's U+FFFD replacement.
func UTF16Offset(s string, n int) (byteOff int, insidePair bool) {
	if n <= 0 {
		return 0, false
	}
	units := 0
	for i := 0; i < len(s); {
		if units >= n {
			return i, false
		}
		c := s[i]
		if c < utf8.RuneSelf {
			units++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		u := runeUnits(r)
		if units+u > n {
			return i, true
		}
		units += u
		i += size
	}
	return len(s), false
}

// UTF16Split splits s at UTF-16 unit n the way Yjs's ContentString.splice does: when n falls
// inside a surrogate pair, both halves of the pair become U+FFFD, so left keeps n units and right
// keeps the rest (a split string never carries half a code point, which would be invalid when
// encoded). n is clamped to [0, UTF16Len(s)].
func UTF16Split(s string, n int) (left, right string) {
	off, inside := UTF16Offset(s, n)
	if !inside {
		return s[:off], s[off:]
	}
	_, size := utf8.DecodeRuneInString(s[off:])
	return s[:off] + "\uFFFD", "\uFFFD" + s[off+size:]
}

// UTF16Slice returns the UTF-8 encoding of JavaScript's s.slice(from, to), where s is the UTF-16
// form of the Go string: negative indexes count from the end, out-of-range indexes are clamped,
// and a surrogate pair cut at either end leaves a lone surrogate that a TextEncoder turns into
// U+FFFD. This is what a Yjs peer sends when it encodes a slice of a string.
func UTF16Slice(s string, from, to int) string {
	total := -1
	norm := func(i int) int {
		if i >= 0 {
			return i
		}
		if total < 0 {
			total = UTF16Len(s)
		}
		return max(total+i, 0)
	}
	from, to = norm(from), norm(to)
	if from >= to {
		return ""
	}
	startOff, startInside := UTF16Offset(s, from)
	// Count the end relative to the start so the string is not scanned twice from the top.
	rest := s[startOff:]
	relTo := to - from
	var prefix string
	if startInside {
		// from cuts a pair: the slice begins with its low surrogate.
		_, size := utf8.DecodeRuneInString(rest)
		rest = rest[size:]
		prefix = "\uFFFD"
		relTo--
		if relTo == 0 {
			return prefix
		}
	}
	endOff, endInside := UTF16Offset(rest, relTo)
	if !endInside {
		if prefix == "" {
			return rest[:endOff]
		}
		return prefix + rest[:endOff]
	}
	return prefix + rest[:endOff] + "\uFFFD"
}

// utf16Cursor walks a string forward by UTF-16 units, remembering when it stopped in the middle of
// a surrogate pair. The V2 string column is one long string cut into pieces by UTF-16 lengths, so
// the decoder advances a cursor instead of rescanning from the start for each piece.
type utf16Cursor struct {
	s       string
	off     int  // byte offset of the next unread rune
	midPair bool // the high half of the rune at off was already handed out
}

// next returns the next n units (JavaScript slice + TextEncoder semantics for cut pairs) and
// whether that many units were available.
func (c *utf16Cursor) next(n int) (string, bool) {
	if n <= 0 {
		return "", n == 0
	}
	var prefix string
	if c.midPair {
		_, size := utf8.DecodeRuneInString(c.s[c.off:])
		c.off += size
		c.midPair = false
		prefix = "\uFFFD"
		n--
		if n == 0 {
			return prefix, true
		}
	}
	rest := c.s[c.off:]
	units := 0
	i := 0
	for i < len(rest) && units < n {
		b := rest[i]
		if b < utf8.RuneSelf {
			units++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(rest[i:])
		u := runeUnits(r)
		if units+u > n {
			// n ends inside a pair: hand out its high half now, its low half next time.
			c.off += i
			c.midPair = true
			return prefix + rest[:i] + "\uFFFD", true
		}
		units += u
		i += size
	}
	if units < n {
		return "", false
	}
	c.off += i
	if prefix == "" {
		return rest[:i], true
	}
	return prefix + rest[:i], true
}
