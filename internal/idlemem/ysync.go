package idlemem

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/ysync/ysync/server"
	"github.com/ysync/ysync/store"
)

// Ysync returns the Server factory Measure runs: ysync's server with the in-memory store and the
// limits `ysync serve` has, minus the per-address and process connection caps, which the one
// loopback address of the clients would hit.
func Ysync(logger *slog.Logger) func() (Server, error) {
	return YsyncWith(server.Config{Logger: logger})
}

// YsyncWith is Ysync with cfg for the rest of the server's configuration (its Limits' connection
// caps are lifted as for Ysync).
func YsyncWith(cfg server.Config) func() (Server, error) {
	return func() (Server, error) {
		cfg.Limits.MaxConnsPerIP, cfg.Limits.MaxConns = -1, -1
		srv := server.New(cfg, store.NewMemory())
		return Server{
			Serve: func(ln net.Listener) error { return srv.Serve(ln) },
			Close: func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			},
		}, nil
	}
}
