package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ysync/ysync/internal/leaktest"
	msql "github.com/ysync/ysync/migrations/sqlite"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/store/storetest"
)

func openSQLite(tb testing.TB, dir string, opts store.Options) *store.SQLite {
	tb.Helper()
	s, err := store.OpenSQLite(context.Background(), dir, opts)
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return openSQLite(t, t.TempDir(), store.Options{}) })
}

// The contract again with tiny batches and a batching window, to exercise carry-over and the timer.
func TestSQLiteSmallBatches(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openSQLite(t, t.TempDir(), store.Options{MaxBatch: 3, MaxBatchBytes: 1 << 20, MaxDelay: 1e6, QueueSize: 2})
	})
}

// Concurrent appends are committed in shared transactions: fewer flushes than appends.
func TestSQLiteGroupCommit(t *testing.T) {
	s := openSQLite(t, t.TempDir(), store.Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	const writers, each = 32, 20
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := s.Append(ctx, fmt.Sprint("doc-", w%4), fmt.Appendf(nil, "%d-%d", w, i)); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Appends != writers*each {
		t.Fatalf("Appends = %d, want %d", st.Appends, writers*each)
	}
	if st.Flushes >= st.Appends {
		t.Errorf("%d flushes for %d concurrent appends: no group commit", st.Flushes, st.Appends)
	}
	t.Logf("%d appends in %d transactions", st.Appends, st.Flushes)
}

// What Appends committed before Close is there for a new store on the same directory, and the
// directory is created on first open.
func TestSQLiteCloseIsDurable(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := store.OpenSQLite(ctx, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != filepath.Join(dir, store.SQLiteFile) {
		t.Errorf("Path = %q", s.Path())
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		acks = map[string]int{}
		ok   = make(chan struct{}, 16)
	)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := fmt.Sprintf("doc-%d", w%4)
			for i := 0; ; i++ {
				if _, err := s.Append(ctx, doc, fmt.Appendf(nil, "%d-%d", w, i)); err != nil {
					if !errors.Is(err, store.ErrClosed) {
						t.Errorf("Append: %v", err)
					}
					return
				}
				mu.Lock()
				acks[doc]++
				mu.Unlock()
				if i == 2 {
					ok <- struct{}{}
				}
			}
		}()
	}
	for range 16 {
		<-ok
	}
	if err := s.Compact(ctx, "doc-0", []byte("state"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s2 := openSQLite(t, dir, store.Options{})
	for doc, n := range acks {
		cp, ups, seq, err := s2.Load(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		want := n
		if doc == "doc-0" {
			want = n - 1
			if string(cp) != "state" {
				t.Errorf("doc-0 checkpoint %q after reopening", cp)
			}
		}
		if len(ups) != want || seq != int64(n) {
			t.Errorf("%s: %d acknowledged appends, %d loaded (seq %d) after reopening", doc, n, len(ups), seq)
		}
	}
}

// The file is in WAL mode and the tables are where migrations/sqlite put them.
func TestSQLiteFile(t *testing.T) {
	dir := t.TempDir()
	s := openSQLite(t, dir, store.Options{})
	if _, err := s.Append(context.Background(), "doc", []byte{1}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", msql.DSN(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	var n int
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM document_updates WHERE doc_name = 'doc'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("document_updates rows = %d, %v; want 1", n, err)
	}
}

func TestSQLiteErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.OpenSQLite(ctx, "", store.Options{}); err == nil {
		t.Error("OpenSQLite with no directory succeeded")
	}
	// A data directory that is a file.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenSQLite(ctx, f, store.Options{}); err == nil {
		t.Error("OpenSQLite on a regular file succeeded")
	}
	// A database file that is not SQLite.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.SQLiteFile), []byte("not a database, just some bytes that are long enough to look like a header....................................."), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenSQLite(ctx, dir, store.Options{}); err == nil {
		t.Error("OpenSQLite on a corrupt file succeeded")
	}
	// Tables dropped behind the store's back: ErrNotMigrated.
	dir = t.TempDir()
	s := openSQLite(t, dir, store.Options{})
	if err := msql.Down(ctx, s.Path(), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrNotMigrated) {
		t.Errorf("Ping without tables = %v, want ErrNotMigrated", err)
	}
	if _, err := s.Append(ctx, "doc", []byte{1}); !errors.Is(err, store.ErrNotMigrated) {
		t.Errorf("Append without tables = %v, want ErrNotMigrated", err)
	}
}

// A second store on the same directory is refused while the first is open, and allowed after.
func TestSQLiteOneProcessPerDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := store.OpenSQLite(context.Background(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenSQLite(context.Background(), dir, store.Options{}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second OpenSQLite on an open directory = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openSQLite(t, dir, store.Options{})
}

// Close stops the writer and every goroutine the driver started.
func TestSQLiteNoGoroutineLeak(t *testing.T) {
	leaktest.Check(t)
	s, err := store.OpenSQLite(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Append(context.Background(), fmt.Sprint("doc", i%3), []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSQLiteAppend(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) storetest.Store { return openSQLite(b, b.TempDir(), store.Options{}) })
}

// Load reads the log in its own transaction on a pooled connection: every Load, also one of a
// missing document, one with a checkpoint and one whose context ended, leaves the connection
// without a transaction, so that the next Load on it sees what was appended since (a
// transaction left open would pin the old snapshot, or make the next BEGIN fail).
func TestSQLiteLoadLeavesNoTransaction(t *testing.T) {
	s := openSQLite(t, t.TempDir(), store.Options{})
	ctx := context.Background()
	var want [][]byte
	for i := range 40 {
		u := make([]byte, 1+i*37%300)
		for j := range u {
			u[j] = byte(i + j)
		}
		seq, err := s.Append(ctx, "doc", u)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, u)
		if i == 25 {
			if err := s.Compact(ctx, "doc", []byte("state"), seq); err != nil {
				t.Fatal(err)
			}
			want = nil
		}
		if _, _, _, err := s.Load(ctx, "missing"); err != nil {
			t.Fatal(err)
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, _, err := s.Load(cancelled, "doc"); err == nil {
			t.Fatal("Load with an ended context succeeded")
		}
		var wg sync.WaitGroup
		for range 6 { // more than the pool's connections
			wg.Add(1)
			go func() {
				defer wg.Done()
				cp, got, last, err := s.Load(ctx, "doc")
				if err != nil {
					t.Errorf("Load after %d appends: %v", i+1, err)
					return
				}
				if last != int64(i+1) || len(got) != len(want) {
					t.Errorf("Load after %d appends: seq %d, %d updates; want seq %d, %d updates", i+1, last, len(got), i+1, len(want))
					return
				}
				if (i >= 25) != (string(cp) == "state") {
					t.Errorf("Load after %d appends: checkpoint %q", i+1, cp)
				}
				for k := range got {
					if string(got[k]) != string(want[k]) || got[k] == nil {
						t.Errorf("Load after %d appends: update %d = %v, want %v", i+1, k, got[k], want[k])
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
