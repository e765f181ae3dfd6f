package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune a Postgres store. The zero value gives the defaults.
type Options struct {
	// MaxBatch is the most updates written in one transaction. Default 512.
	MaxBatch int
	// MaxBatchBytes bounds the summed size of the updates in one transaction; a single larger
	// update is written alone. Default 16 MiB.
	MaxBatchBytes int
	// MaxDelay is how long the writer waits for more updates after the first one of a batch
	// before committing. 0 (the default) commits at once: batches still form from the updates
	// that queue up while the previous batch is being committed, which is where group commit
	// gains, without adding latency when the store is idle. (Measured with 32 appending
	// goroutines on 2 cores: a 1 ms window doubled the batch size but halved throughput.)
	MaxDelay time.Duration
	// QueueSize is how many appends may wait for the writer before Append blocks. Default 4096.
	QueueSize int
	// WriteTimeout bounds each batch's write. Default 30s.
	WriteTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 16 << 20
	}
	if o.MaxDelay < 0 {
		o.MaxDelay = 0
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	return o
}

// Postgres stores documents in PostgreSQL, in the tables of migrations 000001 (run
// migrations.Up first). Appends from all goroutines go through one background writer that
// commits them in batches (group commit); Append returns once its batch has committed.
// Safe for concurrent use.
type Postgres struct {
	pool    *pgxpool.Pool
	ownPool bool
	opts    Options

	appendFront
}

// NewPostgres returns a store using pool, which stays the caller's to close (after Close).
// It checks that the database is reachable and migrated.
func NewPostgres(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("store: NewPostgres: nil pool")
	}
	s := &Postgres{
		pool: pool,
		opts: opts.withDefaults(),
	}
	if err := s.ping(ctx); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.start(s.opts, s.flush)
	return s, nil
}

// OpenPostgres connects to databaseURL (postgres://...; pgxpool's pool_* parameters apply) and
// returns a store that owns the connection pool and closes it in Close.
func OpenPostgres(ctx context.Context, databaseURL string, opts Options) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// The parse error may quote the URL with its password.
		return nil, errors.New("open store: invalid database URL")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", translate(err))
	}
	s, err := NewPostgres(ctx, pool, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownPool = true
	return s, nil
}

// bigRowBytes is the row size from which Load closes the connection it read it on (see Load).
const bigRowBytes = 16 << 20

// Load returns the document's newest checkpoint state (nil if none), every update appended after
// it in append order, and the seq of the last of them (the checkpoint's seq if there are no
// updates; 0 for a document that was never written). It reads one consistent snapshot.
func (s *Postgres) Load(ctx context.Context, name string) (checkpoint []byte, updates [][]byte, seq int64, err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, 0, opErr("load", name, err)
	}
	if !s.enter() {
		return nil, nil, 0, opErr("load", name, ErrClosed)
	}
	defer s.life.RUnlock()

	// One read-only REPEATABLE READ transaction, so one snapshot: a compaction committing
	// meanwhile cannot make us miss updates. The first query gives the checkpoint if any, the
	// document's last seq (which sizes the slice of updates; seqs are gap-free) and the seq of
	// the last update; the second the updates' data in primary-key order. (One statement doing
	// both, a UNION ALL ordered by kind and seq, made the server sort the whole log, on disk for
	// 100,000 rows, and pgx decode four columns per row.)
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	var loaded int
	defer func() {
		if loaded < bigRowBytes {
			conn.Release()
			return
		}
		// pgx keeps a read buffer as large as the largest row a connection has read: after a
		// big checkpoint that is the document's size again, held for as long as the pooled
		// connection lives. Close it instead; the pool opens another when it needs one.
		c := conn.Hijack()
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = c.Close(closeCtx)
		cancel()
	}()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	defer func() {
		// Also when ctx has ended (pgx closes a connection whose rollback is cancelled).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = tx.Rollback(rctx)
		cancel()
	}()
	var (
		cpData     []byte
		last, upTo int64
		lastUpdate *int64
	)
	err = tx.QueryRow(ctx, `
		WITH cp AS (
			SELECT upto_seq, state FROM document_checkpoints
			WHERE doc_name = $1 ORDER BY upto_seq DESC LIMIT 1
		)
		SELECT coalesce((SELECT upto_seq FROM cp), 0), (SELECT state FROM cp),
			coalesce((SELECT last_seq FROM documents WHERE name = $1), 0),
			(SELECT max(seq) FROM document_updates
			 WHERE doc_name = $1 AND seq > coalesce((SELECT upto_seq FROM cp), 0))`, name).
		Scan(&upTo, &cpData, &last, &lastUpdate)
	if err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	checkpoint, loaded = cpData, len(cpData)
	seq = upTo
	if lastUpdate == nil {
		return checkpoint, nil, seq, nil
	}
	// The rows are wanted in primary-key order, which an index scan gives as it goes; with stale
	// statistics (a log that grew quickly) the planner picked a bitmap scan and then sorted the
	// whole log, on disk beyond work_mem. No sorting in this transaction, then.
	if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	rows, err := tx.Query(ctx, `
		SELECT data FROM document_updates
		WHERE doc_name = $1 AND seq > $2 ORDER BY seq`, name, upTo)
	if err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	defer rows.Close()
	updates = make([][]byte, 0, logCap(last, upTo))
	var arena rowArena
	for rows.Next() {
		var data pgtype.DriverBytes // the driver's buffer, valid until Next: copied
		if err := rows.Scan(&data); err != nil {
			return nil, nil, 0, opErr("load", name, translate(err))
		}
		updates = append(updates, arena.copy(data))
		loaded = max(loaded, len(data))
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, opErr("load", name, translate(err))
	}
	seq = *lastUpdate
	if len(updates) == 0 {
		updates = nil
	}
	return checkpoint, updates, seq, nil
}

// Append adds update to the document's log and returns its seq once it is committed. Concurrent
// appends (of any documents) are committed together. Updates of one document get increasing
// seqs in the order their Appends were called; Load returns them in that order.
//
// If ctx ends before the writer has taken the update, Append returns ctx's error and the update
// is not written. Once taken, Append waits for the commit (bounded by Options.WriteTimeout), so
// nil means durable and an error means not written.
func (s *Postgres) Append(ctx context.Context, name string, update []byte) (int64, error) {
	return s.append(ctx, name, update)
}

// Compact stores state as the document's checkpoint and deletes the updates it covers, in one
// transaction. state must contain the effect of every update with seq <= uptoSeq (a seq returned
// by Append or Load); updates with higher seqs, including ones appended concurrently, are kept.
// Older checkpoints are deleted too. Errors: ErrCompactionBusy when another compaction of the
// document holds its advisory lock, ErrNotFound for an unknown document, ErrInvalidSeq
// when uptoSeq < 1 or beyond the document's last seq, ErrStaleCheckpoint when a newer checkpoint
// exists (the store is left unchanged). Compacting again at the same seq replaces the state.
func (s *Postgres) Compact(ctx context.Context, name string, state []byte, uptoSeq int64) error {
	if err := ValidName(name); err != nil {
		return opErr("compact", name, err)
	}
	if len(state) == 0 {
		return opErr("compact", name, ErrEmptyUpdate)
	}
	if !s.enter() {
		return opErr("compact", name, ErrClosed)
	}
	defer s.life.RUnlock()

	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// At most one compaction per document at a time, across processes: a second one skips
		// rather than queueing behind the first (it would only redo the same work). The lock
		// ends with the transaction.
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema() || '/' || $2))`, compactLockClass, name).Scan(&got); err != nil {
			return err
		}
		if !got {
			return ErrCompactionBusy
		}
		// Locking the document row serializes us with appends.
		var last, newest int64
		err := tx.QueryRow(ctx, `
			SELECT d.last_seq, coalesce((SELECT max(upto_seq) FROM document_checkpoints WHERE doc_name = d.name), 0)
			FROM documents d WHERE d.name = $1 FOR UPDATE`, name).Scan(&last, &newest)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		}
		if err := compactSeqErr(uptoSeq, last, newest); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO document_checkpoints (doc_name, upto_seq, state) VALUES ($1, $2, $3)
			ON CONFLICT (doc_name, upto_seq) DO UPDATE SET state = excluded.state, created_at = now()`,
			name, uptoSeq, state)
		b.Queue(`DELETE FROM document_checkpoints WHERE doc_name = $1 AND upto_seq < $2`, name, uptoSeq)
		b.Queue(`DELETE FROM document_updates WHERE doc_name = $1 AND seq <= $2`, name, uptoSeq)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return opErr("compact", name, translate(err))
	}
	return nil
}

// Delete removes the document with its updates and checkpoints; ErrNotFound if it does not exist.
// An Append of the document running concurrently may land before or after the delete.
func (s *Postgres) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return opErr("delete", name, err)
	}
	if !s.enter() {
		return opErr("delete", name, ErrClosed)
	}
	defer s.life.RUnlock()
	tag, err := s.pool.Exec(ctx, `DELETE FROM documents WHERE name = $1`, name)
	switch {
	case err != nil:
		return opErr("delete", name, translate(err))
	case tag.RowsAffected() == 0:
		return opErr("delete", name, ErrNotFound)
	}
	return nil
}

// List returns the names of all stored documents, sorted bytewise.
func (s *Postgres) List(ctx context.Context) ([]string, error) {
	if !s.enter() {
		return nil, listErr(ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `SELECT name FROM documents ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, listErr(translate(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, listErr(translate(err))
	}
	return names, nil
}

// Ping checks that the database answers and has the store's tables (for readiness probes).
func (s *Postgres) Ping(ctx context.Context) error {
	if !s.enter() {
		return pingErr(ErrClosed)
	}
	defer s.life.RUnlock()
	return s.ping(ctx)
}

func (s *Postgres) ping(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `SELECT FROM documents LIMIT 0`); err != nil {
		return pingErr(translate(err))
	}
	return nil
}

// Stats returns cumulative counters.
func (s *Postgres) Stats() Stats { return s.stats() }

// Close stops accepting operations (they fail with ErrClosed), waits for running ones, commits
// every append already queued, and closes the pool if OpenPostgres made it. Calling it again
// does nothing.
func (s *Postgres) Close() error {
	if !s.shut() {
		return nil
	}
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}

// inTx runs fn in a transaction, committing if fn returns nil and rolling back otherwise.
func (s *Postgres) inTx(ctx context.Context, fn func(pgx.Tx) error) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Rollback's own error adds nothing: the transaction is void either way.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// appendSQL inserts a batch of updates ($1: document names, $2: updates, in append order) in
// one statement. It bumps each document's last_seq by its number of updates (creating the row
// if needed; rows locked in name order so that concurrent writers cannot deadlock) and numbers
// the updates last_seq-n+1 .. last_seq in input order. It returns each document's new last_seq.
const appendSQL = `
WITH input AS (
	SELECT doc_name, data, ord
	FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS t(doc_name, data, ord)
), counts AS (
	SELECT doc_name, count(*) AS n FROM input GROUP BY doc_name
), bumped AS (
	INSERT INTO documents AS d (name, last_seq)
	SELECT doc_name, n FROM counts ORDER BY doc_name
	ON CONFLICT (name) DO UPDATE SET last_seq = d.last_seq + excluded.last_seq, updated_at = now()
	RETURNING name, last_seq
), inserted AS (
	INSERT INTO document_updates (doc_name, seq, data)
	SELECT i.doc_name, b.last_seq - c.n + row_number() OVER (PARTITION BY i.doc_name ORDER BY i.ord), i.data
	FROM input i
	JOIN counts c ON c.doc_name = i.doc_name
	JOIN bumped b ON b.name = i.doc_name
	RETURNING 1
)
SELECT name, last_seq FROM bumped`

// flush commits batch in one statement and reports the outcome to each waiting Append.
func (s *Postgres) flush(batch []*appendReq) {
	names := make([]string, len(batch))
	datas := make([][]byte, len(batch))
	count := make(map[string]int64, len(batch))
	for i, r := range batch {
		names[i], datas[i] = r.name, r.data
		count[r.name]++
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	last := make(map[string]int64, len(count))
	err := func() error {
		rows, err := s.pool.Query(ctx, appendSQL, names, datas)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var seq int64
			if err := rows.Scan(&name, &seq); err != nil {
				return err
			}
			last[name] = seq
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(last) != len(count) {
			return fmt.Errorf("store: append batch returned %d documents, want %d", len(last), len(count))
		}
		return nil
	}()
	cancel()

	if err != nil {
		err = translate(err)
	} else {
		for _, r := range batch {
			// The k-th update of a document in this batch (k = 1..n) got last-n+k.
			r.seq = last[r.name] - count[r.name] + 1
			count[r.name]--
		}
	}
	s.finish(batch, err)
}

// translate maps driver errors onto the package's sentinels (keeping the original in the chain).
func translate(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "42P01": // undefined_table
			return fmt.Errorf("%w: %w", ErrNotMigrated, err)
		case len(pgErr.Code) >= 2 && pgErr.Code[:2] == "08", // connection_exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // shutdown, cannot_connect_now
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
