package encoding

import (
	"slices"
	"sort"
	"strings"
)

// Object is a JavaScript plain object with JavaScript's own-key order. lib0 writes an object's
// keys in Object.keys order and JSON.stringify emits them in that order too, so two peers produce
// identical bytes only if they agree on it: keys that are array indices ("0" to "4294967294",
// written canonically) come first in ascending numeric order, all other keys follow in the order
// they were first set. Setting an existing key replaces its value in place.
//
// The zero value is an empty object ready to use. ReadAny and ParseJSON return objects as
// *Object.
type Object struct {
	vals    map[string]any
	indices []indexKey // array-index keys, ascending
	strs    []string   // other keys, insertion order
}

type indexKey struct {
	n   uint32
	key string
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{} }

// arrayIndex reports whether key is a canonical JavaScript array index and returns its value.
func arrayIndex(key string) (uint32, bool) {
	if len(key) == 0 || len(key) > 10 || (len(key) > 1 && key[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n >= 1<<32-1 { // 2^32-1 is not an array index
		return 0, false
	}
	return uint32(n), true
}

// Set sets key to v, keeping the key's position if it already exists.
func (o *Object) Set(key string, v any) {
	if o.vals == nil {
		o.vals = make(map[string]any)
	}
	if _, ok := o.vals[key]; ok {
		o.vals[key] = v
		return
	}
	o.vals[key] = v
	if n, ok := arrayIndex(key); ok {
		i := sort.Search(len(o.indices), func(i int) bool { return o.indices[i].n >= n })
		o.indices = slices.Insert(o.indices, i, indexKey{n, key})
		return
	}
	o.strs = append(o.strs, key)
}

// add is Set for decoders, which add every key of an object before anyone reads it: an index key
// is appended and sortIndices orders them once at the end. Set's sorted insert costs O(n) per
// key, so an object of a million index keys in descending order took 10^12 moves to decode.
func (o *Object) add(key string, v any) {
	if o.vals == nil {
		o.vals = make(map[string]any)
	}
	if _, ok := o.vals[key]; ok {
		o.vals[key] = v
		return
	}
	o.vals[key] = v
	if n, ok := arrayIndex(key); ok {
		o.indices = append(o.indices, indexKey{n, key})
		return
	}
	o.strs = append(o.strs, key)
}

// sortIndices restores the index keys' order after add.
func (o *Object) sortIndices() {
	cmp := func(a, b indexKey) int { return compareUint32(a.n, b.n) }
	if !slices.IsSortedFunc(o.indices, cmp) {
		slices.SortFunc(o.indices, cmp)
	}
}

// Get returns the value of key and whether the key exists.
func (o *Object) Get(key string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[key]
	return v, ok
}

// Delete removes key. Setting it again later appends it anew, as in JavaScript.
func (o *Object) Delete(key string) {
	if o == nil {
		return
	}
	if _, ok := o.vals[key]; !ok {
		return
	}
	delete(o.vals, key)
	if n, ok := arrayIndex(key); ok {
		i := sort.Search(len(o.indices), func(i int) bool { return o.indices[i].n >= n })
		o.indices = slices.Delete(o.indices, i, i+1)
		return
	}
	i := slices.Index(o.strs, key)
	o.strs = slices.Delete(o.strs, i, i+1)
}

// Len returns the number of keys.
func (o *Object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.vals)
}

// Keys returns the keys in JavaScript order.
func (o *Object) Keys() []string {
	if o == nil {
		return nil
	}
	keys := make([]string, 0, len(o.vals))
	for _, k := range o.indices {
		keys = append(keys, k.key)
	}
	return append(keys, o.strs...)
}

// Range calls f for each key in JavaScript order until f returns false.
func (o *Object) Range(f func(key string, v any) bool) {
	if o == nil {
		return
	}
	for _, k := range o.indices {
		if !f(k.key, o.vals[k.key]) {
			return
		}
	}
	for _, k := range o.strs {
		if !f(k, o.vals[k]) {
			return
		}
	}
}

// Map returns the entries as a new map (values are not copied).
func (o *Object) Map() map[string]any {
	m := make(map[string]any, o.Len())
	o.Range(func(k string, v any) bool {
		m[k] = v
		return true
	})
	return m
}

// MarshalJSON emits the object as JSON.stringify would, keys in JavaScript order. Unlike
// StringifyJSON it accepts BigInt values (int64, uint64) and writes them as plain integers, since
// Go callers exporting JSON want a result rather than JavaScript's TypeError.
//
// It has a value receiver so that both Object and *Object values marshal this way.
func (o Object) MarshalJSON() ([]byte, error) {
	var sb strings.Builder
	st := stringifier{sb: &sb, bigintAsNumber: true}
	if err := st.value(&o, 0, false); err != nil {
		return nil, err
	}
	return []byte(sb.String()), nil
}

// mapKeysJSOrder orders a Go map's keys the way a JavaScript object built from it would list them:
// array indices ascending, then the other keys. Go maps have no insertion order, so the other keys
// are sorted (byte-wise) to make the output deterministic.
func mapKeysJSOrder(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		na, ia := arrayIndex(a)
		nb, ib := arrayIndex(b)
		switch {
		case ia && ib:
			return compareUint32(na, nb)
		case ia:
			return -1
		case ib:
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

func compareUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ToPlain converts v for export: every Object (at any depth) becomes a map[string]any and every
// array a new []any. Other values are returned as they are. Key order is lost; use Object's
// MarshalJSON or StringifyJSON when order matters.
func ToPlain(v any) any {
	return toPlain(v, 0)
}

func toPlain(v any, depth int) any {
	if depth > MaxNestingDepth {
		return nil
	}
	switch x := v.(type) {
	case *Object:
		if x == nil {
			return nil
		}
		m := make(map[string]any, x.Len())
		x.Range(func(k string, e any) bool {
			m[k] = toPlain(e, depth+1)
			return true
		})
		return m
	case Object:
		return toPlain(&x, depth)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = toPlain(e, depth+1)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = toPlain(e, depth+1)
		}
		return a
	}
	return v
}
