// Package storetest is the contract test suite every document store must pass (store.Memory,
// store.Postgres), and shared benchmarks.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ysync/ysync/store"
)

// Store is the method set the suite exercises.
type Store interface {
	Load(ctx context.Context, name string) (checkpoint []byte, updates [][]byte, seq int64, err error)
	Append(ctx context.Context, name string, update []byte) (int64, error)
	Compact(ctx context.Context, name string, state []byte, uptoSeq int64) error
	UpdatesAfter(ctx context.Context, name string, after int64, limit int) (seqs []int64, updates [][]byte, compactedTo int64, err error)
	LastSeqs(ctx context.Context, names []string) (map[string]int64, error)
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]string, error)
	Ping(ctx context.Context) error
	Stats() store.Stats
	Close() error
}

// Run runs the contract tests. newStore must return a new, empty store each call, and may
// register cleanups on t; the suite closes the stores it gets (closing twice must be harmless).
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	open := func(t *testing.T) Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"LoadUnknown", testLoadUnknown},
		{"AppendOrder", testAppendOrder},
		{"DocumentsAreSeparate", testDocumentsAreSeparate},
		{"CheckpointThenAppend", testCheckpointThenAppend},
		{"CompactRemovesCovered", testCompactRemovesCovered},
		{"CompactErrors", testCompactErrors},
		{"CompactConcurrentWithAppends", testCompactConcurrentWithAppends},
		{"ConcurrentAppends", testConcurrentAppends},
		{"UpdatesAfter", testUpdatesAfter},
		{"UpdatesAfterCompacted", testUpdatesAfterCompacted},
		{"UpdatesAfterWithAppends", testUpdatesAfterWithAppends},
		{"LastSeqs", testLastSeqs},
		{"LargeUpdates", testLargeUpdates},
		{"Names", testNames},
		{"InvalidInput", testInvalidInput},
		{"DeleteAndList", testDeleteAndList},
		{"CallerOwnsSlices", testCallerOwnsSlices},
		{"CancelledContext", testCancelledContext},
		{"Stats", testStats},
		{"CloseFlushes", testCloseFlushes},
		{"AfterClose", testAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustAppend(t *testing.T, s Store, name string, data []byte) int64 {
	t.Helper()
	seq, err := s.Append(ctx(t), name, data)
	if err != nil {
		t.Fatalf("Append(%q): %v", name, err)
	}
	return seq
}

func mustLoad(t *testing.T, s Store, name string) ([]byte, [][]byte, int64) {
	t.Helper()
	cp, ups, seq, err := s.Load(ctx(t), name)
	if err != nil {
		t.Fatalf("Load(%q): %v", name, err)
	}
	return cp, ups, seq
}

func upd(format string, args ...any) []byte { return fmt.Appendf(nil, format, args...) }

func wantLoad(t *testing.T, s Store, name string, wantCP []byte, wantUpdates [][]byte, wantSeq int64) {
	t.Helper()
	cp, ups, seq := mustLoad(t, s, name)
	if !bytes.Equal(cp, wantCP) || (cp == nil) != (wantCP == nil) {
		t.Errorf("Load(%q) checkpoint = %q, want %q", name, short(cp), short(wantCP))
	}
	if len(ups) != len(wantUpdates) {
		t.Errorf("Load(%q) got %d updates, want %d", name, len(ups), len(wantUpdates))
	} else {
		for i := range ups {
			if !bytes.Equal(ups[i], wantUpdates[i]) {
				t.Errorf("Load(%q) update %d = %q, want %q", name, i, short(ups[i]), short(wantUpdates[i]))
			}
		}
	}
	if seq != wantSeq {
		t.Errorf("Load(%q) seq = %d, want %d", name, seq, wantSeq)
	}
}

func short(b []byte) []byte {
	if len(b) > 40 {
		return append(slices.Clip(b[:40]), "..."...)
	}
	return b
}

func testLoadUnknown(t *testing.T, s Store) {
	cp, ups, seq := mustLoad(t, s, "never-written")
	if cp != nil || ups != nil || seq != 0 {
		t.Fatalf("Load of unknown doc = %q, %q, %d; want nil, nil, 0", cp, ups, seq)
	}
}

func testAppendOrder(t *testing.T, s Store) {
	var want [][]byte
	for i := range 50 {
		u := upd("update-%d", i)
		if seq := mustAppend(t, s, "doc", u); seq != int64(i+1) {
			t.Fatalf("Append #%d returned seq %d, want %d", i, seq, i+1)
		}
		want = append(want, u)
	}
	wantLoad(t, s, "doc", nil, want, 50)
}

func testDocumentsAreSeparate(t *testing.T, s Store) {
	// Names that are prefixes of each other must not mix.
	mustAppend(t, s, "a", upd("a1"))
	mustAppend(t, s, "ab", upd("ab1"))
	mustAppend(t, s, "a", upd("a2"))
	if seq := mustAppend(t, s, "ab", upd("ab2")); seq != 2 {
		t.Errorf("second append to ab: seq %d, want 2 (seqs are per document)", seq)
	}
	if err := s.Compact(ctx(t), "a", upd("A"), 2); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, s, "a", upd("A"), nil, 2)
	wantLoad(t, s, "ab", nil, [][]byte{upd("ab1"), upd("ab2")}, 2)
}

func testCheckpointThenAppend(t *testing.T, s Store) {
	for i := 1; i <= 3; i++ {
		mustAppend(t, s, "doc", upd("u%d", i))
	}
	// The caller's state covers u1, u2 (say u3 arrived after it took the snapshot).
	if err := s.Compact(ctx(t), "doc", upd("state-1-2"), 2); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	wantLoad(t, s, "doc", upd("state-1-2"), [][]byte{upd("u3")}, 3)
	if seq := mustAppend(t, s, "doc", upd("u4")); seq != 4 {
		t.Fatalf("append after compact: seq %d, want 4", seq)
	}
	wantLoad(t, s, "doc", upd("state-1-2"), [][]byte{upd("u3"), upd("u4")}, 4)

	// A second checkpoint replaces the first.
	if err := s.Compact(ctx(t), "doc", upd("state-1-3"), 3); err != nil {
		t.Fatalf("second Compact: %v", err)
	}
	wantLoad(t, s, "doc", upd("state-1-3"), [][]byte{upd("u4")}, 4)
}

func testCompactRemovesCovered(t *testing.T, s Store) {
	var last int64
	for i := 1; i <= 10; i++ {
		last = mustAppend(t, s, "doc", upd("u%d", i))
	}
	if err := s.Compact(ctx(t), "doc", upd("full"), last); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	wantLoad(t, s, "doc", upd("full"), nil, 10)

	// Compacting again at the same seq replaces the state.
	if err := s.Compact(ctx(t), "doc", upd("full-again"), last); err != nil {
		t.Fatalf("Compact at same seq: %v", err)
	}
	wantLoad(t, s, "doc", upd("full-again"), nil, 10)

	// Seqs keep counting after compaction.
	if seq := mustAppend(t, s, "doc", upd("u11")); seq != 11 {
		t.Fatalf("append after full compaction: seq %d, want 11", seq)
	}
	wantLoad(t, s, "doc", upd("full-again"), [][]byte{upd("u11")}, 11)
}

func testCompactErrors(t *testing.T, s Store) {
	c := ctx(t)
	if err := s.Compact(c, "nope", upd("x"), 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Compact unknown doc = %v, want ErrNotFound", err)
	}
	for i := 1; i <= 5; i++ {
		mustAppend(t, s, "doc", upd("u%d", i))
	}
	for _, upto := range []int64{0, -1, 6, 100} {
		if err := s.Compact(c, "doc", upd("x"), upto); !errors.Is(err, store.ErrInvalidSeq) {
			t.Errorf("Compact upto %d of 5 = %v, want ErrInvalidSeq", upto, err)
		}
	}
	if err := s.Compact(c, "doc", nil, 3); !errors.Is(err, store.ErrEmptyUpdate) {
		t.Errorf("Compact with empty state = %v, want ErrEmptyUpdate", err)
	}
	if err := s.Compact(c, "doc", upd("s4"), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(c, "doc", upd("s3"), 3); !errors.Is(err, store.ErrStaleCheckpoint) {
		t.Errorf("Compact older than newest checkpoint = %v, want ErrStaleCheckpoint", err)
	}
	// Failed compactions change nothing.
	wantLoad(t, s, "doc", upd("s4"), [][]byte{upd("u5")}, 5)
}

// Appends racing with compactions: every update is either covered by the checkpoint the
// compactor wrote (it "applied" it) or still in the log, never lost, never duplicated.
func testCompactConcurrentWithAppends(t *testing.T, s Store) {
	const n = 200
	c := ctx(t)
	var (
		mu      sync.Mutex
		applied = map[int64]string{} // what a live Y.Doc would have applied, by seq
	)
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			u := fmt.Sprintf("u%d", i)
			seq, err := s.Append(c, "doc", []byte(u))
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			applied[seq] = u
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for range 20 {
			// Checkpoint = the contiguous prefix of applied updates.
			mu.Lock()
			var upto int64
			for applied[upto+1] != "" {
				upto++
			}
			mu.Unlock()
			if upto == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			if err := s.Compact(c, "doc", upd("upto=%d", upto), upto); err != nil && !errors.Is(err, store.ErrStaleCheckpoint) {
				errc <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	cp, ups, seq := mustLoad(t, s, "doc")
	var covered int64
	if cp != nil {
		if _, err := fmt.Sscanf(string(cp), "upto=%d", &covered); err != nil {
			t.Fatalf("checkpoint %q: %v", cp, err)
		}
	}
	if seq != n {
		t.Errorf("seq = %d, want %d", seq, n)
	}
	if got, want := int64(len(ups)), n-covered; got != want {
		t.Fatalf("checkpoint covers %d, %d updates left; want %d", covered, got, want)
	}
	for i, u := range ups {
		if want := applied[covered+1+int64(i)]; string(u) != want {
			t.Fatalf("update after checkpoint #%d = %q, want %q", i, u, want)
		}
	}
}

func testConcurrentAppends(t *testing.T, s Store) {
	const (
		writers = 32
		docs    = 8
		each    = 40
	)
	c := ctx(t)
	type rec struct {
		seq  int64
		data string
	}
	var (
		mu   sync.Mutex
		got  = map[string][]rec{}
		wg   sync.WaitGroup
		fail atomic.Value
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				doc := fmt.Sprintf("doc-%d", (w+i)%docs)
				data := fmt.Sprintf("w%d-i%d", w, i)
				seq, err := s.Append(c, doc, []byte(data))
				if err != nil {
					fail.Store(err)
					return
				}
				mu.Lock()
				got[doc] = append(got[doc], rec{seq, data})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		t.Fatalf("Append: %v", err)
	}
	total := 0
	for d := range docs {
		doc := fmt.Sprintf("doc-%d", d)
		_, ups, seq := mustLoad(t, s, doc)
		recs := got[doc]
		total += len(ups)
		if len(ups) != len(recs) || seq != int64(len(recs)) {
			t.Fatalf("%s: loaded %d updates (seq %d), appended %d", doc, len(ups), seq, len(recs))
		}
		// Every update sits at the seq its Append returned.
		for _, r := range recs {
			if r.seq < 1 || int(r.seq) > len(ups) || string(ups[r.seq-1]) != r.data {
				t.Fatalf("%s: Append(%s) returned seq %d, but Load has it elsewhere", doc, r.data, r.seq)
			}
		}
		// Each writer's updates to this doc appear in the order it wrote them.
		lastI := map[string]int{}
		for _, u := range ups {
			var w, i int
			if _, err := fmt.Sscanf(string(u), "w%d-i%d", &w, &i); err != nil {
				t.Fatalf("%s: update %q: %v", doc, u, err)
			}
			key := fmt.Sprint(w)
			if prev, ok := lastI[key]; ok && i <= prev {
				t.Fatalf("%s: writer %d's update %d loaded after its update %d", doc, w, i, prev)
			}
			lastI[key] = i
		}
	}
	if total != writers*each {
		t.Fatalf("loaded %d updates in all, want %d", total, writers*each)
	}
}

func testLargeUpdates(t *testing.T, s Store) {
	big := func(n int, seed byte) []byte {
		b := make([]byte, n)
		x := uint32(seed) + 1
		for i := range b {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b[i] = byte(x)
		}
		return b
	}
	u1, u2, u3 := big(5<<20, 1), upd("small"), big(3<<20, 2)
	// Concurrently, so a batching store sees them together.
	var wg sync.WaitGroup
	for _, u := range [][]byte{u1, u2, u3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Append(ctx(t), "big/"+string(rune('a'+len(u)%7)), u); err != nil {
				t.Errorf("Append %d bytes: %v", len(u), err)
			}
		}()
	}
	wg.Wait()
	mustAppend(t, s, "big", u1)
	mustAppend(t, s, "big", u2)
	mustAppend(t, s, "big", u3)
	wantLoad(t, s, "big", nil, [][]byte{u1, u2, u3}, 3)
	state := big(8<<20, 3)
	if err := s.Compact(ctx(t), "big", state, 2); err != nil {
		t.Fatalf("Compact with 8 MiB state: %v", err)
	}
	wantLoad(t, s, "big", state, [][]byte{u3}, 3)
}

var names = []string{
	"room:42",
	"org/team/doc",
	"a:b/c:d//e",
	"ünïcødé/文档/документ",
	"emoji-📝",
	"with space and 'quote' \"dq\" \\ %_*",
	"x", // one byte
	string(bytes.Repeat([]byte("n"), store.MaxNameLen)),
}

func testNames(t *testing.T, s Store) {
	for i, n := range names {
		mustAppend(t, s, n, upd("u%d", i))
	}
	for i, n := range names {
		wantLoad(t, s, n, nil, [][]byte{upd("u%d", i)}, 1)
	}
	list, err := s.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(list, want) {
		t.Errorf("List = %q\nwant   %q (sorted bytewise)", list, want)
	}
}

func testInvalidInput(t *testing.T, s Store) {
	c := ctx(t)
	for _, n := range []string{"", "nul\x00byte", "bad-\xff-utf8", string(bytes.Repeat([]byte("n"), store.MaxNameLen+1))} {
		if _, err := s.Append(c, n, upd("x")); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Append(%q) = %v, want ErrInvalidName", n, err)
		}
		if _, _, _, err := s.Load(c, n); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Load(%q) = %v, want ErrInvalidName", n, err)
		}
		if err := s.Compact(c, n, upd("x"), 1); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Compact(%q) = %v, want ErrInvalidName", n, err)
		}
		if err := s.Delete(c, n); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidName", n, err)
		}
	}
	for _, u := range [][]byte{nil, {}} {
		if _, err := s.Append(c, "doc", u); !errors.Is(err, store.ErrEmptyUpdate) {
			t.Errorf("Append(empty) = %v, want ErrEmptyUpdate", err)
		}
	}
	// A rejected append next to good ones (same batch, for a batching store) harms none of them.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_, _ = s.Append(c, "bad\x00", upd("x"))
			} else if _, err := s.Append(c, "good", upd("g%d", i)); err != nil {
				t.Errorf("good append: %v", err)
			}
		}()
	}
	wg.Wait()
	if _, ups, _ := mustLoad(t, s, "good"); len(ups) != 10 {
		t.Errorf("good doc has %d updates, want 10", len(ups))
	}
	if _, ups, _ := mustLoad(t, s, "doc"); len(ups) != 0 {
		t.Errorf("rejected appends were stored: %q", ups)
	}
}

func testDeleteAndList(t *testing.T, s Store) {
	c := ctx(t)
	if list, err := s.List(c); err != nil || len(list) != 0 {
		t.Fatalf("List of empty store = %q, %v", list, err)
	}
	if err := s.Delete(c, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delete unknown = %v, want ErrNotFound", err)
	}
	for _, d := range []string{"b", "a", "c"} {
		mustAppend(t, s, d, upd("%s1", d))
		mustAppend(t, s, d, upd("%s2", d))
	}
	if err := s.Compact(c, "b", upd("B"), 1); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(c); err != nil || !slices.Equal(list, []string{"a", "b", "c"}) {
		t.Fatalf("List = %q, %v; want [a b c]", list, err)
	}
	if err := s.Delete(c, "b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantLoad(t, s, "b", nil, nil, 0)
	if list, err := s.List(c); err != nil || !slices.Equal(list, []string{"a", "c"}) {
		t.Fatalf("List after delete = %q, %v; want [a c]", list, err)
	}
	if err := s.Delete(c, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	// A deleted document starts over.
	if seq := mustAppend(t, s, "b", upd("new")); seq != 1 {
		t.Errorf("append after delete: seq %d, want 1", seq)
	}
	wantLoad(t, s, "b", nil, [][]byte{upd("new")}, 1)
	wantLoad(t, s, "a", nil, [][]byte{upd("a1"), upd("a2")}, 2)
}

func testCallerOwnsSlices(t *testing.T, s Store) {
	u := upd("original")
	mustAppend(t, s, "doc", u)
	copy(u, "XXXXXXXX") // the store must not keep the caller's buffer
	st := upd("state")
	if err := s.Compact(ctx(t), "doc", st, 1); err != nil {
		t.Fatal(err)
	}
	copy(st, "XXXXX")
	mustAppend(t, s, "doc", upd("second"))
	cp, ups, _ := mustLoad(t, s, "doc")
	cp[0], ups[0][0] = 'Y', 'Y' // nor hand out its own
	wantLoad(t, s, "doc", upd("state"), [][]byte{upd("second")}, 2)
}

func testCancelledContext(t *testing.T, s Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(c, "doc", upd("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, _, _, err := s.Load(c, "doc"); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with cancelled ctx = %v, want context.Canceled", err)
	}
	wantLoad(t, s, "doc", nil, nil, 0)
}

func testStats(t *testing.T, s Store) {
	before := s.Stats()
	for i := range 5 {
		mustAppend(t, s, "doc", upd("%d", i))
	}
	_, _ = s.Append(ctx(t), "", upd("x"))
	st := s.Stats()
	if got := st.Appends - before.Appends; got != 5 {
		t.Errorf("Stats.Appends grew by %d, want 5", got)
	}
	if got := st.AppendErrors - before.AppendErrors; got != 1 {
		t.Errorf("Stats.AppendErrors grew by %d, want 1", got)
	}
	if st.Flushes < before.Flushes+1 || st.Flushes > before.Flushes+5 {
		t.Errorf("Stats.Flushes grew by %d, want 1..5", st.Flushes-before.Flushes)
	}
	if st.AppendTime <= before.AppendTime {
		t.Errorf("Stats.AppendTime did not grow: %v", st.AppendTime)
	}
	if st.Pending != 0 {
		t.Errorf("Stats.Pending = %d with nothing running", st.Pending)
	}
}

// Appends racing with Close either commit (and return a seq) or fail with ErrClosed; none hangs
// or fails otherwise, and all have returned when Close returns. (That the committed ones are
// durable is checked per implementation, by reopening.)
func testCloseFlushes(t *testing.T, s Store) {
	const writers = 16
	var (
		wg         sync.WaitGroup
		started    = make(chan struct{}, writers)
		ok, closed atomic.Int64
		bad        = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			for i := 0; ; i++ {
				_, err := s.Append(context.Background(), fmt.Sprintf("doc-%d", w%4), upd("w%d-%d", w, i))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrClosed):
					closed.Add(1)
					return
				default:
					bad <- err
					return
				}
			}
		}()
	}
	for range writers {
		<-started
	}
	// Close once appends are flowing (bounded, for slow machines).
	for deadline := time.Now().Add(10 * time.Second); ok.Load() < writers && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Every writer is now either blocked on nothing or about to see ErrClosed: none may be
	// waiting for a commit that Close abandoned.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Appends still blocked 30s after Close returned")
	}
	close(bad)
	for err := range bad {
		t.Errorf("Append racing Close: %v (want nil or ErrClosed)", err)
	}
	if ok.Load() == 0 {
		t.Error("no Append succeeded before Close")
	}
	if closed.Load() != writers {
		t.Errorf("%d writers saw ErrClosed, want %d", closed.Load(), writers)
	}
	if p := s.Stats().Pending; p != 0 {
		t.Errorf("Stats.Pending = %d after Close", p)
	}
}

func testAfterClose(t *testing.T, s Store) {
	mustAppend(t, s, "doc", upd("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := ctx(t)
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
	_, _, _, err := s.Load(c, "doc")
	check("Load", err)
	_, err = s.Append(c, "doc", upd("y"))
	check("Append", err)
	check("Compact", s.Compact(c, "doc", upd("s"), 1))
	check("Delete", s.Delete(c, "doc"))
	_, err = s.List(c)
	check("List", err)
	check("Ping", s.Ping(c))
}
