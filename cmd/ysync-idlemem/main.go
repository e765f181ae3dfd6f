// Command ysync-idlemem measures what an idle WebSocket connection costs the ysync server, part
// by part (internal/idlemem): the server runs in this process with the in-memory store and the
// limits `ysync serve` has, minus the per-address and process connection caps, which the one
// loopback address of the clients would hit.
//
//	go run ./cmd/ysync-idlemem [--clients 8000] [--docs 100] [--protocol y-websocket|hocuspocus] [--sites]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/ysync/ysync/internal/idlemem"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ysync-idlemem:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg idlemem.Config
	fs := flag.NewFlagSet("ysync-idlemem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Clients, "clients", 8000, "idle connections")
	fs.IntVar(&cfg.Docs, "docs", 100, "documents (client i joins document i % docs)")
	fs.StringVar(&cfg.Protocol, "protocol", "y-websocket", "y-websocket or hocuspocus")
	fs.DurationVar(&cfg.Idle, "idle", 5*time.Second, "time the connections sit idle before the sample")
	fs.BoolVar(&cfg.Sites, "sites", false, "profile every allocation and print the live heap by allocation site")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := idlemem.Measure(ctx, cfg, idlemem.Ysync(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	rep.Format(stdout)
	return nil
}
