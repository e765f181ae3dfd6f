// Command ysync-load is a load generator for y-websocket servers (ysync and the reference
// @y/websocket-server alike).
//
//	ysync-load [flags]                               run a scenario, print a report
//	ysync-load compare NAME=a.json[,b.json] NAME2=c.json[,...]   side-by-side medians and ratios
//	ysync-load joinstorm --trace T.json.gz [--joiners 300 --storms 3]  join storm (joinstorm.go)
//	ysync-load summary DIR                           issue 14's scenarios side by side (summary.go)
//
// It runs --clients connections over --docs documents (client i joins document i % docs), many
// per process: one reader goroutine per connection, one scheduler goroutine and a few workers
// that make the edits. Every client speaks the y-websocket protocol for real: it sends SyncStep1,
// answers the server's SyncStep1 with SyncStep2, keeps its own crdt.Doc and applies every update
// it receives. An edit inserts the token "<client>:<seq>:<unix µs>" at the front of the shared Y.Array
// "log" and sends the update. Client i edits under Yjs client id i+1, one clock tick per edit, so a
// receiver knows edits [a, b) of client i became visible when its state vector for i+1 moves from
// a to b; the generator then credits those deliveries in a shared ledger that holds each edit's
// send time and the number of other clients still owing it.
//
// Phases: connect (at --connect-rate), wait until every client synced, --idle (nobody edits; the
// server's idle RSS is sampled at its end when --server-pid is given), --warmup (editing, not
// measured), --duration (measured), then up to --grace for owed deliveries to arrive. Whatever
// is still owed then is reported as lost.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := mainErr(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ysync-load:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return runCompare(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "summary" {
		return runSummary(args[1:], stdout)
	}
	if len(args) > 0 && args[0] == "joinstorm" {
		return runJoinStormCmd(ctx, args[1:], stdout, stderr)
	}
	cfg, opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	cfg.heapProfile = opts.memProfile
	// The generator keeps 1000 small documents and churns through many short-lived buffers;
	// fewer collections leave more of the shared CPUs to the server under test.
	debug.SetGCPercent(400)
	rep, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Name = opts.name
	if opts.jsonOut != "" {
		w := stdout
		if opts.jsonOut != "-" {
			f, err := os.Create(opts.jsonOut)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		if err := writeJSON(w, rep); err != nil {
			return err
		}
	}
	if opts.jsonOut != "-" {
		writeText(stdout, rep)
	} else {
		writeText(stderr, rep)
	}
	if opts.failOnLoss && (rep.LostDeliveries > 0 || rep.UnexpectedCredit > 0) {
		return fmt.Errorf("%d deliveries lost", rep.LostDeliveries)
	}
	return nil
}

type options struct {
	jsonOut    string
	name       string
	failOnLoss bool
	cpuProfile string
	memProfile string
}

func parseFlags(args []string, stderr io.Writer) (config, options, error) {
	var c config
	var o options
	fs := flag.NewFlagSet("ysync-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8080/ws", "base WebSocket URL; /<document> is appended (y-websocket) or it is dialled as is (hocuspocus). Several comma-separated URLs (cluster nodes): the clients of each document are spread over them")
	fs.StringVar(&c.Protocol, "protocol", protoYWebsocket, "client protocol: y-websocket, or hocuspocus (one provider and document per socket)")
	fs.IntVar(&c.Clients, "clients", 100, "connections")
	fs.IntVar(&c.Docs, "docs", 10, "documents (client i joins document i % docs)")
	fs.Float64Var(&c.Rate, "rate", 1, "edits per second per client (0: connect, sync, idle, quit)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "editing before the measured window")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 200, "new connections per second (0: all at once)")
	fs.DurationVar(&c.Idle, "idle", 0, "time all clients stay connected and idle before editing")
	fs.DurationVar(&c.Grace, "grace", 10*time.Second, "time allowed after the last edit for deliveries to arrive")
	fs.DurationVar(&c.SyncTimeout, "sync-timeout", 60*time.Second, "time allowed for all clients to connect and sync")
	fs.DurationVar(&c.Tick, "tick", 2*time.Millisecond, "scheduler tick")
	fs.IntVar(&c.Workers, "workers", 0, "edit workers (0: 2 x GOMAXPROCS)")
	fs.StringVar(&c.DocPrefix, "doc-prefix", "", "document name prefix (default: load-<time>, fresh per run)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "sample RSS and CPU of this process from /proc per phase")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file (-: stdout, text goes to stderr)")
	fs.StringVar(&o.name, "name", "", "label stored in the JSON report")
	fs.BoolVar(&o.failOnLoss, "fail-on-loss", false, "exit 1 when any delivery was lost")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the generator's CPU profile here")
	fs.StringVar(&o.memProfile, "memprofile", "", "write the generator's heap profile here (taken at the end of the measured window)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ysync-load [flags]\n       ysync-load compare NAME=a.json[,b.json...] NAME2=c.json[,...]\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, o, err
	}
	if fs.NArg() > 0 {
		return c, o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Clients < 1 || c.Docs < 1 || c.Docs > c.Clients || c.Rate < 0 || c.Duration < 0 || c.Warmup < 0 {
		return c, o, fmt.Errorf("need --clients >= --docs >= 1, --rate, --duration, --warmup >= 0")
	}
	if c.Protocol != protoYWebsocket && c.Protocol != protoHocuspocus {
		return c, o, fmt.Errorf("--protocol %q: want y-websocket or hocuspocus", c.Protocol)
	}
	if c.Rate > 1000 {
		return c, o, fmt.Errorf("--rate above 1000 edits/s per client is not supported")
	}
	if c.DocPrefix == "" {
		c.DocPrefix = "load-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if !*quiet {
		c.Log = stderr
	}
	return c, o, nil
}
