package encoding

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Yjs's V1 format stores embeds, format attribute values and ContentJSON elements as JSON text
// made by JSON.stringify and read back with JSON.parse. For a Go peer's updates to be
// byte-identical to a JavaScript peer's, the JSON text must be too, so this file reimplements both
// functions for Any values instead of using encoding/json (which orders map keys, escapes HTML
// characters and U+2028, and formats numbers differently).

// ErrJSONUndefined is returned by StringifyJSON for a top-level undefined, for which
// JSON.stringify returns undefined rather than a string.
var ErrJSONUndefined = errors.New("encoding: JSON.stringify(undefined) produces no JSON text")

// ErrJSONBigInt is returned when a BigInt (int64 or uint64) is stringified, where JSON.stringify
// throws "TypeError: Do not know how to serialize a BigInt".
var ErrJSONBigInt = errors.New("encoding: JSON.stringify cannot serialize a BigInt")

// ErrJSONDepth is returned when a value or JSON text nests deeper than MaxNestingDepth (for a
// cyclic value JSON.stringify throws a TypeError).
var ErrJSONDepth = fmt.Errorf("encoding: JSON nested deeper than %d", MaxNestingDepth)

// StringifyJSON returns JSON.stringify(v) for an Any value (see WriteAny for the Go
// representation). Like JSON.stringify it writes NaN and ±Infinity as null, -0 as 0, undefined
// as null inside arrays and not at all inside objects, a []byte (Uint8Array) as an object with
// index keys, and numbers as Number#toString does. Values of other Go types are treated as
// undefined (JavaScript functions and symbols are). A top-level undefined returns
// ErrJSONUndefined; see StringifyContentJSON for Yjs's ContentJSON convention.
func StringifyJSON(v any) (string, error) {
	var sb strings.Builder
	st := stringifier{sb: &sb}
	if err := st.value(v, 0, false); err != nil {
		return "", err
	}
	if sb.Len() == 0 {
		return "", ErrJSONUndefined
	}
	return sb.String(), nil
}

// StringifyContentJSON is StringifyJSON as Yjs's ContentJSON writes an element: undefined becomes
// the literal text "undefined" (which its reader maps back to undefined).
func StringifyContentJSON(v any) (string, error) {
	s, err := StringifyJSON(v)
	if errors.Is(err, ErrJSONUndefined) {
		return "undefined", nil
	}
	return s, err
}

type stringifier struct {
	sb             *strings.Builder
	bigintAsNumber bool // for MarshalJSON
}

// value writes v; inArray says undefined must become null. Writing nothing means undefined.
func (st *stringifier) value(v any, depth int, inArray bool) error {
	if depth > MaxNestingDepth {
		return ErrJSONDepth
	}
	sb := st.sb
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
	case bool:
		if x {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case string:
		writeJSONString(sb, x)
	case float64:
		writeJSONNumber(sb, x)
	case float32:
		writeJSONNumber(sb, float64(x))
	case int:
		writeJSONNumber(sb, float64(x))
	case int8:
		writeJSONNumber(sb, float64(x))
	case int16:
		writeJSONNumber(sb, float64(x))
	case int32:
		writeJSONNumber(sb, float64(x))
	case uint:
		writeJSONNumber(sb, float64(x))
	case uint8:
		writeJSONNumber(sb, float64(x))
	case uint16:
		writeJSONNumber(sb, float64(x))
	case uint32:
		writeJSONNumber(sb, float64(x))
	case int64:
		if !st.bigintAsNumber {
			return ErrJSONBigInt
		}
		sb.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		if !st.bigintAsNumber {
			return ErrJSONBigInt
		}
		sb.WriteString(strconv.FormatUint(x, 10))
	case []byte:
		sb.WriteByte('{')
		for i, b := range x {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('"')
			sb.WriteString(strconv.Itoa(i))
			sb.WriteString(`":`)
			sb.WriteString(strconv.Itoa(int(b)))
		}
		sb.WriteByte('}')
	case []any:
		sb.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				sb.WriteByte(',')
			}
			if err := st.value(el, depth+1, true); err != nil {
				return err
			}
		}
		sb.WriteByte(']')
	case *Object:
		if x == nil {
			sb.WriteString("null")
			return nil
		}
		var err error
		first := true
		sb.WriteByte('{')
		x.Range(func(k string, el any) bool {
			err = st.member(k, el, depth, &first)
			return err == nil
		})
		if err != nil {
			return err
		}
		sb.WriteByte('}')
	case Object:
		return st.value(&x, depth, inArray)
	case map[string]any:
		first := true
		sb.WriteByte('{')
		for _, k := range mapKeysJSOrder(x) {
			if err := st.member(k, x[k], depth, &first); err != nil {
				return err
			}
		}
		sb.WriteByte('}')
	default: // Undefined and anything JavaScript would not serialize
		if inArray {
			sb.WriteString("null")
		}
	}
	return nil
}

// member writes `"k":v` unless v is undefined, which JSON.stringify leaves out of objects.
func (st *stringifier) member(k string, v any, depth int, first *bool) error {
	if isUndefinedJSON(v) {
		return nil
	}
	if !*first {
		st.sb.WriteByte(',')
	}
	*first = false
	writeJSONString(st.sb, k)
	st.sb.WriteByte(':')
	return st.value(v, depth+1, false)
}

// isUndefinedJSON reports whether JSON.stringify would skip v as an object member.
func isUndefinedJSON(v any) bool {
	switch v.(type) {
	case nil, bool, string, float64, float32, int, int8, int16, int32, uint, uint8, uint16, uint32,
		int64, uint64, []byte, []any, *Object, Object, map[string]any:
		return false
	}
	return true
}

const hexDigits = "0123456789abcdef"

// writeJSONString quotes s as JSON.stringify does: only '"', '\\' and control characters are
// escaped (the short forms where JSON has one, else \u00xx in lowercase hex); everything else,
// including '<', '>', '&', U+2028 and U+2029, is written as is. Invalid UTF-8 is written as U+FFFD,
// the character a JavaScript peer sees for it.
func writeJSONString(sb *strings.Builder, s string) {
	sb.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				sb.WriteString(s[start:i])
				n := invalidSubpartLen([]byte(s[i:min(i+4, len(s))]))
				sb.WriteString("\uFFFD")
				i += n
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		sb.WriteString(s[start:i])
		switch c {
		case '"':
			sb.WriteString(`\"`)
		case '\\':
			sb.WriteString(`\\`)
		case '\b':
			sb.WriteString(`\b`)
		case '\f':
			sb.WriteString(`\f`)
		case '\n':
			sb.WriteString(`\n`)
		case '\r':
			sb.WriteString(`\r`)
		case '\t':
			sb.WriteString(`\t`)
		default:
			sb.WriteString(`\u00`)
			sb.WriteByte(hexDigits[c>>4])
			sb.WriteByte(hexDigits[c&0xf])
		}
		i++
		start = i
	}
	sb.WriteString(s[start:])
	sb.WriteByte('"')
}

func writeJSONNumber(sb *strings.Builder, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		sb.WriteString("null")
		return
	}
	sb.WriteString(FormatNumber(f))
}

// FormatNumber formats f as JavaScript's Number#toString() (and String(f)) does: the shortest
// digits that round-trip, in plain notation for decimal exponents from -7 to 20 and exponential
// notation ("1e+21", "1.5e-7") outside, "NaN", "Infinity", "-Infinity", and "0" for -0.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	var buf [32]byte
	// Go's shortest round-trip digits are the digits ECMAScript's Number::toString picks (the
	// fewest digits that round-trip, closest to f on ties); only the layout differs.
	e := strconv.AppendFloat(buf[:0], math.Abs(f), 'e', -1, 64)
	// e is "d[.ddd]e±XX".
	ePos := strings.IndexByte(string(e), 'e')
	mant, expStr := e[:ePos], e[ePos+1:]
	exp, _ := strconv.Atoi(string(expStr))
	digits := make([]byte, 0, 20)
	digits = append(digits, mant[0])
	if len(mant) > 2 {
		digits = append(digits, mant[2:]...)
	}
	k := len(digits)
	n := exp + 1 // f = 0.digits × 10^n
	out := make([]byte, 0, 32)
	if f < 0 {
		out = append(out, '-')
	}
	switch {
	case k <= n && n <= 21:
		out = append(out, digits...)
		for i := 0; i < n-k; i++ {
			out = append(out, '0')
		}
	case 0 < n && n <= 21:
		out = append(out, digits[:n]...)
		out = append(out, '.')
		out = append(out, digits[n:]...)
	case -6 < n && n <= 0:
		out = append(out, '0', '.')
		for i := 0; i < -n; i++ {
			out = append(out, '0')
		}
		out = append(out, digits...)
	default:
		out = append(out, digits[0])
		if k > 1 {
			out = append(out, '.')
			out = append(out, digits[1:]...)
		}
		out = append(out, 'e')
		if n-1 >= 0 {
			out = append(out, '+')
		}
		out = strconv.AppendInt(out, int64(n-1), 10)
	}
	return string(out)
}

// ParseJSON parses JSON text as JSON.parse does: numbers become float64 (out-of-range ones ±Inf
// or 0, "-0" is -0), objects *Object with JavaScript key order (a repeated key keeps its first
// position and its last value), arrays []any, null nil. A \u escape of a lone surrogate becomes
// U+FFFD, which is what a JavaScript peer's string turns into when it is encoded. Invalid UTF-8 in
// s is read as U+FFFD. Nesting beyond MaxNestingDepth is an error.
func ParseJSON(s string) (any, error) {
	if !utf8.ValidString(s) {
		s = ToValidUTF8([]byte(s))
	}
	p := jsonParser{s: s}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %s after JSON value", p.describe())
	}
	return v, nil
}

type jsonParser struct {
	s string
	i int
}

// JSONSyntaxError reports where and why ParseJSON failed.
type JSONSyntaxError struct {
	Offset int // byte offset in the input
	Msg    string
}

func (e *JSONSyntaxError) Error() string {
	return fmt.Sprintf("encoding: invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return &JSONSyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) describe() string {
	if p.i >= len(p.s) {
		return "end of input"
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return strconv.QuoteRune(r)
}

func (p *jsonParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) literal(word string, v any) (any, error) {
	if !strings.HasPrefix(p.s[p.i:], word) {
		return nil, p.errorf("unexpected %s", p.describe())
	}
	p.i += len(word)
	return v, nil
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, p.errorf("unexpected %s", p.describe())
}

func (p *jsonParser) object(depth int) (any, error) {
	if depth >= MaxNestingDepth {
		return nil, ErrJSONDepth
	}
	p.i++ // {
	o := &Object{}
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return o, nil
	}
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errorf("expected string key, found %s", p.describe())
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("expected ':', found %s", p.describe())
		}
		p.i++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		o.add(k.(string), v)
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case '}':
			p.i++
			o.sortIndices()
			return o, nil
		default:
			return nil, p.errorf("expected ',' or '}', found %s", p.describe())
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	if depth >= MaxNestingDepth {
		return nil, ErrJSONDepth
	}
	p.i++ // [
	arr := []any{}
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return arr, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			p.skipSpace()
		case ']':
			p.i++
			return arr, nil
		default:
			return nil, p.errorf("expected ',' or ']', found %s", p.describe())
		}
	}
}

func (p *jsonParser) number() (any, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.s[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, p.errorf("expected digit, found %s", p.describe())
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("expected digit after '.', found %s", p.describe())
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("expected exponent digit, found %s", p.describe())
		}
	}
	f, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		// The grammar above only admits strings ParseFloat accepts; keep an error, not a panic.
		return nil, &JSONSyntaxError{Offset: start, Msg: err.Error()}
	}
	// On ErrRange ParseFloat returns ±Inf (or 0 on underflow), which is what JSON.parse gives.
	return f, nil
}

func (p *jsonParser) str() (any, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := p.s[start:p.i]
			p.i++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return nil, p.errorf("control character %#02x in string", c)
		}
		p.i++
	}
	var sb strings.Builder
	sb.WriteString(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return sb.String(), nil
		case c < 0x20:
			return nil, p.errorf("control character %#02x in string", c)
		case c != '\\':
			sb.WriteByte(c)
			p.i++
			continue
		}
		p.i++ // backslash
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A pair only if a high surrogate is directly followed by an escaped low one.
				if r < 0xDC00 && strings.HasPrefix(p.s[p.i:], `\u`) {
					save := p.i
					p.i += 2
					r2, ok := p.hex4()
					if ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
						sb.WriteRune(utf16.DecodeRune(r, r2))
						continue
					}
					p.i = save
				}
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		default:
			p.i--
			return nil, p.errorf("invalid escape '\\%c'", e)
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	p.i += 4
	return r, true
}
