package store

// PoolConns returns how many connections the store's pool holds now (idle and in use).
func PoolConns(s *Postgres) int32 { return s.pool.Stat().TotalConns() }
