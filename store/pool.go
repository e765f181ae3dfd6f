package store

import "github.com/jackc/pgx/v5/pgxpool"

// Pool returns the store's connection pool, for other tables of the same database (the workflow
// repository shares it). It stays the store's: Close closes it when the store owns it.
func (s *Postgres) Pool() *pgxpool.Pool { return s.pool }
