package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock classes (the first key of pg_*advisory*_lock(int, int)); the second key is a hash
// of the schema and the document or workflow (advisory locks are database-wide, and two schemas of
// one database — tenants, or parallel tests — may hold documents of the same name). Spelled "ysc" + a digit so that other users of advisory locks in
// the same database are unlikely to collide.
const (
	compactLockClass int32 = 0x79736301 // one Compact per document
)

// DefaultReadLimit is the most updates UpdatesAfter returns when its limit is <= 0.
const DefaultReadLimit = 1000

// UpdatesAfter returns, in seq order, up to limit updates of the document with seq > after, with
// their seqs; limit <= 0 means DefaultReadLimit. A caller that got limit updates asks again from
// the last seq. When the newest checkpoint covers beyond after, part of that range was compacted
// away: it returns no updates and compactedTo, the checkpoint's seq (the caller then reloads with
// Load, which reads the checkpoint and the tail after it). compactedTo is 0 otherwise. A document
// never written returns nothing. It reads one consistent snapshot.
func (s *Postgres) UpdatesAfter(ctx context.Context, name string, after int64, limit int) (seqs []int64, updates [][]byte, compactedTo int64, err error) {
	if err := ValidName(name); err != nil {
		return nil, nil, 0, opErr("read", name, err)
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	if !s.enter() {
		return nil, nil, 0, opErr("read", name, ErrClosed)
	}
	defer s.life.RUnlock()
	// One statement, one snapshot: the checkpoint row (kind 0) and the updates after `after`.
	// The checkpoint test is what makes a missing range detectable: seqs are gap-free, so
	// updates after the newest checkpoint are all present.
	rows, err := s.pool.Query(ctx, `
		SELECT 0 AS kind, coalesce(max(upto_seq), 0) AS seq, NULL::bytea AS data
		FROM document_checkpoints WHERE doc_name = $1
		UNION ALL
		(SELECT 1, seq, data FROM document_updates
		 WHERE doc_name = $1 AND seq > $2 ORDER BY seq LIMIT $3)
		ORDER BY 1, 2`, name, after, limit)
	if err != nil {
		return nil, nil, 0, opErr("read", name, translate(err))
	}
	defer rows.Close()
	seqs, updates, compactedTo, err = readUpdatesAfter(rows, after)
	if err != nil {
		return nil, nil, 0, opErr("read", name, translate(err))
	}
	return seqs, updates, compactedTo, nil
}

// updateRows are the rows of an UpdatesAfter query: pgx.Rows and *sql.Rows both are.
type updateRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// readUpdatesAfter reads the rows of an UpdatesAfter query, (kind, seq, data): the checkpoint
// row (kind 0, the newest checkpoint's seq or 0) and the updates after `after` (kind 1) in seq
// order, and returns what UpdatesAfter returns (compactedTo when the checkpoint covers beyond
// after). err is the driver's, for the caller to translate.
func readUpdatesAfter(rows updateRows, after int64) (seqs []int64, updates [][]byte, compactedTo int64, err error) {
	var cp int64
	for rows.Next() {
		var (
			kind int
			n    int64
			data []byte
		)
		if err := rows.Scan(&kind, &n, &data); err != nil {
			return nil, nil, 0, err
		}
		if kind == 0 {
			cp = n
			continue
		}
		seqs = append(seqs, n)
		updates = append(updates, data)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, err
	}
	if cp > after {
		return nil, nil, cp, nil
	}
	return seqs, updates, 0, nil
}

// LastSeqs returns the last seq handed out for each of names that the store knows (documents
// never written are absent from the map), in one query.
func (s *Postgres) LastSeqs(ctx context.Context, names []string) (map[string]int64, error) {
	out := make(map[string]int64, len(names))
	if len(names) == 0 {
		return out, nil
	}
	if !s.enter() {
		return nil, fmt.Errorf("read positions: %w", ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `SELECT name, last_seq FROM documents WHERE name = ANY($1::text[])`, names)
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", translate(err))
	}
	var (
		name string
		seq  int64
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &seq}, func() error {
		out[name] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read positions: %w", translate(err))
	}
	return out, nil
}

// UpdatesAfter: see Postgres.UpdatesAfter.
func (m *Memory) UpdatesAfter(ctx context.Context, name string, after int64, limit int) (seqs []int64, updates [][]byte, compactedTo int64, err error) {
	if err := m.check(ctx, name); err != nil {
		return nil, nil, 0, opErr("read", name, err)
	}
	if limit <= 0 {
		limit = DefaultReadLimit
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, 0, opErr("read", name, ErrClosed)
	}
	d := m.docs[name]
	if d == nil {
		return nil, nil, 0, nil
	}
	if d.checkpoint != nil && d.cpSeq > after {
		return nil, nil, d.cpSeq, nil
	}
	for _, u := range d.updates {
		if u.seq <= after {
			continue
		}
		if len(seqs) == limit {
			break
		}
		seqs = append(seqs, u.seq)
		updates = append(updates, slices.Clone(u.data))
	}
	return seqs, updates, 0, nil
}

// LastSeqs: see Postgres.LastSeqs.
func (m *Memory) LastSeqs(ctx context.Context, names []string) (map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read positions: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("read positions: %w", ErrClosed)
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		if d := m.docs[n]; d != nil {
			out[n] = d.lastSeq
		}
	}
	return out, nil
}

// workflowLockClass: saves of one workflow, across processes (LockWorkflow).
const workflowLockClass int32 = 0x79736302

// LockWorkflow takes the cluster-wide lock of workflow id's saves (a session advisory lock on a
// connection held until unlock), waiting with ctx. Waiting holds no connection: it retries
// pg_try_advisory_lock every poll, so that saves queued behind a slow one do not exhaust the
// pool that appends need.
func (s *Postgres) LockWorkflow(ctx context.Context, id string) (unlock func(), err error) {
	const poll = 20 * time.Millisecond
	for {
		if !s.enter() {
			return nil, fmt.Errorf("lock workflow %s: %w", id, ErrClosed)
		}
		conn, err := s.pool.Acquire(ctx)
		s.life.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("lock workflow %s: %w", id, translate(err))
		}
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema() || '/' || $2))`, workflowLockClass, id).Scan(&got); err != nil {
			conn.Release()
			return nil, fmt.Errorf("lock workflow %s: %w", id, translate(err))
		}
		if got {
			var once sync.Once
			return func() {
				once.Do(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext(current_schema() || '/' || $2))`, workflowLockClass, id); err != nil {
						// The lock dies with the session: do not give the connection back.
						_ = conn.Conn().Close(ctx)
					}
					conn.Release()
				})
			}, nil
		}
		conn.Release()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock workflow %s: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}
