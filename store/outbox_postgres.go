package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

const deliveryColumns = `id, event_id, event_type, doc_name, url, body, state, attempts, next_at, created_at,
	COALESCE(delivered_at, 'epoch'::timestamptz), last_status, last_error`

func scanDelivery(row pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.EventID, &d.Type, &d.Doc, &d.URL, &d.Body, &d.State, &d.Attempts, &d.NextAt,
		&d.CreatedAt, &d.DeliveredAt, &d.LastStatus, &d.LastError)
	d.NextAt, d.CreatedAt, d.DeliveredAt = d.NextAt.UTC(), d.CreatedAt.UTC(), d.DeliveredAt.UTC()
	if d.DeliveredAt.Unix() == 0 {
		d.DeliveredAt = time.Time{}
	}
	return d, err
}

// EnqueueDeliveries adds pending deliveries in one statement, due at once (their NextAt if set).
func (s *Postgres) EnqueueDeliveries(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	if !s.enter() {
		return outboxErr("enqueue", ErrClosed)
	}
	defer s.life.RUnlock()
	ids, types, docs, urls, bodies := make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([][]byte, len(ds))
	next := make([]time.Time, len(ds))
	now := time.Now()
	for i, d := range ds {
		ids[i], types[i], docs[i], urls[i], bodies[i] = d.EventID, d.Type, d.Doc, d.URL, d.Body
		next[i] = d.NextAt
		if next[i].IsZero() {
			next[i] = now
		}
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO webhook_deliveries (event_id, event_type, doc_name, url, body, next_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::timestamptz[])`,
		ids, types, docs, urls, bodies, next)
	if err != nil {
		return outboxErr("enqueue", translate(err))
	}
	return nil
}

// ClaimDeliveries returns up to limit pending deliveries due at now, oldest due first, leased
// until now+lease (Attempts grows by one). Rows another node is claiming are skipped.
func (s *Postgres) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	if !s.enter() {
		return nil, outboxErr("claim", ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `
		UPDATE webhook_deliveries SET next_at = $2, attempts = attempts + 1
		WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $1
			ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING `+deliveryColumns, now, now.Add(lease), limit)
	if err != nil {
		return nil, outboxErr("claim", translate(err))
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, outboxErr("claim", translate(err))
	}
	return out, nil
}

// FinishDelivery records the outcome of a claimed delivery (see Memory.FinishDelivery).
func (s *Postgres) FinishDelivery(ctx context.Context, id int64, state string, status int, errMsg string, nextAt time.Time) error {
	if !s.enter() {
		return outboxErr("finish", ErrClosed)
	}
	defer s.life.RUnlock()
	tag, err := s.pool.Exec(ctx, `
		UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4,
			next_at = CASE WHEN $2 = 'pending' THEN $5 ELSE next_at END,
			delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END
		WHERE id = $1`, id, state, status, errMsg, nextAt)
	if err != nil {
		return outboxErr("finish", translate(err))
	}
	if tag.RowsAffected() == 0 {
		return outboxErr("finish", fmt.Errorf("%w: no delivery %d", ErrNotFound, id))
	}
	return nil
}

// ListDeliveries returns up to limit deliveries, newest first; state filters when not empty.
func (s *Postgres) ListDeliveries(ctx context.Context, state string, limit int) ([]Delivery, error) {
	if !s.enter() {
		return nil, outboxErr("list", ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE $1 = '' OR state = $1 ORDER BY id DESC LIMIT $2`, state, listLimit(limit))
	if err != nil {
		return nil, outboxErr("list", translate(err))
	}
	out, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, outboxErr("list", translate(err))
	}
	if out == nil {
		out = []Delivery{}
	}
	return out, nil
}
