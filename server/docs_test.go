package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ysync/ysync/auth"
	"github.com/ysync/ysync/crdt"
	"github.com/ysync/ysync/crdt/docjson"
	"github.com/ysync/ysync/crdt/syncproto"
	"github.com/ysync/ysync/server"
)

// do sends one request and returns the status and body.
func do(t *testing.T, method, u, tok string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func docURL(base, name, suffix string) string {
	return base + "/api/docs/" + url.PathEscape(name) + suffix
}

// editor is a Yjs replica connected over /ws, as a browser would be.
type editor struct {
	t    *testing.T
	c    *websocket.Conn
	mu   sync.Mutex
	doc  *crdt.Doc
	done chan struct{}
}

func newEditor(t *testing.T, base, name string, client uint64) *editor {
	t.Helper()
	c, status := dialToken(t, base, url.PathEscape(name), "", nil)
	if c == nil {
		t.Fatalf("dial: %d", status)
	}
	e := &editor{t: t, c: c, doc: crdt.NewDoc(crdt.DocOptions{ClientID: client}), done: make(chan struct{})}
	e.doc.ObserveUpdate(func(u []byte, origin any, _ *crdt.Transaction) {
		if origin == "remote" {
			return
		}
		_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeUpdate(u))
	})
	if err := c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep1(crdt.EncodeStateVector(e.doc))); err != nil {
		t.Fatal(err)
	}
	go func() { // the reader
		defer close(e.done)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			m, err := syncproto.Decode(data)
			if err != nil || m.Type != syncproto.TypeSync {
				continue
			}
			switch m.SyncType {
			case syncproto.SyncStep2, syncproto.SyncUpdate:
				e.mu.Lock()
				err = crdt.ApplyUpdate(e.doc, m.Payload, "remote")
				e.mu.Unlock()
				if err != nil {
					t.Errorf("editor %d: apply: %v", client, err)
				}
			case syncproto.SyncStep1:
				e.mu.Lock() // writes to c happen under mu (the update observer runs under it too)
				u, _ := crdt.EncodeStateAsUpdate(e.doc, m.Payload)
				_ = c.WriteMessage(websocket.BinaryMessage, syncproto.EncodeSyncStep2(u))
				e.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-e.done })
	return e
}

func (e *editor) edit(fn func(doc *crdt.Doc)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.doc.Transact(func(*crdt.Transaction) { fn(e.doc) }, nil)
}

func (e *editor) json() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	b, err := docjson.Render(e.doc, docjson.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func eventually(t *testing.T, what string, cond func() bool, state ...func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, s := range state {
				t.Log(s())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDocsReadWrite(t *testing.T) {
	_, st, base := startMem(t, server.Config{})
	name := "notes/2024:q1 ü"
	status, body := do(t, "GET", docURL(base, name, ""), "", nil)
	if status != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("never written: %d %s; want 200 {}", status, body)
	}
	ed := newEditor(t, base, name, 50)

	status, body = do(t, "POST", docURL(base, name, "/update"), "", textUpdate(t, 7, "hello 😀"))
	if status != 200 || strings.TrimSpace(string(body)) != `{"seq":1}` && !strings.Contains(string(body), `"seq": 1`) {
		t.Fatalf("POST update: %d %s", status, body)
	}
	// Answered once stored.
	if _, _, seq, _ := st.Load(t.Context(), name); seq != 1 {
		t.Fatalf("store after POST: seq %d, want 1", seq)
	}
	eventually(t, "the connected editor to get the update", func() bool { return ed.json() == `{"t":"hello 😀"}` })

	status, body = do(t, "GET", docURL(base, name, ""), "", nil)
	if status != 200 || strings.TrimSpace(string(body)) != `{"t":"hello 😀"}` {
		t.Fatalf("GET: %d %s", status, body)
	}
	status, body = do(t, "GET", docURL(base, name, "?format=delta"), "", nil)
	if status != 200 || strings.TrimSpace(string(body)) != `{"t":[{"insert":"hello 😀"}]}` {
		t.Fatalf("GET delta: %d %s", status, body)
	}
	// The binary state decodes to the same content, V1 and V2; with ?sv only the difference.
	status, full := do(t, "GET", docURL(base, name, "/update"), "", nil)
	if status != 200 {
		t.Fatalf("GET update: %d %s", status, full)
	}
	if got, _ := docjson.RenderUpdate(full, false, docjson.Options{}); string(got) != `{"t":"hello 😀"}` {
		t.Fatalf("GET update decodes to %s", got)
	}
	status, v2 := do(t, "GET", docURL(base, name, "/update?v=2"), "", nil)
	if got, _ := docjson.RenderUpdate(v2, true, docjson.Options{}); status != 200 || string(got) != `{"t":"hello 😀"}` {
		t.Fatalf("GET update v2: %d, decodes to %s", status, got)
	}
	sv, _ := crdt.EncodeStateVectorFromUpdate(full)
	status, diff := do(t, "GET", docURL(base, name, "/update?sv="+url.QueryEscape(base64.StdEncoding.EncodeToString(sv))), "", nil)
	if status != 200 || !bytes.Equal(diff, []byte{0, 0}) {
		t.Fatalf("GET update with the full state vector: %d %x; want the empty update", status, diff)
	}
	// A V2 update in; the editor's own edit out.
	u2, _ := crdt.ConvertUpdateFormatV1ToV2(textUpdate(t, 8, "A"))
	if status, body := do(t, "POST", docURL(base, name, "/update?v=2"), "", u2); status != 200 {
		t.Fatalf("POST v2: %d %s", status, body)
	}
	ed.edit(func(doc *crdt.Doc) { _ = doc.GetMap("m").Set("k", "v") })
	eventually(t, "the editor's edit to be readable", func() bool {
		_, b := do(t, "GET", docURL(base, name, ""), "", nil)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mm, _ := m["m"].(map[string]any)
		return mm["k"] == "v" && strings.Contains(m["t"].(string), "A")
	})
	// An unescaped slash works too: the suffix is read from the end.
	if status, _ := do(t, "GET", base+"/api/docs/notes/2024:q1%20%C3%BC/update", "", nil); status != 200 {
		t.Fatalf("unescaped slash: %d", status)
	}
}

func TestDocsBadInput(t *testing.T) {
	_, st, base := startMem(t, server.Config{Limits: server.Limits{MaxDocBytes: 2048}})
	name := "d"
	if status, _ := do(t, "POST", docURL(base, name, "/update"), "", textUpdate(t, 1, "ok")); status != 200 {
		t.Fatal(status)
	}
	good := textUpdate(t, 2, "more")
	if status, _ := do(t, "POST", docURL(base, "big", "/update"), "", textUpdate(t, 1, strings.Repeat("x", 1500))); status != 200 {
		t.Fatal(status)
	}
	cases := []struct {
		what, method, url string
		body              []byte
		want              int
	}{
		{"malformed update", "POST", docURL(base, name, "/update"), []byte{0xff, 0xfe, 0x01}, 400},
		{"truncated update", "POST", docURL(base, name, "/update"), good[:len(good)-3], 400},
		{"V1 sent as V2", "POST", docURL(base, name, "/update?v=2"), good, 400},
		{"empty body", "POST", docURL(base, name, "/update"), nil, 400},
		{"oversized body", "POST", docURL(base, name, "/update"), textUpdate(t, 3, strings.Repeat("x", 4000)), 413},
		{"update over the size limit", "POST", docURL(base, "big", "/update"), textUpdate(t, 4, strings.Repeat("y", 1500)), 413},
		{"unknown update version", "POST", docURL(base, name, "/update?v=3"), good, 400},
		{"bad state vector", "GET", docURL(base, name, "/update?sv=!!!"), nil, 400},
		{"unknown format", "GET", docURL(base, name, "?format=xml"), nil, 400},
		{"NUL in name", "GET", base + "/api/docs/a%00b", nil, 400},
		{"name too long", "GET", docURL(base, strings.Repeat("n", 1025), ""), nil, 400},
		{"unknown version", "GET", docURL(base, name, "/versions/999"), nil, 404},
		{"unknown version restore", "POST", docURL(base, name, "/versions/999/restore"), nil, 404},
		{"bad version id", "GET", docURL(base, name, "/versions/x1"), nil, 400},
		{"version without label", "POST", docURL(base, name, "/versions"), []byte(`{}`), 400},
		{"version label not JSON", "POST", docURL(base, name, "/versions"), []byte(`label`), 400},
		{"method not allowed", "PUT", docURL(base, name, "/update"), good, 405},
	}
	for _, tc := range cases {
		status, body := do(t, tc.method, tc.url, "", tc.body)
		if status != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.what, status, body, tc.want)
		}
		var e struct{ Error string }
		if status >= 400 && (json.Unmarshal(body, &e) != nil || e.Error == "") {
			t.Errorf("%s: error body %q is not {\"error\": ...}", tc.what, body)
		}
	}
	if _, _, seq, _ := st.Load(t.Context(), name); seq != 1 {
		t.Fatalf("bad input changed the store: seq %d, want 1", seq)
	}
	if _, body := do(t, "GET", docURL(base, name, ""), "", nil); strings.TrimSpace(string(body)) != `{"t":"ok"}` {
		t.Fatalf("bad input changed the document: %s", body)
	}
}

func TestDocsAuth(t *testing.T) {
	_, _, base := startMem(t, server.Config{Authenticator: jwtAuth(t)})
	reader := token(t, auth.Claims{Docs: map[string]string{"d": "read"}})
	writer := token(t, auth.Claims{Docs: map[string]string{"d": "write"}})
	admin := token(t, auth.Claims{Admin: true})
	upd := textUpdate(t, 1, "x")
	huge := bytes.Repeat([]byte{1}, 80<<20) // larger than the size limit: refused before it is read
	cases := []struct {
		what, method, url, tok string
		body                   []byte
		want                   int
	}{
		{"no token", "GET", docURL(base, "d", ""), "", nil, 401},
		{"reader reads", "GET", docURL(base, "d", ""), reader, nil, 200},
		{"reader reads update", "GET", docURL(base, "d", "/update"), reader, nil, 200},
		{"reader lists versions", "GET", docURL(base, "d", "/versions"), reader, nil, 200},
		{"reader cannot write", "POST", docURL(base, "d", "/update"), reader, upd, 403},
		{"reader's huge body is refused by permission", "POST", docURL(base, "d", "/update"), reader, huge, 403},
		{"reader cannot version", "POST", docURL(base, "d", "/versions"), reader, []byte(`{"label":"x"}`), 403},
		{"other document", "GET", docURL(base, "e", ""), writer, nil, 403},
		{"writer writes", "POST", docURL(base, "d", "/update"), writer, upd, 200},
		{"writer versions", "POST", docURL(base, "d", "/versions"), writer, []byte(`{"label":"v1"}`), 201},
		{"writer cannot delete", "DELETE", docURL(base, "d", ""), writer, nil, 403},
		{"writer cannot list", "GET", base + "/api/docs", writer, nil, 403},
		{"admin lists", "GET", base + "/api/docs", admin, nil, 200},
		{"admin deletes", "DELETE", docURL(base, "d", ""), admin, nil, 204},
	}
	for _, tc := range cases {
		if status, body := do(t, tc.method, tc.url, tc.tok, tc.body); status != tc.want {
			t.Errorf("%s: %d %s; want %d", tc.what, status, body, tc.want)
		}
	}
}

func TestDocsListAndDelete(t *testing.T) {
	_, st, base := startMem(t, server.Config{IdleTimeout: time.Hour})
	for _, n := range []string{"p/a", "p/b", "p/c", "q"} {
		if status, _ := do(t, "POST", docURL(base, n, "/update"), "", textUpdate(t, 1, n)); status != 200 {
			t.Fatal(status)
		}
	}
	ed := newEditor(t, base, "p/b", 9)
	eventually(t, "the editor to sync", func() bool { return ed.json() == `{"t":"p/b"}` })
	type page struct {
		Documents []struct {
			Name     string
			Bytes    int64
			LastSeq  int64 `json:"last_seq"`
			Loaded   bool
			Sessions int
		}
		NextCursor string `json:"next_cursor"`
	}
	var p1, p2 page
	status, body := do(t, "GET", base+"/api/docs?prefix=p/&limit=2", "", nil)
	if status != 200 || json.Unmarshal(body, &p1) != nil || len(p1.Documents) != 2 || p1.NextCursor == "" {
		t.Fatalf("page 1: %d %s", status, body)
	}
	if d := p1.Documents[1]; d.Name != "p/b" || !d.Loaded || d.Sessions != 1 || d.Bytes == 0 || d.LastSeq != 1 {
		t.Fatalf("p/b listed as %+v", d)
	}
	_, body = do(t, "GET", base+"/api/docs?prefix=p/&limit=2&cursor="+p1.NextCursor, "", nil)
	if json.Unmarshal(body, &p2) != nil || len(p2.Documents) != 1 || p2.Documents[0].Name != "p/c" || p2.NextCursor != "" {
		t.Fatalf("page 2: %s", body)
	}
	if status, _ := do(t, "GET", base+"/api/docs?limit=0", "", nil); status != 400 {
		t.Fatalf("limit=0: %d", status)
	}
	// A version, then delete: the editor is closed with 4404, log and versions are gone.
	if status, body := do(t, "POST", docURL(base, "p/b", "/versions"), "", []byte(`{"label":"keep?"}`)); status != 201 {
		t.Fatalf("version: %d %s", status, body)
	}
	if status, body := do(t, "DELETE", docURL(base, "p/b", ""), "", nil); status != 204 {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	<-ed.done
	_ = ed.c.SetReadDeadline(time.Now().Add(time.Second))
	if names, _ := st.List(t.Context()); fmt.Sprint(names) != "[p/a p/c q]" {
		t.Fatalf("stored after delete: %v", names)
	}
	if _, body := do(t, "GET", docURL(base, "p/b", "/versions"), "", nil); !strings.Contains(string(body), `"versions": []`) {
		t.Fatalf("versions after delete: %s", body)
	}
	if _, body := do(t, "GET", docURL(base, "p/b", ""), "", nil); strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("GET after delete: %s", body)
	}
	if status, _ := do(t, "DELETE", docURL(base, "never", ""), "", nil); status != 404 {
		t.Fatalf("DELETE of an unknown document: %d", status)
	}
}

// The editor's connection is closed with 4404 when its document is deleted.
func TestDocsDeleteCloses4404(t *testing.T) {
	_, _, base := startMem(t, server.Config{})
	c, _ := dialToken(t, base, "gone", "", nil)
	syncOnce(t, c)
	if status, _ := do(t, "POST", docURL(base, "gone", "/update"), "", textUpdate(t, 1, "x")); status != 200 {
		t.Fatal(status)
	}
	if status, _ := do(t, "DELETE", docURL(base, "gone", ""), "", nil); status != 204 {
		t.Fatal(status)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, 4404) {
				t.Fatalf("closed with %v, want 4404", err)
			}
			return
		}
	}
}

// Edit, version, edit more, restore while two editors keep typing: everyone converges on the
// version's content plus the concurrent edits; the "before restore" version restores the rest.
func TestVersionRestoreWhileEditing(t *testing.T) {
	_, _, base := startMem(t, server.Config{IdleTimeout: time.Hour})
	name := "shared"
	alice := newEditor(t, base, name, 101)
	bob := newEditor(t, base, name, 102)
	alice.edit(func(d *crdt.Doc) {
		_ = d.GetText("t").Insert(0, "version one", nil)
		_ = d.GetMap("m").Set("state", "v1")
	})
	eventually(t, "bob to see alice's text", func() bool { return bob.json() == alice.json() })
	status, body := do(t, "POST", docURL(base, name, "/versions?user=carol"), "", []byte(`{"label":"first draft"}`))
	var v1 struct {
		ID        int64
		Label     string
		CreatedBy string `json:"created_by"`
		Seq       int64
	}
	if status != 201 || json.Unmarshal(body, &v1) != nil || v1.Label != "first draft" || v1.CreatedBy != "carol" {
		t.Fatalf("create version: %d %s", status, body)
	}
	bob.edit(func(d *crdt.Doc) {
		_ = d.GetText("t").Insert(0, "later edits: ", nil)
		_ = d.GetMap("m").Set("state", "v2")
		_ = d.GetMap("m").Set("extra", 1.0)
	})
	eventually(t, "alice to see bob's edits", func() bool { return bob.json() == alice.json() })

	// The version reads back as it was.
	if _, body := do(t, "GET", docURL(base, name, fmt.Sprintf("/versions/%d", v1.ID)), "", nil); strings.TrimSpace(string(body)) != `{"m":{"state":"v1"},"t":"version one"}` {
		t.Fatalf("version JSON: %s", body)
	}
	if _, upd := do(t, "GET", docURL(base, name, fmt.Sprintf("/versions/%d/update", v1.ID)), "", nil); true {
		if got, _ := docjson.RenderUpdate(upd, false, docjson.Options{}); string(got) != `{"m":{"state":"v1"},"t":"version one"}` {
			t.Fatalf("version update decodes to %s", got)
		}
	}

	// Both keep typing while the restore happens, and until each has seen it and typed a few
	// more entries on top (edits concurrent with the restore's, from replicas that had not seen
	// it yet, and after).
	restoredIn := func(d *crdt.Doc) bool {
		state, _ := d.GetMap("m").Get("state")
		return d.GetText("t").String() == "version one" && state == "v1"
	}
	var wg sync.WaitGroup
	var typedMu sync.Mutex
	after := map[string]bool{} // entries typed by a replica that had seen the restore
	for e, tag := range map[*editor]string{alice: "a", bob: "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := 0
			for i := 0; seen < 5 && i < 20000; i++ {
				entry := fmt.Sprint(tag, i)
				e.edit(func(d *crdt.Doc) {
					_ = d.GetArray("log").Push(entry)
					if restoredIn(d) {
						seen++
						typedMu.Lock()
						after[entry] = true
						typedMu.Unlock()
					}
				})
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	status, body = do(t, "POST", docURL(base, name, fmt.Sprintf("/versions/%d/restore", v1.ID)), "", nil)
	wg.Wait()
	var res struct {
		Seq           int64
		BeforeRestore struct {
			ID    int64
			Label string
		} `json:"before_restore"`
	}
	if status != 200 || json.Unmarshal(body, &res) != nil || res.BeforeRestore.Label != server.LabelBeforeRestore {
		t.Fatalf("restore: %d %s", status, body)
	}
	if len(after) < 10 {
		t.Fatalf("only %d entries typed after the restore", len(after))
	}
	var srv []byte
	eventually(t, "editors and server to converge", func() bool {
		_, srv = do(t, "GET", docURL(base, name, ""), "", nil)
		return alice.json() == bob.json() && strings.TrimSpace(string(srv)) == alice.json()
	}, func() string { return fmt.Sprintf("alice %s\nbob   %s\nsrv   %s", alice.json(), bob.json(), srv) })
	var got map[string]any
	_ = json.Unmarshal([]byte(alice.json()), &got)
	if got["t"] != "version one" || fmt.Sprint(got["m"]) != "map[state:v1]" {
		t.Fatalf("after restore: %s", alice.json())
	}
	inLog := map[string]bool{}
	for _, e := range got["log"].([]any) {
		inLog[e.(string)] = true
	}
	for e := range after {
		if !inLog[e] {
			t.Errorf("entry %s, typed after the restore, is lost", e)
		}
	}
	// Undo: the "before restore" version has the later edits.
	status, body = do(t, "POST", docURL(base, name, fmt.Sprintf("/versions/%d/restore", res.BeforeRestore.ID)), "", nil)
	if status != 200 {
		t.Fatalf("undo restore: %d %s", status, body)
	}
	eventually(t, "the undo to reach both editors", func() bool {
		var m map[string]any
		_ = json.Unmarshal([]byte(bob.json()), &m)
		return m["t"] == "later edits: version one" && fmt.Sprint(m["m"]) == fmt.Sprint(map[string]any{"state": "v2", "extra": 1.0}) && alice.json() == bob.json()
	})
	var list struct{ Versions []struct{ Label string } }
	_, body = do(t, "GET", docURL(base, name, "/versions"), "", nil)
	if json.Unmarshal(body, &list) != nil || len(list.Versions) < 3 || list.Versions[len(list.Versions)-1].Label != "first draft" || list.Versions[0].Label != server.LabelBeforeRestore {
		t.Fatalf("versions: %s", body)
	}
}
