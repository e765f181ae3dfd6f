package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Node is one process registered in the database (migration 000003).
type Node struct {
	ID          string
	Info        string
	Relay       bool // runs with a Redis relay
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// HeartbeatNode registers the node, or refreshes its heartbeat, and deletes nodes whose
// heartbeat is older than forgetAfter (long dead; zero keeps them).
func (s *Postgres) HeartbeatNode(ctx context.Context, n Node, forgetAfter time.Duration) error {
	if !s.enter() {
		return fmt.Errorf("node heartbeat: %w", ErrClosed)
	}
	defer s.life.RUnlock()
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO cluster_nodes (id, info, relay) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET info = excluded.info, relay = excluded.relay, heartbeat_at = now()`,
		n.ID, n.Info, n.Relay)
	if forgetAfter > 0 {
		b.Queue(`DELETE FROM cluster_nodes WHERE heartbeat_at < now() - $1::interval`, forgetAfter.String())
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("node heartbeat: %w", translate(err))
	}
	return nil
}

// LiveNodes returns the registered nodes whose heartbeat is at most within old, by id.
func (s *Postgres) LiveNodes(ctx context.Context, within time.Duration) ([]Node, error) {
	if !s.enter() {
		return nil, fmt.Errorf("list nodes: %w", ErrClosed)
	}
	defer s.life.RUnlock()
	rows, err := s.pool.Query(ctx, `SELECT id, info, relay, started_at, heartbeat_at FROM cluster_nodes
		WHERE heartbeat_at >= now() - $1::interval ORDER BY id`, within.String())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", translate(err))
	}
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Node, error) {
		var n Node
		err := r.Scan(&n.ID, &n.Info, &n.Relay, &n.StartedAt, &n.HeartbeatAt)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", translate(err))
	}
	return nodes, nil
}

// RemoveNode deletes the node's registration (at a clean shutdown).
func (s *Postgres) RemoveNode(ctx context.Context, id string) error {
	if !s.enter() {
		return fmt.Errorf("remove node: %w", ErrClosed)
	}
	defer s.life.RUnlock()
	if _, err := s.pool.Exec(ctx, `DELETE FROM cluster_nodes WHERE id = $1`, id); err != nil {
		return fmt.Errorf("remove node: %w", translate(err))
	}
	return nil
}
