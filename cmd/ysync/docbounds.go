package main

import (
	"flag"
	"fmt"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/shareddoc"
)

// docBoundsConfig is the awareness and loaded-document part of `ysync serve`'s configuration.
type docBoundsConfig struct {
	MaxAwarenessClientsPerConn int
	MaxAwarenessStateBytes     int
	MaxLoadedDocs              int
}

func addDocBoundsFlags(fs *flag.FlagSet, c *docBoundsConfig) {
	fs.IntVar(&c.MaxAwarenessClientsPerConn, "max-awareness-clients-per-conn", shareddoc.DefaultMaxAwarenessClientsPerConn, "awareness client ids one connection may introduce; more are refused with permission-denied (-1: unlimited)")
	fs.IntVar(&c.MaxAwarenessStateBytes, "max-awareness-state-bytes", shareddoc.DefaultMaxAwarenessStateBytes, "largest awareness state (JSON bytes); larger ones are refused with permission-denied (-1: unlimited)")
	fs.IntVar(&c.MaxLoadedDocs, "max-loaded-docs", shareddoc.DefaultMaxLoadedDocs, "documents kept in memory; over it the least recently used idle one is stored and unloaded, and with none idle new documents get 503 / close 1013 (-1: unlimited)")
}

func (c docBoundsConfig) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max-awareness-clients-per-conn", c.MaxAwarenessClientsPerConn}, {"max-awareness-state-bytes", c.MaxAwarenessStateBytes}, {"max-loaded-docs", c.MaxLoadedDocs}} {
		if f.v == 0 || f.v < -1 {
			return fmt.Errorf("%w: --%s must be > 0, or -1 for unlimited", errUsage, f.name)
		}
	}
	return nil
}

// apply sets the bounds in l (the flags' -1 is server.Limits' negative, unlimited).
func (c docBoundsConfig) apply(l server.Limits) server.Limits {
	l.MaxAwarenessClientsPerConn = c.MaxAwarenessClientsPerConn
	l.MaxAwarenessStateBytes = c.MaxAwarenessStateBytes
	l.MaxLoadedDocs = c.MaxLoadedDocs
	return l
}

func (c docBoundsConfig) logAttrs() []any {
	return []any{
		"max_awareness_clients_per_conn", c.MaxAwarenessClientsPerConn,
		"max_awareness_state_bytes", c.MaxAwarenessStateBytes,
		"max_loaded_docs", c.MaxLoadedDocs,
	}
}
