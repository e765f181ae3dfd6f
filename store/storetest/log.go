package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/ysync/ysync/store"
)

// wantAfter checks UpdatesAfter(name, after, limit) against the expected seqs (updates are
// upd("u<seq>")) and compactedTo.
func wantAfter(t *testing.T, s Store, name string, after int64, limit int, wantSeqs []int64, wantCompacted int64) {
	t.Helper()
	seqs, ups, cp, err := s.UpdatesAfter(ctx(t), name, after, limit)
	if err != nil {
		t.Fatalf("UpdatesAfter(%q, %d, %d): %v", name, after, limit, err)
	}
	if cp != wantCompacted {
		t.Errorf("UpdatesAfter(%q, %d) compactedTo = %d, want %d", name, after, cp, wantCompacted)
	}
	if len(seqs) != len(ups) {
		t.Fatalf("UpdatesAfter(%q, %d): %d seqs but %d updates", name, after, len(seqs), len(ups))
	}
	if len(seqs) != len(wantSeqs) {
		t.Fatalf("UpdatesAfter(%q, %d, %d) seqs = %v, want %v", name, after, limit, seqs, wantSeqs)
	}
	for i := range seqs {
		if seqs[i] != wantSeqs[i] {
			t.Fatalf("UpdatesAfter(%q, %d, %d) seqs = %v, want %v", name, after, limit, seqs, wantSeqs)
		}
		if want := upd("u%d", seqs[i]); !bytes.Equal(ups[i], want) {
			t.Errorf("update of seq %d = %q, want %q", seqs[i], ups[i], want)
		}
	}
}

func testUpdatesAfter(t *testing.T, s Store) {
	wantAfter(t, s, "never-written", 0, 0, nil, 0)
	for i := int64(1); i <= 7; i++ {
		mustAppend(t, s, "doc", upd("u%d", i))
	}
	mustAppend(t, s, "doc-other", upd("u1"))
	wantAfter(t, s, "doc", 0, 0, []int64{1, 2, 3, 4, 5, 6, 7}, 0)
	wantAfter(t, s, "doc", 4, 0, []int64{5, 6, 7}, 0)
	wantAfter(t, s, "doc", 7, 0, nil, 0)
	wantAfter(t, s, "doc", 99, 0, nil, 0)
	// A limit pages through the range.
	wantAfter(t, s, "doc", 0, 3, []int64{1, 2, 3}, 0)
	wantAfter(t, s, "doc", 3, 3, []int64{4, 5, 6}, 0)
	wantAfter(t, s, "doc", 6, 3, []int64{7}, 0)
	if _, _, _, err := s.UpdatesAfter(ctx(t), "", 0, 0); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("UpdatesAfter with empty name: %v, want ErrInvalidName", err)
	}
}

func testUpdatesAfterCompacted(t *testing.T, s Store) {
	for i := int64(1); i <= 6; i++ {
		mustAppend(t, s, "doc", upd("u%d", i))
	}
	if err := s.Compact(ctx(t), "doc", upd("state-1-4"), 4); err != nil {
		t.Fatal(err)
	}
	// From before the checkpoint the range is gone: the caller must reload.
	wantAfter(t, s, "doc", 0, 0, nil, 4)
	wantAfter(t, s, "doc", 3, 0, nil, 4)
	// From the checkpoint on everything is there.
	wantAfter(t, s, "doc", 4, 0, []int64{5, 6}, 0)
	wantAfter(t, s, "doc", 5, 0, []int64{6}, 0)
}

// Reads during appends see a gap-free prefix: whatever UpdatesAfter returns is contiguous.
func testUpdatesAfterWithAppends(t *testing.T, s Store) {
	const n = 200
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); i <= n; i++ {
			if _, err := s.Append(ctx(t), "doc", upd("u%d", i)); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	}()
	var prefix int64
	for prefix < n {
		seqs, _, cp, err := s.UpdatesAfter(ctx(t), "doc", prefix, 0)
		if err != nil {
			t.Fatal(err)
		}
		if cp != 0 {
			t.Fatalf("compactedTo %d without a compaction", cp)
		}
		for _, seq := range seqs {
			if seq != prefix+1 {
				t.Fatalf("after prefix %d got seq %d: the log read has a gap", prefix, seq)
			}
			prefix = seq
		}
		if t.Failed() {
			break
		}
	}
	wg.Wait()
}

func testLastSeqs(t *testing.T, s Store) {
	got, err := s.LastSeqs(ctx(t), nil)
	if err != nil || len(got) != 0 {
		t.Fatalf("LastSeqs(nil) = %v, %v; want empty", got, err)
	}
	for i := 1; i <= 3; i++ {
		mustAppend(t, s, "a", upd("u%d", i))
	}
	mustAppend(t, s, "b/ü", upd("u1"))
	if err := s.Compact(ctx(t), "a", upd("A"), 3); err != nil {
		t.Fatal(err)
	}
	got, err = s.LastSeqs(ctx(t), []string{"a", "b/ü", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["a"] != 3 || got["b/ü"] != 1 {
		t.Fatalf("LastSeqs = %v, want a:3 b/ü:1 (compaction keeps the seq; unknown documents absent)", got)
	}
}
