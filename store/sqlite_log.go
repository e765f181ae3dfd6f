package store

import (
	"context"
	"fmt"
	"strings"
)

// UpdatesAfter: see Postgres.UpdatesAfter. One statement, so one snapshot.
func (s *SQLite) UpdatesAfter(ctx context.Context, name string, after int64, limit int) (seqs []int64, updates [][]byte, compactedTo int64, err error) {
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
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, opErr("read", name, err)
	}
	rows, err := s.read.QueryContext(ctx, `
		SELECT 0 AS kind, coalesce(max(upto_seq), 0) AS seq, NULL AS data
		FROM document_checkpoints WHERE doc_name = ?1
		UNION ALL
		SELECT * FROM (SELECT 1, seq, data FROM document_updates
		 WHERE doc_name = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)
		ORDER BY 1, 2`, name, after, limit)
	if err != nil {
		return nil, nil, 0, opErr("read", name, translateSQLite(err))
	}
	defer rows.Close()
	seqs, updates, compactedTo, err = readUpdatesAfter(rows, after)
	if err != nil {
		return nil, nil, 0, opErr("read", name, translateSQLite(err))
	}
	return seqs, updates, compactedTo, nil
}

// LastSeqs: see Postgres.LastSeqs.
func (s *SQLite) LastSeqs(ctx context.Context, names []string) (map[string]int64, error) {
	out := make(map[string]int64, len(names))
	if len(names) == 0 {
		return out, nil
	}
	if !s.enter() {
		return nil, fmt.Errorf("read positions: %w", ErrClosed)
	}
	defer s.life.RUnlock()
	// In chunks, under SQLite's bound on host parameters.
	for len(names) > 0 {
		chunk := names[:min(len(names), 500)]
		names = names[len(chunk):]
		args := make([]any, len(chunk))
		for i, n := range chunk {
			args[i] = n
		}
		q := `SELECT name, last_seq FROM documents WHERE name IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
		rows, err := s.read.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read positions: %w", translateSQLite(err))
		}
		for rows.Next() {
			var name string
			var seq int64
			if err := rows.Scan(&name, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read positions: %w", translateSQLite(err))
			}
			out[name] = seq
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read positions: %w", translateSQLite(err))
		}
	}
	return out, nil
}
