package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"

	"github.com/ysync/ysync/crdt"
)

// withSearchPath returns databaseURL with its search_path set to schema.
func withSearchPath(databaseURL, schema string) (string, error) {
	if !strings.Contains(databaseURL, "://") {
		return databaseURL + " search_path=" + schema, nil // keyword/value form
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", errors.New("invalid database URL") // the parse error would print the password
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// recorder collects the updates a local document emits, one per transaction.
type recorder struct {
	doc     *crdt.Doc
	text    *crdt.Text
	updates [][]byte
}

func newRecorder(client uint64) *recorder {
	r := &recorder{doc: crdt.NewDoc(crdt.DocOptions{ClientID: client})}
	r.text = r.doc.GetText("text")
	r.doc.ObserveUpdate(func(u []byte, _ any, _ *crdt.Transaction) { r.updates = append(r.updates, bytes.Clone(u)) })
	return r
}

// traceUpdates replays the first n transactions of an editing trace (the editing-traces format:
// {startContent, txns: [{patches: [[pos, del, ins]]}]}) and returns one update per transaction
// and the text they make. Positions are code points; the text is kept in step with them.
func traceUpdates(path string, n int) ([][]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	var raw struct {
		StartContent string `json:"startContent"`
		Txns         []struct {
			Patches [][3]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if len(raw.Txns) < n {
		return nil, "", fmt.Errorf("%s has %d transactions, fewer than the %d updates asked for", path, len(raw.Txns), n)
	}
	rec := newRecorder(2946758011)
	cps := []rune(raw.StartContent) // the text as code points, to turn positions into UTF-16 units
	if len(cps) > 0 {
		if err := rec.text.Insert(0, raw.StartContent, nil); err != nil {
			return nil, "", err
		}
	}
	for _, txn := range raw.Txns[:n] {
		var err error
		rec.doc.Transact(func(*crdt.Transaction) {
			for _, p := range txn.Patches {
				var pos, del int
				var ins string
				if err = errors.Join(json.Unmarshal(p[0], &pos), json.Unmarshal(p[1], &del), json.Unmarshal(p[2], &ins)); err != nil {
					return
				}
				if pos < 0 || del < 0 || pos+del > len(cps) {
					err = fmt.Errorf("patch %v out of range", p)
					return
				}
				at := utf16Len(cps[:pos])
				if del > 0 {
					if err = rec.text.Delete(at, utf16Len(cps[pos:pos+del])); err != nil {
						return
					}
				}
				if ins != "" {
					if err = rec.text.Insert(at, ins, nil); err != nil {
						return
					}
				}
				cps = append(cps[:pos], append([]rune(ins), cps[pos+del:]...)...)
			}
		}, nil)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", path, err)
		}
	}
	if got := rec.text.String(); got != string(cps) {
		return nil, "", fmt.Errorf("%s: replayed text differs from the patches' text", path)
	}
	return rec.updates, rec.text.String(), nil
}

func utf16Len(rs []rune) int {
	n := 0
	for _, r := range rs {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// syntheticUpdates is a typist: n edits, mostly a character typed at the cursor, sometimes a
// backspace, sometimes a jump of the cursor.
func syntheticUpdates(n int) ([][]byte, string, error) {
	r := rand.New(rand.NewPCG(1, 2))
	rec := newRecorder(2946758011)
	cursor := 0
	for len(rec.updates) < n {
		l := rec.text.Len()
		if r.IntN(30) == 0 {
			cursor = r.IntN(l + 1)
		}
		var err error
		if cursor > 0 && r.IntN(6) == 0 {
			cursor--
			err = rec.text.Delete(cursor, 1)
		} else {
			err = rec.text.Insert(cursor, string(rune('a'+r.IntN(26))), nil)
			cursor++
		}
		if err != nil {
			return nil, "", err
		}
	}
	return rec.updates, rec.text.String(), nil
}

// writeBigDoc stores, as a checkpoint, a document of about size bytes of text: 4 KiB pieces of
// words inserted at random places (so the text is a few thousand items, as a long-edited
// document is, not one). It returns the encoded size. The generating document is dropped before
// it returns.
func writeBigDoc(ctx context.Context, st benchStore, name string, size int) (int, error) {
	const piece = 4 << 10
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards box and vex nymphs")
	r := rand.New(rand.NewPCG(3, 4))
	doc := crdt.NewDoc(crdt.DocOptions{ClientID: 77})
	text := doc.GetText("text")
	var b strings.Builder
	for written := 0; written < size; written += piece {
		b.Reset()
		for b.Len() < piece {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		if err := text.Insert(r.IntN(text.Len()+1), b.String()[:piece], nil); err != nil {
			return 0, err
		}
	}
	state, err := crdt.EncodeStateAsUpdate(doc, nil)
	if err != nil {
		return 0, err
	}
	if err := writeCheckpoint(ctx, st, name, state); err != nil {
		return 0, err
	}
	return len(state), nil
}
