package docjson_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"testing"

	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
	"github.com/ysync/ysync/crdt/internal/oracle"
)

// startOracle starts scripts/oracle.mjs (the reference yjs), skipping without Node unless CI is
// set.
func startOracle(t *testing.T) *oracle.Oracle {
	t.Helper()
	root, err := oracle.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	o, err := oracle.Start(root)
	if err != nil {
		if errors.Is(err, oracle.ErrUnavailable) && os.Getenv("CI") == "" {
			t.Skipf("oracle unavailable: %v (set CI=1 to make this a failure)", err)
		}
		t.Fatalf("oracle: %v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

type pair struct {
	V1 string `json:"v1"`
	V2 string `json:"v2"`
}

type snapshot struct {
	JSON   map[string]any `json:"json"`
	Deltas map[string]any `json:"deltas"`
	State  pair           `json:"state"`
}

type scenario struct {
	snapshot
	Merged pair `json:"merged"`
}

// Plain turns the oracle's tagged toJSON form into what JSON.stringify of the same value gives,
// parsed back: the form a JSON client of the HTTP API sees. ok is false for undefined.
func Plain(v any, inArray bool) (out any, ok bool) {
	switch x := v.(type) {
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i], _ = Plain(e, true)
		}
		return a, true
	case map[string]any:
		if len(x) == 1 {
			for k, e := range x {
				switch k {
				case "$undefined":
					if inArray {
						return nil, true
					}
					return nil, false
				case "$bigint":
					f, _ := strconv.ParseFloat(e.(string), 64)
					return f, true
				case "$bytes":
					b, _ := base64.StdEncoding.DecodeString(e.(string))
					m := map[string]any{}
					for i, c := range b {
						m[strconv.Itoa(i)] = float64(c)
					}
					return m, true
				case "$number":
					if e == "-0" {
						return float64(0), true
					}
					return nil, true
				case "$ytype":
					return Plain(e.(map[string]any)["json"], inArray)
				case "$doc":
					return map[string]any{"guid": e.(map[string]any)["guid"]}, true
				case "$object":
					return Plain(e, inArray)
				}
			}
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			if p, ok := Plain(e, false); ok {
				m[k] = p
			}
		}
		return m, true
	}
	return v, true
}

func parse(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("rendered JSON does not parse: %v\n%s", err, b)
	}
	return m
}

// emptyOf is what yjs renders for a root of that kind without content; an untyped root without
// content is left out by Render.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func compareRoots(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok && isEmpty(w) {
			continue
		}
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("%s: root %q:\n got  %s\n want %s", what, k, gj, wj)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: root %q rendered but yjs has no such root", what, k)
		}
	}
}

// TestRenderMatchesYjs renders fuzzed documents made by the reference yjs (text with formats and
// embeds, arrays, maps, nested types, XML, emoji) and compares with yjs's toJSON and toDelta of
// the same state. The Go document is loaded untyped, so root kinds are inferred.
func TestRenderMatchesYjs(t *testing.T) {
	o := startOracle(t)
	seeds := 120
	if testing.Short() {
		seeds = 30
	}
	for seed := 1; seed <= seeds; seed++ {
		var sc scenario
		if err := o.Call(map[string]any{"cmd": "gen", "session": "r", "seed": seed, "docs": 3, "steps": 20 + seed%41}, &sc); err != nil {
			t.Fatalf("seed %d: gen: %v", seed, err)
		}
		// Loading the merged update in yjs gives the reference for exactly this state
		// (formatting cleanup may make the converged docs differ slightly, see oracle.mjs).
		var ref snapshot
		if err := o.Call(map[string]any{"cmd": "load", "updates": []string{sc.Merged.V1}}, &ref); err != nil {
			t.Fatalf("seed %d: load: %v", seed, err)
		}
		what := fmt.Sprintf("seed %d", seed)
		wantJSON, _ := Plain(ref.JSON, false)
		wantDelta, _ := Plain(ref.Deltas, false)

		for _, v2 := range []bool{false, true} {
			upd := oracle.UnB64(sc.Merged.V1)
			if v2 {
				upd = oracle.UnB64(sc.Merged.V2)
			}
			got, err := docjson.RenderUpdate(upd, v2, docjson.Options{})
			if err != nil {
				t.Fatalf("%s: render: %v", what, err)
			}
			compareRoots(t, what+" json", parse(t, got), wantJSON.(map[string]any))
		}
		got, err := docjson.RenderUpdate(oracle.UnB64(sc.Merged.V1), false, docjson.Options{Delta: true})
		if err != nil {
			t.Fatalf("%s: render delta: %v", what, err)
		}
		gotM := parse(t, got)
		for name, d := range wantDelta.(map[string]any) {
			if g, ok := gotM[name]; ok || len(d.([]any)) > 0 {
				if !reflect.DeepEqual(g, d) {
					gj, _ := json.Marshal(g)
					wj, _ := json.Marshal(d)
					t.Errorf("%s delta: root %q:\n got  %s\n want %s", what, name, gj, wj)
				}
			}
		}
		if t.Failed() {
			t.Fatalf("replay: node scripts/oracle.mjs <<< '{\"cmd\":\"gen\",\"session\":\"r\",\"seed\":%d,\"docs\":3,\"steps\":%d}'", seed, 20+seed%41)
		}
	}
}

func TestRenderEmptyAndKinds(t *testing.T) {
	doc := crdt.NewDoc(crdt.DocOptions{})
	b, err := docjson.Render(doc, docjson.Options{})
	if err != nil || string(b) != "{}" {
		t.Fatalf("empty doc: %s, %v", b, err)
	}
	doc.Transact(func(*crdt.Transaction) {
		_ = doc.GetText("t").Insert(0, "hi 😀", map[string]any{"bold": true})
		_ = doc.GetMap("m").Set("big", int64(1)<<60)
		_ = doc.GetArray("a").Push([]byte{1, 2}, crdt.NewText("x"))
	}, nil)
	upd, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := docjson.Load(upd, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint8{"t": docjson.KindText, "m": docjson.KindMap, "a": docjson.KindArray, "zz": docjson.KindNone} {
		if k := docjson.Kind(loaded, name); k != want {
			t.Errorf("Kind(%q) = %d, want %d", name, k, want)
		}
	}
	got, err := docjson.Render(loaded, docjson.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[{"0":1,"1":2},"x"],"m":{"big":1152921504606846976},"t":"hi 😀"}`; string(got) != want {
		t.Errorf("Render = %s, want %s", got, want)
	}
	got, _ = docjson.Render(loaded, docjson.Options{Delta: true})
	if want := `{"a":[{"0":1,"1":2},"x"],"m":{"big":1152921504606846976},"t":[{"insert":"hi 😀","attributes":{"bold":true}}]}`; string(got) != want {
		t.Errorf("Render delta = %s, want %s", got, want)
	}
	if _, err := docjson.RenderUpdate([]byte{1, 2, 3}, false, docjson.Options{}); err == nil {
		t.Error("RenderUpdate of garbage: no error")
	}
}

func TestRenderTooDeep(t *testing.T) {
	doc := crdt.NewDoc(crdt.DocOptions{})
	doc.Transact(func(*crdt.Transaction) {
		cur := doc.GetArray("a")
		for range docjson.MaxDepth + 5 {
			next := crdt.NewArray()
			_ = cur.Push(next)
			v, _ := cur.Get(0)
			cur = v.(*crdt.Array)
		}
	}, nil)
	if _, err := docjson.Render(doc, docjson.Options{}); !errors.Is(err, docjson.ErrTooDeep) {
		t.Fatalf("Render of a %d-deep doc: %v, want ErrTooDeep", docjson.MaxDepth+5, err)
	}
}
