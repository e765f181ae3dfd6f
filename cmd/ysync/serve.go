package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/ysync/ysync/cluster"
	"github.com/ysync/ysync/server"
)

type closableStore interface {
	server.Store
	Close() error
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, stderr, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("effective config", append([]any{
		"addr", cfg.Addr,
		"store", cfg.Store,
		"data_dir", cfg.DataDir,
		"database_url", maskURL(cfg.DatabaseURL),
		"auto_migrate", cfg.AutoMigrate,
		"idle_timeout", cfg.IdleTimeout,
		"read_limit", cfg.ReadLimit,
		"queue_budget", cfg.QueueBudget,
		"park_idle_readers", cfg.ParkIdle,
		"shutdown_timeout", cfg.ShutdownTimeout,
		"log_level", cfg.LogLevel,
		"log_format", cfg.LogFormat,
		"redis_url", maskURL(cfg.RedisURL),
		"node_id", cfg.NodeID,
		"position_check_interval", cfg.PositionCheckInterval,
		"load_timeout", cfg.LoadTimeout,
		"flush_timeout", cfg.FlushTimeout,
	}, append(append(cfg.Trust.logAttrs(), cfg.DocBounds.logAttrs()...), cfg.Docs.logAttrs()...)...)...)
	authn, lim, err := setupTrust(cfg.Trust, log, stderr)
	if err != nil {
		return err
	}
	lim = cfg.DocBounds.apply(lim)
	if c, ok := authn.(io.Closer); ok {
		defer c.Close() // stops the JWKS refresh, after the server has stopped
	}

	st, err := openStore(ctx, cfg, log, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	var cl *cluster.Cluster
	if cfg.RedisURL != "" {
		openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cl, err = cluster.New(openCtx, cluster.Config{RedisURL: cfg.RedisURL, NodeID: cfg.NodeID, Info: cfg.Addr, Logger: log})
		cancel()
		if err != nil {
			return err
		}
		defer cl.Close() // after the server's Shutdown (defers run in reverse)
		log.Info("cluster mode: relaying through Redis", "node_id", cl.NodeID())
	}
	pci := cfg.PositionCheckInterval
	if pci == 0 {
		pci = -1 // the flag's 0 means never; server.Config's zero means the default
	}

	workflows, stopEvents, err := workflowsFor(st, cl, log)
	if err != nil {
		return err
	}
	defer stopEvents()
	srv := server.New(server.Config{
		IdleTimeout: cfg.IdleTimeout,
		ReadLimit:   cfg.ReadLimit,
		QueueBudget: cfg.QueueBudget,
		NoParking:   !cfg.ParkIdle,
		Logger:      log,
		Workflows:   workflows,

		Authenticator: authn,
		Limits:        lim,
		Hocuspocus:    cfg.Hocuspocus.limits(),
		Versions:      cfg.Docs.versions(),
		Webhooks:      cfg.Docs.webhooks(),

		Cluster:               cl,
		PositionCheckInterval: pci,
		NodeInfo:              cfg.Addr,
		NodeID:                cfg.NodeID,
		LoadTimeout:           noneIfZero(cfg.LoadTimeout),
		FlushTimeout:          noneIfZero(cfg.FlushTimeout),
		CompactAfter:          offIfZero(cfg.CompactAfter),
		CompactAfterBytes:     int64(offIfZero(int(cfg.CompactAfterBytes))),
	}, st)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// Tests and scripts read the bound address (for --addr 127.0.0.1:0) from this line.
	fmt.Fprintf(stdout, "ysync listening on http://%s\n", ln.Addr())
	log.Info("listening", "addr", ln.Addr().String())

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		return nil
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-serveErr; serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// noneIfZero maps a flag's 0 ("none") to server.Config's negative (its zero means the default).
func noneIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// offIfZero maps a flag's 0 (trigger off) to server.Config's negative (off).
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
