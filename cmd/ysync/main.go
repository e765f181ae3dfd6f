// Command ysync is the collaborative Yjs document sync server.
//
//	ysync serve   [flags]                 run the server
//	ysync migrate [flags] up              apply all migrations
//	ysync migrate [flags] down [N]        roll back N migrations (default 1)
//	ysync migrate [flags] version         print the applied version
//	ysync migrate [flags] force V         mark version V as applied (after a manual repair)
//	ysync version                         print the version and build information
//
// Flags may come before or after a subcommand's arguments (ysync migrate up --database-url URL).
// Every flag has an environment equivalent, YSYNC_<FLAG> with dashes as underscores
// (YSYNC_DATABASE_URL, YSYNC_IDLE_TIMEOUT, ...); DATABASE_URL is accepted too. Flags win over the
// environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ysync:", err)
		if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage:
  ysync serve   [flags]            run the sync server
  ysync migrate [flags] up         apply all migrations
  ysync migrate [flags] down [N]   roll back N migrations (default 1)
  ysync migrate [flags] version    print the applied migration version
  ysync migrate [flags] force V    set the version without migrating (after a manual repair)
  ysync version                    print the version and build information

Flags may come before or after the arguments (ysync migrate up --database-url URL).

Run "ysync serve -h" or "ysync migrate -h" for the flags.
`

// run is the whole program; main only supplies the process's context, arguments and streams.
// Cancelling ctx (SIGINT, SIGTERM) stops the server gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		return runVersion(args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
