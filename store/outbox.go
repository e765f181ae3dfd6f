package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// The webhook outbox (migration 000005): deliveries of events to receiver URLs, claimed, retried
// and completed by package webhook. Memory keeps it in memory (lost on restart); Postgres makes
// it durable and lets several nodes share the work. Both pass storetest.RunOutbox.

// States of a delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event for one receiver.
type Delivery struct {
	ID      int64  `json:"id"`
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Doc     string `json:"doc,omitempty"`
	URL     string `json:"url"`
	// Body is the JSON the receiver gets.
	Body        []byte    `json:"-"`
	State       string    `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAt      time.Time `json:"next_at"`
	CreatedAt   time.Time `json:"created_at"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	LastStatus  int       `json:"last_status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
}

func outboxErr(op string, err error) error { return fmt.Errorf("webhook outbox %s: %w", op, err) }

// memOutbox is Memory's outbox (guarded by Memory.mu).
type memOutbox struct {
	nextID int64
	rows   []*Delivery // id ascending
}

// EnqueueDeliveries adds pending deliveries, due at once (their NextAt if set).
func (m *Memory) EnqueueDeliveries(ctx context.Context, ds []Delivery) error {
	if err := ctx.Err(); err != nil {
		return outboxErr("enqueue", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return outboxErr("enqueue", ErrClosed)
	}
	now := time.Now().UTC()
	for _, d := range ds {
		m.outbox.nextID++
		d.ID = m.outbox.nextID
		d.State = DeliveryPending
		d.Attempts = 0
		d.Body = slices.Clone(d.Body)
		d.CreatedAt = now
		if d.NextAt.IsZero() {
			d.NextAt = now
		}
		m.outbox.rows = append(m.outbox.rows, &d)
	}
	return nil
}

// ClaimDeliveries returns up to limit pending deliveries due at now, oldest due first, and
// leases them: their NextAt becomes now+lease and Attempts grows by one, so no other claim gets
// them until the lease runs out.
func (m *Memory) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, outboxErr("claim", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, outboxErr("claim", ErrClosed)
	}
	var due []*Delivery
	for _, d := range m.outbox.rows {
		if d.State == DeliveryPending && !d.NextAt.After(now) {
			due = append(due, d)
		}
	}
	slices.SortStableFunc(due, func(a, b *Delivery) int { return a.NextAt.Compare(b.NextAt) })
	if len(due) > limit {
		due = due[:limit]
	}
	out := make([]Delivery, len(due))
	for i, d := range due {
		d.NextAt = now.Add(lease).UTC()
		d.Attempts++
		out[i] = *d
		out[i].Body = slices.Clone(d.Body)
	}
	return out, nil
}

// FinishDelivery records the outcome of a claimed delivery: state DeliveryDelivered, or
// DeliveryPending again due at nextAt, or DeliveryFailed (given up); status and errMsg are the
// last attempt's HTTP status (0 if none) and error.
func (m *Memory) FinishDelivery(ctx context.Context, id int64, state string, status int, errMsg string, nextAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return outboxErr("finish", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return outboxErr("finish", ErrClosed)
	}
	for _, d := range m.outbox.rows {
		if d.ID == id {
			d.State, d.LastStatus, d.LastError = state, status, errMsg
			switch state {
			case DeliveryDelivered:
				d.DeliveredAt = time.Now().UTC()
			case DeliveryPending:
				d.NextAt = nextAt.UTC()
			}
			return nil
		}
	}
	return outboxErr("finish", fmt.Errorf("%w: no delivery %d", ErrNotFound, id))
}

// ListDeliveries returns up to limit deliveries, newest first; state filters when not empty.
func (m *Memory) ListDeliveries(ctx context.Context, state string, limit int) ([]Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, outboxErr("list", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, outboxErr("list", ErrClosed)
	}
	limit = listLimit(limit)
	out := []Delivery{}
	for i := len(m.outbox.rows) - 1; i >= 0 && len(out) < limit; i-- {
		if d := m.outbox.rows[i]; state == "" || d.State == state {
			c := *d
			c.Body = slices.Clone(d.Body)
			out = append(out, c)
		}
	}
	return out, nil
}
