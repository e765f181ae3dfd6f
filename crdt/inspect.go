package crdt

// Read-only accessors for code outside the package that walks a document without knowing its
// root kinds in advance (crdt/docjson renders roots that arrived untyped).

// MapKeys returns the keys of the type's live map entries, sorted. Every kind may have map
// entries (Map keys, XML attributes, Text attributes); an untyped root with entries was a Map.
func (t *AbstractType) MapKeys() []string { return t.mapKeys() }

// EachItem calls fn with every item of the type's list, deleted ones included, left to right,
// until fn returns false.
func (t *AbstractType) EachItem(fn func(it *Item) bool) {
	for n := t.start; n != nil; n = n.Right {
		if !fn(n) {
			return
		}
	}
}
