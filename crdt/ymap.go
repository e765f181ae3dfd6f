package crdt

// Map is a shared map from string keys to values or nested types.
type Map struct{ *AbstractType }

// NewMap returns a preliminary map; it becomes part of a document when inserted into one.
// Values set before that are inserted with it.
func NewMap() *Map {
	m := &Map{newAbstractType(KindMap)}
	m.api = m
	return m
}

// Set stores value under key. Values are Any values (nil, bool, numbers, strings, []byte,
// []any, map[string]any, *encoding.Object, encoding.Undefined), nested types, or *SubDoc.
func (m *Map) Set(key string, value any) error {
	if m.doc == nil {
		return m.addPrelim(func(tx *Transaction) error { return m.mapSetValue(tx, key, value) })
	}
	return m.transact(func(tx *Transaction) error { return m.mapSetValue(tx, key, value) })
}

// addPrelim queues an edit of a preliminary type, to run when it is integrated.
func (t *AbstractType) addPrelim(edit func(tx *Transaction) error) error {
	prev := t.prelim
	t.prelim = func(tx *Transaction) {
		if prev != nil {
			prev(tx)
		}
		if err := edit(tx); err != nil {
			tx.fail(err)
		}
	}
	return nil
}

// Get returns the value under key.
func (m *Map) Get(key string) (any, bool) { return m.mapGet(key) }

// Has reports whether key has a value.
func (m *Map) Has(key string) bool {
	it := m.m[key]
	return it != nil && !it.Deleted()
}

// Delete removes key.
func (m *Map) Delete(key string) {
	if m.doc == nil {
		return
	}
	_ = m.transact(func(tx *Transaction) error { m.mapDelete(tx, key); return nil })
}

// Keys returns the keys that have a value, sorted.
func (m *Map) Keys() []string { return m.mapKeys() }

// Size returns the number of keys with a value.
func (m *Map) Size() int {
	n := 0
	for _, it := range m.m {
		if !it.Deleted() {
			n++
		}
	}
	return n
}

// ToJSON returns the map as plain Go values.
func (m *Map) ToJSON() map[string]any { return m.toJSON().(map[string]any) }

// Array is a shared list of values and nested types.
type Array struct{ *AbstractType }

// NewArray returns a preliminary array.
func NewArray() *Array {
	a := &Array{newAbstractType(KindArray)}
	a.api = a
	return a
}

// Insert inserts values at index.
func (a *Array) Insert(index int, values ...any) error {
	if a.doc == nil {
		return a.addPrelim(func(tx *Transaction) error { return a.listInsert(tx, index, values) })
	}
	return a.transact(func(tx *Transaction) error { return a.listInsert(tx, index, values) })
}

// Push appends values.
func (a *Array) Push(values ...any) error {
	if a.doc == nil {
		return a.addPrelim(func(tx *Transaction) error { return a.listInsert(tx, a.length, values) })
	}
	return a.transact(func(tx *Transaction) error { return a.listInsert(tx, a.length, values) })
}

// Delete removes length values starting at index.
func (a *Array) Delete(index, length int) error {
	if a.doc == nil {
		return a.addPrelim(func(tx *Transaction) error { return a.listDelete(tx, index, length) })
	}
	return a.transact(func(tx *Transaction) error { return a.listDelete(tx, index, length) })
}

// Get returns the value at index.
func (a *Array) Get(index int) (any, bool) { return a.listGet(index) }

// ToArray returns all values.
func (a *Array) ToArray() []any { return a.listValues() }

// ToJSON returns the array as plain Go values.
func (a *Array) ToJSON() []any { return a.toJSON().([]any) }

// toJSON converts a type to plain Go values, as the Yjs types' toJSON do (walk.go: nested
// types are walked without recursion).
func (t *AbstractType) toJSON() any {
	switch t.kind {
	case KindMap, KindArray, KindXmlHook:
		return jsonWalk(t)
	case KindText:
		return (&Text{t}).String()
	case KindXmlFragment, KindXmlElement, KindXmlText:
		return jsString(t.API())
	}
	return nil
}

// mapJSON returns the live entries of t as plain values (YMap.toJSON).
func mapJSON(t *AbstractType) map[string]any { return jsonWalk(t).(map[string]any) }
