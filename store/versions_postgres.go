package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// CreateVersion stores state as a version of doc covering seq (the caller encoded state after
// applying exactly the updates with seq <= seq), labelled label, made by createdBy; auto marks
// versions the server made by itself. It returns the version with its id and time. A version of
// a document that was never stored is allowed (seq 0).
func (s *Postgres) CreateVersion(ctx context.Context, doc, label string, auto bool, seq int64, createdBy string, state []byte) (Version, error) {
	if err := checkVersion(doc, label, state); err != nil {
		return Version{}, versionErr("create", doc, err)
	}
	if !s.enter() {
		return Version{}, versionErr("create", doc, ErrClosed)
	}
	defer s.life.RUnlock()
	v := Version{Doc: doc, Label: label, Auto: auto, Seq: seq, CreatedBy: createdBy, Bytes: len(state)}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO document_versions (doc_name, label, auto, seq, created_by, state)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at`,
		doc, label, auto, seq, createdBy, state).Scan(&v.ID, &v.CreatedAt)
	if err != nil {
		return Version{}, versionErr("create", doc, translate(err))
	}
	v.CreatedAt = v.CreatedAt.UTC()
	return v, nil
}

// ListVersions returns doc's versions, newest first.
func (s *Postgres) ListVersions(ctx context.Context, doc string) ([]Version, error) {
	if err := ValidName(doc); err != nil {
		return nil, versionErr("list", doc, err)
	}
	if !s.enter() {
		return nil, versionErr("list", doc, ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `
		SELECT id, doc_name, label, auto, seq, created_by, created_at, length(state)
		FROM document_versions WHERE doc_name = $1 ORDER BY id DESC`, doc)
	if err != nil {
		return nil, versionErr("list", doc, translate(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Version, error) {
		var v Version
		err := row.Scan(&v.ID, &v.Doc, &v.Label, &v.Auto, &v.Seq, &v.CreatedBy, &v.CreatedAt, &v.Bytes)
		v.CreatedAt = v.CreatedAt.UTC()
		return v, err
	})
	if err != nil {
		return nil, versionErr("list", doc, translate(err))
	}
	if out == nil {
		out = []Version{}
	}
	return out, nil
}

// GetVersion returns one version of doc with its state; ErrNotFound if doc has no version id.
func (s *Postgres) GetVersion(ctx context.Context, doc string, id int64) (Version, []byte, error) {
	if err := ValidName(doc); err != nil {
		return Version{}, nil, versionErr("get", doc, err)
	}
	if !s.enter() {
		return Version{}, nil, versionErr("get", doc, ErrClosed)
	}
	defer s.life.RUnlock()
	var v Version
	var state []byte
	err := s.pool.QueryRow(ctx, `
		SELECT id, doc_name, label, auto, seq, created_by, created_at, state
		FROM document_versions WHERE doc_name = $1 AND id = $2`, doc, id).
		Scan(&v.ID, &v.Doc, &v.Label, &v.Auto, &v.Seq, &v.CreatedBy, &v.CreatedAt, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return Version{}, nil, versionErr("get", doc, fmt.Errorf("%w: no version %d", ErrNotFound, id))
	}
	if err != nil {
		return Version{}, nil, versionErr("get", doc, translate(err))
	}
	v.CreatedAt = v.CreatedAt.UTC()
	v.Bytes = len(state)
	return v, state, nil
}

// PruneVersions deletes doc's automatic versions but the newest keep and returns how many went.
// Named versions are never pruned; keep < 0 keeps all.
func (s *Postgres) PruneVersions(ctx context.Context, doc string, keep int) (int, error) {
	if keep < 0 {
		return 0, nil
	}
	if !s.enter() {
		return 0, versionErr("prune", doc, ErrClosed)
	}
	defer s.life.RUnlock()
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM document_versions WHERE doc_name = $1 AND auto AND id NOT IN (
			SELECT id FROM document_versions WHERE doc_name = $1 AND auto ORDER BY id DESC LIMIT $2)`,
		doc, keep)
	if err != nil {
		return 0, versionErr("prune", doc, translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// DeleteVersions deletes every version of doc.
func (s *Postgres) DeleteVersions(ctx context.Context, doc string) error {
	if !s.enter() {
		return versionErr("delete", doc, ErrClosed)
	}
	defer s.life.RUnlock()
	if _, err := s.pool.Exec(ctx, `DELETE FROM document_versions WHERE doc_name = $1`, doc); err != nil {
		return versionErr("delete", doc, translate(err))
	}
	return nil
}

// ListDocuments returns stored documents whose name starts with prefix and sorts (bytewise)
// after after, at most limit of them (MaxListLimit when limit <= 0 or larger), sorted by name.
func (s *Postgres) ListDocuments(ctx context.Context, prefix, after string, limit int) ([]DocumentInfo, error) {
	if !s.enter() {
		return nil, listErr(ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `
		SELECT d.name, d.last_seq, d.updated_at,
			COALESCE((SELECT sum(length(u.data)) FROM document_updates u WHERE u.doc_name = d.name), 0)
			+ COALESCE((SELECT length(c.state) FROM document_checkpoints c WHERE c.doc_name = d.name
				ORDER BY c.upto_seq DESC LIMIT 1), 0)
		FROM documents d
		WHERE d.name COLLATE "C" > $1 AND starts_with(d.name, $2)
		ORDER BY d.name COLLATE "C" LIMIT $3`, after, prefix, listLimit(limit))
	if err != nil {
		return nil, listErr(translate(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DocumentInfo, error) {
		var in DocumentInfo
		var at time.Time
		err := row.Scan(&in.Name, &in.LastSeq, &at, &in.Bytes)
		in.UpdatedAt = at.UTC()
		return in, err
	})
	if err != nil {
		return nil, listErr(translate(err))
	}
	return out, nil
}
