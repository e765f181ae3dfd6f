package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	msql "github.com/ysync/ysync/migrations/sqlite"
)

// SQLiteFile is the database file's name inside the data directory.
const SQLiteFile = "ysync.db"

// ErrLocked: another process has the SQLite store's data directory open.
var ErrLocked = errors.New("store: data directory locked")

// SQLite stores documents in an embedded SQLite database file (modernc.org/sqlite: pure Go, no
// cgo), in the tables of migrations/sqlite, which OpenSQLite applies. It is the durable store of
// a single node: the file is in WAL mode with synchronous=FULL, so a committed append survives a
// crash of the process or the machine.
//
// All writes go through one connection (SQLite has one writer at a time anyway): appends from
// every goroutine are queued to one background writer that commits them in batches (group
// commit, as Postgres does), and Compact and Delete take the same connection. Loads, List and
// Ping read through a pool of their own, which WAL lets run beside the writer. Safe for
// concurrent use; one process per data directory (OpenSQLite fails with ErrLocked while another
// has it open).
type SQLite struct {
	path   string
	unlock func()  // releases the data directory's lock
	write  *sql.DB // one connection: the single writer
	read   *sql.DB
	opts   Options

	appendFront
}

// OpenSQLite opens (creating it if needed) the store in directory dir: the database file
// dir/ysync.db with its -wal and -shm companions. dir itself is created (mode 0700) when
// missing. The schema is migrated to the latest version before it returns.
func OpenSQLite(ctx context.Context, dir string, opts Options) (*SQLite, error) {
	if dir == "" {
		return nil, errors.New("open sqlite store: empty data directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite store: create data directory: %w", err)
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	s, err := openSQLite(ctx, dir, opts)
	if err != nil {
		unlock()
		return nil, err
	}
	s.unlock = unlock
	return s, nil
}

func openSQLite(ctx context.Context, dir string, opts Options) (*SQLite, error) {
	path := filepath.Join(dir, SQLiteFile)
	if err := msql.Up(ctx, path); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	// journal_mode is a property of the file; setting it on every connection is harmless.
	// synchronous=FULL: in WAL mode every commit is fsynced, so an acknowledged append is on
	// disk; group commit is what makes that affordable.
	dsn := msql.DSN(path) + "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)
	read, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	read.SetMaxOpenConns(4)
	read.SetMaxIdleConns(4)

	s := &SQLite{
		path:  path,
		write: write,
		read:  read,
		opts:  opts.withDefaults(),
	}
	if err := s.ping(ctx, s.write); err != nil {
		_ = read.Close()
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	var mode string
	if err := s.write.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		_ = read.Close()
		_ = write.Close()
		return nil, fmt.Errorf("open sqlite store %s: journal mode %q, want wal (%v)", path, mode, err)
	}
	s.start(s.opts, s.flush)
	return s, nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

// Load returns the document's newest checkpoint state (nil if none), every update appended after
// it in append order, and the seq of the last of them (the checkpoint's seq if there are no
// updates; 0 for a document that was never written). It reads one consistent snapshot.
func (s *SQLite) Load(ctx context.Context, name string) (checkpoint []byte, updates [][]byte, seq int64, err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, 0, opErr("load", name, err)
	}
	if !s.enter() {
		return nil, nil, 0, opErr("load", name, ErrClosed)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, opErr("load", name, err)
	}

	// One read transaction, one snapshot (WAL): a compaction committing meanwhile cannot make
	// us miss updates. The updates come in primary-key order, so nothing is sorted, and the
	// slice is sized from the document's last seq. The transaction is begun by hand on a
	// connection of our own (BEGIN is per connection in SQLite) rather than with BeginTx, so
	// that the log's rows can be read from the driver itself (readLogRaw).
	conn, err := s.read.Conn(ctx)
	if err != nil {
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	}
	defer func() {
		// Also when ctx has ended: the connection goes back to the pool without a transaction,
		// or is dropped.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, `ROLLBACK`); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	var lastSeq int64
	err = conn.QueryRowContext(ctx, `SELECT last_seq FROM documents WHERE name = ?1`, name).Scan(&lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, 0, nil // never written
	}
	if err != nil {
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	}
	err = conn.QueryRowContext(ctx, `
		SELECT upto_seq, state FROM document_checkpoints
		WHERE doc_name = ?1 ORDER BY upto_seq DESC LIMIT 1`, name).Scan(&seq, &checkpoint)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		seq = 0
	case err != nil:
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	case checkpoint == nil:
		checkpoint = []byte{}
	}
	// The seq of the last update is asked for on its own (a lookup in the primary key), so that
	// each of the rows, which cost the driver per column, has only the data.
	var last sql.NullInt64
	err = conn.QueryRowContext(ctx, `
		SELECT max(seq) FROM document_updates WHERE doc_name = ?1 AND seq > ?2`, name, seq).Scan(&last)
	if err != nil {
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	}
	updates = make([][]byte, 0, logCap(lastSeq, seq))
	err = conn.Raw(func(dc any) (rerr error) {
		updates, rerr = readLogRaw(ctx, dc, name, seq, updates)
		return rerr
	})
	if err != nil {
		return nil, nil, 0, opErr("load", name, translateSQLite(err))
	}
	if last.Valid {
		seq = last.Int64
	}
	if len(updates) == 0 {
		updates = nil
	}
	return checkpoint, updates, seq, nil
}

// readLogRaw appends the data of the document's updates with seq > after, in seq order, to
// updates, read from the driver's connection dc directly: database/sql's Rows.Next and Scan (a
// lock, a conversion and checks per row) were a fifth of a 100,000-row load.
func readLogRaw(ctx context.Context, dc any, name string, after int64, updates [][]byte) ([][]byte, error) {
	q, ok := dc.(driver.QueryerContext)
	if !ok {
		return nil, fmt.Errorf("read log: driver connection %T cannot query", dc)
	}
	rows, err := q.QueryContext(ctx, `
		SELECT data FROM document_updates
		WHERE doc_name = ?1 AND seq > ?2 ORDER BY seq`,
		[]driver.NamedValue{{Ordinal: 1, Value: name}, {Ordinal: 2, Value: after}})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var arena rowArena
	dest := make([]driver.Value, 1)
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				return updates, nil
			}
			return nil, err
		}
		switch v := dest[0].(type) {
		case []byte: // the driver's copy; the arena packs the rows together
			updates = append(updates, arena.copy(v))
		case nil: // an empty blob
			updates = append(updates, []byte{})
		case string: // the column is BLOB (STRICT), but a row written as text would come so
			updates = append(updates, arena.copy([]byte(v)))
		default:
			return nil, fmt.Errorf("read log: data of type %T", v)
		}
	}
}

// Append adds update to the document's log and returns its seq once it is committed. Concurrent
// appends (of any documents) are committed together, in one transaction. Updates of one document
// get increasing seqs in the order their Appends were called.
//
// If ctx ends before the writer has taken the update, Append returns ctx's error and the update
// is not written. Once taken, Append waits for the commit (bounded by Options.WriteTimeout), so
// nil means durable and an error means not written.
func (s *SQLite) Append(ctx context.Context, name string, update []byte) (int64, error) {
	return s.append(ctx, name, update)
}

// Compact stores state as the document's checkpoint and deletes the updates it covers, in one
// transaction, with the rules of Postgres.Compact: ErrNotFound for an unknown document,
// ErrInvalidSeq when uptoSeq < 1 or beyond the document's last seq, ErrStaleCheckpoint when a
// newer checkpoint exists (the store is left unchanged). Compacting again at the same seq
// replaces the state.
func (s *SQLite) Compact(ctx context.Context, name string, state []byte, uptoSeq int64) error {
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

	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// The transaction holds SQLite's write lock from BEGIN IMMEDIATE, so nothing moves
		// between this read and the writes below.
		var last, newest int64
		err := tx.QueryRowContext(ctx, `
			SELECT d.last_seq, coalesce((SELECT max(upto_seq) FROM document_checkpoints WHERE doc_name = d.name), 0)
			FROM documents d WHERE d.name = ?`, name).Scan(&last, &newest)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		}
		if err := compactSeqErr(uptoSeq, last, newest); err != nil {
			return err
		}
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO document_checkpoints (doc_name, upto_seq, state) VALUES (?1, ?2, ?3)
				ON CONFLICT (doc_name, upto_seq) DO UPDATE SET state = excluded.state,
				created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`, []any{name, uptoSeq, state}},
			{`DELETE FROM document_checkpoints WHERE doc_name = ? AND upto_seq < ?`, []any{name, uptoSeq}},
			{`DELETE FROM document_updates WHERE doc_name = ? AND seq <= ?`, []any{name, uptoSeq}},
		} {
			if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return opErr("compact", name, translateSQLite(err))
	}
	return nil
}

// Delete removes the document with its updates and checkpoints; ErrNotFound if it does not exist.
func (s *SQLite) Delete(ctx context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return opErr("delete", name, err)
	}
	if !s.enter() {
		return opErr("delete", name, ErrClosed)
	}
	defer s.life.RUnlock()
	res, err := s.write.ExecContext(ctx, `DELETE FROM documents WHERE name = ?`, name)
	if err != nil {
		return opErr("delete", name, translateSQLite(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return opErr("delete", name, translateSQLite(err))
	} else if n == 0 {
		return opErr("delete", name, ErrNotFound)
	}
	return nil
}

// List returns the names of all stored documents, sorted bytewise.
func (s *SQLite) List(ctx context.Context) ([]string, error) {
	if !s.enter() {
		return nil, listErr(ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.read.QueryContext(ctx, `SELECT name FROM documents ORDER BY name`)
	if err != nil {
		return nil, listErr(translateSQLite(err))
	}
	defer rows.Close()
	names := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, listErr(translateSQLite(err))
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, listErr(translateSQLite(err))
	}
	return names, nil
}

// Ping checks that the database file answers and has the store's tables.
func (s *SQLite) Ping(ctx context.Context) error {
	if !s.enter() {
		return pingErr(ErrClosed)
	}
	defer s.life.RUnlock()
	return s.ping(ctx, s.read)
}

func (s *SQLite) ping(ctx context.Context, db *sql.DB) error {
	if err := ctx.Err(); err != nil {
		return pingErr(err)
	}
	rows, err := db.QueryContext(ctx, `SELECT 1 FROM documents LIMIT 0`)
	if err != nil {
		return pingErr(translateSQLite(err))
	}
	return rows.Close()
}

// Stats returns cumulative counters.
func (s *SQLite) Stats() Stats { return s.stats() }

// Close stops accepting operations (they fail with ErrClosed), waits for running ones, commits
// every append already queued, checkpoints the WAL into the main file and closes the database.
// Calling it again does nothing.
func (s *SQLite) Close() error {
	if !s.shut() {
		return nil
	}
	// Closing the last connection checkpoints the WAL; close the readers first so it can.
	err := errors.Join(s.read.Close(), s.write.Close())
	s.unlock()
	return err
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing if fn returns nil and
// rolling back otherwise.
func (s *SQLite) inTx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the transaction is void either way
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// flush commits batch in one transaction and reports the outcome to each waiting Append.
func (s *SQLite) flush(batch []*appendReq) {
	count := make(map[string]int64, len(batch))
	order := make([]string, 0, len(batch))
	for _, r := range batch {
		if count[r.name] == 0 {
			order = append(order, r.name)
		}
		count[r.name]++
	}
	last := make(map[string]int64, len(count))

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.WriteTimeout)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		bump, err := tx.PrepareContext(ctx, `
			INSERT INTO documents (name, last_seq) VALUES (?1, ?2)
			ON CONFLICT (name) DO UPDATE SET last_seq = last_seq + excluded.last_seq,
				updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
			RETURNING last_seq`)
		if err != nil {
			return err
		}
		defer bump.Close()
		for _, name := range order {
			var seq int64
			if err := bump.QueryRowContext(ctx, name, count[name]).Scan(&seq); err != nil {
				return err
			}
			last[name] = seq
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO document_updates (doc_name, seq, data) VALUES (?, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		next := make(map[string]int64, len(last))
		for name, seq := range last {
			next[name] = seq - count[name] + 1
		}
		for _, r := range batch {
			r.seq = next[r.name]
			next[r.name]++
			if _, err := ins.ExecContext(ctx, r.name, r.seq, r.data); err != nil {
				return err
			}
		}
		return nil
	})
	cancel()
	s.finish(batch, translateSQLite(err))
}

// translateSQLite maps driver errors onto the package's sentinels (keeping the original).
func translateSQLite(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case sqlite3.SQLITE_ERROR:
			if isNoSuchTable(se.Error()) {
				return fmt.Errorf("%w: %w", ErrNotMigrated, err)
			}
		}
	}
	return err
}

func isNoSuchTable(msg string) bool { return strings.Contains(msg, "no such table") }
