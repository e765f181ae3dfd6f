package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ysync/ysync/internal/pgtest"
	"github.com/ysync/ysync/migrations"
	"github.com/ysync/ysync/store"
	"github.com/ysync/ysync/store/storetest"
)

// migratedSchema returns the URL of a fresh, migrated schema (dropped after the test).
func migratedSchema(tb testing.TB) string {
	tb.Helper()
	url := pgtest.NewSchema(tb)
	if err := migrations.Up(context.Background(), url); err != nil {
		tb.Fatalf("migrations.Up: %v", err)
	}
	return url
}

func openPostgres(tb testing.TB, opts store.Options) *store.Postgres {
	tb.Helper()
	s, err := store.OpenPostgres(context.Background(), migratedSchema(tb), opts)
	if err != nil {
		tb.Fatalf("OpenPostgres: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	pgtest.URL(t) // skip (or fail in CI) before starting subtests
	storetest.Run(t, func(t *testing.T) storetest.Store { return openPostgres(t, store.Options{}) })
}

// The contract again with tiny batches and a batching window, to exercise carry-over and the timer.
func TestPostgresSmallBatches(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openPostgres(t, store.Options{MaxBatch: 3, MaxBatchBytes: 1 << 20, MaxDelay: time.Millisecond, QueueSize: 2})
	})
}

// What Appends committed before Close is there for a new store on the same database.
func TestPostgresCloseIsDurable(t *testing.T) {
	ctx := context.Background()
	url := migratedSchema(t)
	s, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		acks = map[string]int{}
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
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s2, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for doc, n := range acks {
		_, ups, seq, err := s2.Load(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != n || seq != int64(n) {
			t.Errorf("%s: %d acknowledged appends, %d loaded (seq %d) after reopening", doc, n, len(ups), seq)
		}
	}
}

// Compaction is one transaction: checkpoint written and covered updates gone, in the tables.
func TestPostgresCompactionRows(t *testing.T) {
	ctx := context.Background()
	url := migratedSchema(t)
	s, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		if _, err := s.Append(ctx, "doc", []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx, "doc", []byte("s4"), 4); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, "doc", []byte("s7"), 7); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var updates, minSeq, checkpoints, lastSeq int64
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM document_updates WHERE doc_name = 'doc'),
		(SELECT min(seq) FROM document_updates WHERE doc_name = 'doc'),
		(SELECT count(*) FROM document_checkpoints WHERE doc_name = 'doc'),
		(SELECT last_seq FROM documents WHERE name = 'doc')`).Scan(&updates, &minSeq, &checkpoints, &lastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if updates != 3 || minSeq != 8 || checkpoints != 1 || lastSeq != 10 {
		t.Errorf("rows: %d updates from seq %d, %d checkpoints, last_seq %d; want 3 from 8, 1, 10",
			updates, minSeq, checkpoints, lastSeq)
	}
}

func TestPostgresErrors(t *testing.T) {
	ctx := context.Background()

	// A schema without the tables: ErrNotMigrated, at open.
	if _, err := store.OpenPostgres(ctx, pgtest.NewSchema(t), store.Options{}); !errors.Is(err, store.ErrNotMigrated) {
		t.Errorf("OpenPostgres on unmigrated schema = %v, want ErrNotMigrated", err)
	}
	// Nothing listening: ErrUnavailable.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := store.OpenPostgres(cctx, "postgres://x@127.0.0.1:1/db?sslmode=disable&connect_timeout=5", store.Options{}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("OpenPostgres with nothing listening = %v, want ErrUnavailable", err)
	}
	if _, err := store.OpenPostgres(ctx, "::not a url", store.Options{}); err == nil {
		t.Error("OpenPostgres with a bad URL succeeded")
	}

	// A caller-provided pool stays open after Close.
	pool, err := pgxpool.New(ctx, migratedSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := store.NewPostgres(ctx, pool, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("caller's pool closed by Close: %v", err)
	}
}

// Close stops the writer and, for OpenPostgres, the pool's goroutines.
func TestPostgresNoGoroutineLeak(t *testing.T) {
	ctx := context.Background()
	url := migratedSchema(t)
	before := runtime.NumGoroutine()
	s, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Append(ctx, fmt.Sprint("doc", i%3), []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A Compact while another transaction (another process) compacts the same document is skipped
// with ErrCompactionBusy and changes nothing; other documents are not affected.
func TestPostgresCompactionGuard(t *testing.T) {
	ctx := context.Background()
	url := migratedSchema(t)
	s, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 1; i <= 3; i++ {
		if _, err := s.Append(ctx, "doc", []byte(fmt.Sprintf("u%d", i))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, "other", []byte(fmt.Sprintf("u%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The same key Compact takes (store/log.go: class 0x79736301, hashtext of schema/name).
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2))`, int32(0x79736301), "doc"); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, "doc", []byte("state"), 3); !errors.Is(err, store.ErrCompactionBusy) {
		t.Fatalf("Compact while another compaction holds the lock: %v, want ErrCompactionBusy", err)
	}
	if err := s.Compact(ctx, "other", []byte("state"), 3); err != nil {
		t.Fatalf("Compact of another document: %v", err)
	}
	cp, ups, _, err := s.Load(ctx, "doc")
	if err != nil || cp != nil || len(ups) != 3 {
		t.Fatalf("after a skipped compaction Load = %q, %d updates, %v; want no checkpoint and 3 updates", cp, len(ups), err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, "doc", []byte("state"), 3); err != nil {
		t.Fatalf("Compact after the lock was released: %v", err)
	}
}

func TestPostgresNodes(t *testing.T) {
	ctx := context.Background()
	s := openPostgres(t, store.Options{})
	if err := s.HeartbeatNode(ctx, store.Node{ID: "a", Info: "host-a", Relay: true}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatNode(ctx, store.Node{ID: "b", Info: "host-b"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	nodes, err := s.LiveNodes(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "a" || !nodes[0].Relay || nodes[1].ID != "b" || nodes[1].Relay || nodes[1].Info != "host-b" {
		t.Fatalf("LiveNodes = %+v", nodes)
	}
	if err := s.RemoveNode(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	nodes, err = s.LiveNodes(ctx, time.Minute)
	if err != nil || len(nodes) != 1 || nodes[0].ID != "b" {
		t.Fatalf("after RemoveNode: %+v, %v", nodes, err)
	}
	// A heartbeat older than "within" is not live.
	if nodes, err := s.LiveNodes(ctx, 0); err != nil || len(nodes) != 0 {
		t.Fatalf("LiveNodes(0) = %+v, %v; want none", nodes, err)
	}
}

// LockWorkflow is one holder at a time across stores (processes); a waiter gets it once the
// holder unlocks, and gives up with its context.
func TestPostgresLockWorkflow(t *testing.T) {
	ctx := context.Background()
	url := migratedSchema(t)
	s1, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := store.OpenPostgres(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	unlock, err := s1.LockWorkflow(ctx, "wf-1")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = s2.LockWorkflow(short, "wf-1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder while locked: %v, want the context's deadline", err)
	}
	other, err := s2.LockWorkflow(ctx, "wf-2")
	if err != nil {
		t.Fatalf("another workflow: %v", err)
	}
	other()
	got := make(chan error, 1)
	go func() {
		u, err := s2.LockWorkflow(ctx, "wf-1")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	unlock() // idempotent
	if err := <-got; err != nil {
		t.Fatalf("waiter after unlock: %v", err)
	}
}

// A Load that read a big checkpoint closes its connection rather than keep pgx's read buffer of
// the checkpoint's size in the pool; small loads keep theirs, and loads go on working.
func TestPostgresBigLoadClosesConnection(t *testing.T) {
	ctx := context.Background()
	s := openPostgres(t, store.Options{})
	if _, err := s.Append(ctx, "big", []byte{1}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 17<<20)
	if err := s.Compact(ctx, "big", big, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Load(ctx, "small"); err != nil { // an idle connection for the next Load
		t.Fatal(err)
	}
	before := store.PoolConns(s)
	cp, _, seq, err := s.Load(ctx, "big")
	if err != nil || seq != 1 || !bytes.Equal(cp, big) {
		t.Fatalf("Load big: seq %d, %d bytes, err %v", seq, len(cp), err)
	}
	if after := store.PoolConns(s); after != before-1 {
		t.Fatalf("pool holds %d connections after the big load, %d before: the big row's connection was kept", after, before)
	}
	if _, _, _, err := s.Load(ctx, "small"); err != nil {
		t.Fatal(err)
	}
	if n := store.PoolConns(s); n < 1 {
		t.Fatalf("pool holds %d connections after a small load", n)
	}
}
