package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/ysync/ysync/migrations"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var dbURL string
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addDatabaseFlag(fs, &dbURL)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ysync migrate [flags] up | down [N] | version | force V\n\nFlags may also follow the subcommand. This manages the PostgreSQL schema; the SQLite store\n(--data-dir) migrates its own file at start.\n\nflags:")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := applyEnv(fs, getenv); err != nil {
		return err
	}
	if dbURL == "" {
		return fmt.Errorf("%w: migrate needs --database-url (or DATABASE_URL)", errUsage)
	}
	if len(rest) == 0 {
		fs.Usage()
		return fmt.Errorf("%w: migrate: missing subcommand", errUsage)
	}
	num := func(def int) (int, error) {
		switch len(rest) {
		case 1:
			if def < 0 {
				return 0, fmt.Errorf("%w: migrate %s needs a number", errUsage, rest[0])
			}
			return def, nil
		case 2:
			n, err := strconv.Atoi(rest[1])
			if err != nil {
				return 0, fmt.Errorf("%w: migrate %s: %q is not a number", errUsage, rest[0], rest[1])
			}
			return n, nil
		}
		return 0, fmt.Errorf("%w: migrate %s: too many arguments", errUsage, rest[0])
	}
	switch rest[0] {
	case "up":
		if len(rest) != 1 {
			return fmt.Errorf("%w: migrate up takes no arguments", errUsage)
		}
		if err := migrations.Up(ctx, dbURL); err != nil {
			return err
		}
	case "down":
		n, err := num(1)
		if err != nil {
			return err
		}
		if n < 1 {
			return fmt.Errorf("%w: migrate down N: N must be >= 1", errUsage)
		}
		if err := migrations.Down(ctx, dbURL, n); err != nil {
			return err
		}
	case "force":
		v, err := num(-1)
		if err != nil {
			return err
		}
		if err := migrations.Force(ctx, dbURL, v); err != nil {
			return err
		}
	case "version":
		if len(rest) != 1 {
			return fmt.Errorf("%w: migrate version takes no arguments", errUsage)
		}
	default:
		return fmt.Errorf("%w: migrate: unknown subcommand %q", errUsage, rest[0])
	}
	v, dirty, err := migrations.Version(ctx, dbURL)
	if err != nil {
		return err
	}
	latest, _ := migrations.Latest()
	fmt.Fprintf(stdout, "version %d (latest %d)", v, latest)
	if dirty {
		fmt.Fprint(stdout, " DIRTY")
	}
	fmt.Fprintln(stdout)
	return nil
}
